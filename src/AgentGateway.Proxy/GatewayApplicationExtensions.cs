using AgentGateway.Proxy.Configuration;
using AgentGateway.Proxy.Health;
using AgentGateway.Proxy.Problems;
using AgentGateway.Proxy.Pipeline;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

// Extension entry points live in the ASP.NET Core namespace so callers need no extra using.
namespace Microsoft.AspNetCore.Builder;

public static class GatewayApplicationExtensions
{
    /// <summary>
    /// Loads and validates the configuration (throwing
    /// <see cref="AgentGateway.Configuration.InvalidGatewayConfigurationException"/> with
    /// every problem when it is wrong), then maps the health endpoints and the proxy.
    /// </summary>
    public static async Task MapAgentGatewayAsync(this WebApplication app, CancellationToken cancellationToken = default)
    {
        await app.Services.GetRequiredService<GatewayConfigProvider>().InitializeAsync(cancellationToken);
        // Only when traces are exported: completes each request's server span.
        if (AgentGateway.Proxy.Telemetry.TelemetryExport.Exports(app.Configuration, AgentGateway.Proxy.Telemetry.TelemetryExport.Traces))
        {
            app.Use(AgentGateway.Proxy.Telemetry.ServerSpan.InvokeAsync);
        }

        MapEndpoints(app);
    }

    private static void MapEndpoints(IEndpointRouteBuilder endpoints)
    {
        HealthEndpoints.Map(endpoints);
        // The keys that verify provenance assertions (public halves only).
        // A plain request delegate, as the health endpoints (see HealthEndpoints.Map).
        endpoints.MapGet("/.well-known/jwks.json", static context =>
        {
            var signer = context.RequestServices.GetRequiredService<GatewayConfigProvider>().Current.Provenance;
            context.Response.Headers.CacheControl = "public, max-age=300";
            context.Response.ContentType = "application/jwk-set+json";
            context.Response.ContentLength = signer.Jwks.Length;
            return context.Response.Body.WriteAsync(signer.Jwks).AsTask();
        });
        endpoints.MapReverseProxy(static proxy => proxy.UseMiddleware<GatewayMiddleware>());
        // Anything no route matches gets a problem body too, not an empty 404.
        endpoints.MapFallback(static context => ProblemResponse.WriteAsync(context, Refusal.NoRoute()));
    }
}
