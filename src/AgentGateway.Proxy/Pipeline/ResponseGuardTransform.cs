using AgentGateway.Proxy.Policy;
using AgentGateway.Proxy.Stripping;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Transforms;

namespace AgentGateway.Proxy.Pipeline;

/// <summary>
/// What comes back from the upstream before it reaches the agent:
/// <list type="bullet">
/// <item>headers the upstream's <c>Connection</c> header nominated as hop-by-hop, and
/// <c>Proxy-Authenticate</c> (a challenge for the gateway's hop, not the agent's), are dropped;</item>
/// <item>a gateway secret — the credential injected for this request, or any configured one — echoed
/// in a header drops that header, and echoed in the body is overwritten with asterisks (debug
/// endpoints, error pages quoting the request, misbehaving upstreams). Compressed bodies are not
/// searched: the gateway cannot see into them without decompressing every response.</item>
/// </list>
/// </summary>
internal sealed partial class ResponseGuardTransform(SecretIndex secrets, ILogger<ResponseGuardTransform> logger) : ResponseTransform
{
    public override ValueTask ApplyAsync(ResponseTransformContext context)
    {
        var response = context.HttpContext.Response;
        if (context.ProxyResponse is { } proxied && proxied.Headers.Connection.Count > 0)
        {
            foreach (var nominated in UntrustedHeaders.NominatedHopByHop(string.Join(", ", proxied.Headers.Connection)))
            {
                response.Headers.Remove(nominated);
            }
        }

        response.Headers.Remove("Proxy-Authenticate");
        if (context.HttpContext.Features.Get<GatewayRequestFeature>() is not { } feature)
        {
            return ValueTask.CompletedTask;
        }

        var configured = secrets.ConfiguredUtf8(feature.Revision);
        var injected = SecretIndex.TokenOf(feature.Injected?.HeaderValue);
        if (configured.Count == 0 && injected.IsEmpty)
        {
            return ValueTask.CompletedTask;
        }

        var routeId = feature.Route.RouteId;
        List<string>? echoed = null;
        // secrets.Contains also knows the tokens injected lately, but the oldest are forgotten
        // under heavy on-behalf-of load; this request's own token is checked by itself.
        foreach (var header in response.Headers)
        {
            foreach (var value in header.Value)
            {
                if (value is not null && ((!injected.IsEmpty && value.AsSpan().Contains(injected, StringComparison.Ordinal)) || secrets.Contains(feature.Revision, value)))
                {
                    (echoed ??= []).Add(header.Key);
                    break;
                }
            }
        }

        foreach (var name in echoed ?? [])
        {
            response.Headers.Remove(name);
            Log.EchoedInHeader(logger, routeId, name);
        }

        var encoding = context.ProxyResponse?.Content.Headers.ContentEncoding;
        if (feature.Masking is null && (encoding is null || encoding.Count == 0 || encoding.All(e => e.Equals("identity", StringComparison.OrdinalIgnoreCase))))
        {
            response.Body = feature.Masking = new SecretMaskingStream(response.Body, configured, secrets.TokenUtf8(feature.Injected?.HeaderValue), () => Log.EchoedInBody(logger, routeId));
        }

        return ValueTask.CompletedTask;
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 2110, Level = LogLevel.Warning, Message = "The upstream of route {RouteId} echoed a gateway secret in response header {HeaderName}; the header was dropped")]
        public static partial void EchoedInHeader(ILogger logger, string routeId, string headerName);

        [LoggerMessage(EventId = 2111, Level = LogLevel.Warning, Message = "The upstream of route {RouteId} echoed a gateway secret in the response body; it was masked")]
        public static partial void EchoedInBody(ILogger logger, string routeId);
    }
}
