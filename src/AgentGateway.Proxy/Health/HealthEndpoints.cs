using System.Text.Json;
using AgentGateway.Proxy.Configuration;
using AgentGateway.Proxy.Inventory;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using AgentGateway.Proxy.Replicas;

namespace AgentGateway.Proxy.Health;

/// <summary><c>/healthz</c>: the process answers. <c>/readyz</c>: a configuration serves and, when
/// configured, Redis answers a PING and the revocations were read recently enough to be confirmed, so a load balancer sends traffic only where it can succeed.</summary>
internal static class HealthEndpoints
{
    private static readonly TimeSpan RedisPingTimeout = TimeSpan.FromSeconds(2);

    public static void Map(IEndpointRouteBuilder endpoints)
    {
        // Plain request delegates: a handler that returns a result instead would have ASP.NET Core's
        // request delegate factory compile expression trees for it, which maps System.Linq.Expressions
        // and adds generated code to a process that never needs either (bare YARP has neither).
        endpoints.MapGet("/healthz", static context =>
        {
            context.Response.ContentType = "text/plain; charset=utf-8";
            context.Response.ContentLength = 2;
            return context.Response.WriteAsync("ok");
        }).ExcludeFromDescription();
        endpoints.MapGet("/readyz", ReadyAsync).ExcludeFromDescription();
    }

    private static async Task ReadyAsync(HttpContext context)
    {
        var config = context.RequestServices.GetRequiredService<GatewayConfigProvider>();
        var status = config.Status;
        string redis = "not configured";
        var ready = true;
        string? revocations = null;
        if (context.RequestServices.GetService<IReplicaBus>() is { } replicas)
        {
            ready = await replicas.PingAsync(RedisPingTimeout, context.RequestAborted);
            redis = ready ? "ok" : "unreachable";
            // Redis answering now is not enough: until the revocations are read again, agents are refused.
            var confirmed = context.RequestServices.GetRequiredService<RevocationStore>().Confirmed;
            revocations = confirmed ? "confirmed" : "unconfirmed";
            ready &= confirmed;
        }

        context.Response.StatusCode = ready ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable;
        context.Response.ContentType = "application/json";
        context.Response.Headers.CacheControl = "no-store";
        await using var json = new Utf8JsonWriter(context.Response.Body);
        json.WriteStartObject();
        json.WriteString("status", ready ? "ready" : "not-ready");
        json.WriteNumber("configRevision", status.Revision);
        json.WriteString("redis", redis);
        if (revocations is not null)
        {
            json.WriteString("revocations", revocations);
        }
        json.WriteEndObject();
    }
}
