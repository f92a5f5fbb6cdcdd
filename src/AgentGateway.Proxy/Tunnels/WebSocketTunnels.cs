using AgentGateway.Proxy.Pipeline;
using AgentGateway.Proxy.Policy;
using AgentGateway.Proxy.Sessions;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;

namespace AgentGateway.Proxy.Tunnels;

/// <summary>
/// Opens WebSockets on the routes that let them through (<c>Metadata:Upgrade = WebSocket</c>). The
/// handshake is an ordinary request — identified, stripped, decided, injected — with
/// <c>Sec-WebSocket-Extensions</c> removed so no compression is negotiated. When the upstream
/// accepts, the agent's side of the tunnel (HTTP/1.1 upgrade or HTTP/2 extended CONNECT) is handed
/// to YARP as a <see cref="WebSocketRelayStream"/>: messages counted against the grant's rate
/// limit, everything coming back searched for the gateway's secrets, the tunnel closed with a
/// reason when its session ends. An upstream that negotiates an extension anyway gets no tunnel.
/// </summary>
internal sealed partial class WebSocketTunnels(SecretIndex secrets, PolicyEngine engine, TimeProvider time, ILogger<WebSocketTunnels> logger)
{
    public const string ExtensionsHeader = "Sec-WebSocket-Extensions";

    /// <summary>Makes the request's switch to a WebSocket go through a relay.</summary>
    public void Prepare(HttpContext context, GatewayRequestFeature feature)
    {
        context.Request.Headers.Remove(ExtensionsHeader);
        if (context.Features.Get<IHttpExtendedConnectFeature>() is { IsExtendedConnect: true } connect)
        {
            context.Features.Set<IHttpExtendedConnectFeature>(new Connect(connect, this, context, feature));
        }
        else if (context.Features.Get<IHttpUpgradeFeature>() is { } upgrade)
        {
            context.Features.Set<IHttpUpgradeFeature>(new Upgrade(upgrade, this, context, feature));
        }
    }

    private void CheckAnswer(HttpContext context, GatewayRequestFeature feature)
    {
        if (context.Response.Headers.ContainsKey(ExtensionsHeader))
        {
            Log.ExtensionNegotiated(logger, feature.Route.RouteId);
            throw new InvalidOperationException("the upstream negotiated a WebSocket extension, which would hide messages from the gateway");
        }
    }

    private WebSocketRelayStream Relay(Stream agent, HttpContext context, GatewayRequestFeature feature)
    {
        var routeId = feature.Route.RouteId;
        var grant = feature.Decision?.Grant;
        var registration = feature.Session?.Registration;
        SecretForms[] hidden = [feature.Plan.Secrets.Forms, secrets.TokenForms(feature.Injected?.HeaderValue)];

        var agentId = feature.Agent.Agent.Id;
        var relay = new WebSocketRelayStream(agent, new RelayPolicy(
            grant?.RateLimit is null ? null : async cancellationToken =>
            {
                try
                {
                    return await engine.CountAsync(agentId, grant, cancellationToken) is { } refused ? SessionEnd.RateLimited(refused.Detail) : null;
                }
                catch (PolicyStateUnavailableException)
                {
                    return new SessionEnd("policy-unavailable", "the rate limit could not be counted");
                }
            },
            hidden,
            feature.Revision.Policy.MaxServerEventBytes,
            // Recorded and counted as the session's end; the relay closes itself either way.
            end => registration?.End(end),
            () => Log.EchoedInMessage(logger, routeId),
            context.Abort,
            time));
        if (feature.Session is { } session)
        {
            session.Tunnel = relay.Close;
        }

        Log.Opened(logger, agentId, routeId);
        return relay;
    }

    private sealed class Upgrade(IHttpUpgradeFeature inner, WebSocketTunnels tunnels, HttpContext context, GatewayRequestFeature feature) : IHttpUpgradeFeature
    {
        public bool IsUpgradableRequest => inner.IsUpgradableRequest;

        public async Task<Stream> UpgradeAsync()
        {
            tunnels.CheckAnswer(context, feature);
            return tunnels.Relay(await inner.UpgradeAsync(), context, feature);
        }
    }

    private sealed class Connect(IHttpExtendedConnectFeature inner, WebSocketTunnels tunnels, HttpContext context, GatewayRequestFeature feature) : IHttpExtendedConnectFeature
    {
        public bool IsExtendedConnect => inner.IsExtendedConnect;

        public string? Protocol => inner.Protocol;

        public async ValueTask<Stream> AcceptAsync()
        {
            tunnels.CheckAnswer(context, feature);
            return tunnels.Relay(await inner.AcceptAsync(), context, feature);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 3501, Level = LogLevel.Information, Message = "WebSocket opened for agent {AgentId} on route {RouteId}")]
        public static partial void Opened(ILogger logger, string agentId, string routeId);

        [LoggerMessage(EventId = 3502, Level = LogLevel.Warning, Message = "The upstream of route {RouteId} echoed a gateway secret in a WebSocket message; it was masked")]
        public static partial void EchoedInMessage(ILogger logger, string routeId);

        [LoggerMessage(EventId = 3503, Level = LogLevel.Warning, Message = "The upstream of route {RouteId} negotiated a WebSocket extension the agent never offered through the gateway; no tunnel")]
        public static partial void ExtensionNegotiated(ILogger logger, string routeId);
    }
}
