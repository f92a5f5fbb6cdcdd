using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace AgentGateway.Proxy.Tunnels;

/// <summary>What a request asks of the connection beyond one request and its answer.</summary>
public enum SwitchKind
{
    /// <summary>An ordinary request.</summary>
    None,

    /// <summary>An offer of HTTP/2 over the same cleartext connection (<c>Upgrade: h2c</c>, which
    /// HTTP/2 itself deprecates): a negotiation with the gateway, which declines it by answering in
    /// HTTP/1.1 as RFC 9110 allows. Never passed on, and never allowed to switch.</summary>
    Declined,

    /// <summary>A WebSocket: HTTP/1.1 <c>GET</c> with <c>Connection: Upgrade</c> and
    /// <c>Upgrade: websocket</c>, or HTTP/2 extended CONNECT with <c>:protocol websocket</c> (RFC 8441).</summary>
    WebSocket,

    /// <summary>Any other switch: another Upgrade protocol, a malformed upgrade, CONNECT, extended
    /// CONNECT for another protocol. Never forwarded.</summary>
    Other,
}

/// <summary>
/// Tells from the server's own knowledge (Kestrel's upgrade and extended-CONNECT features) and the
/// headers that ask for one, whether a request would become a tunnel. A tunnel carries whatever
/// its two ends like, past every check made on requests, so anything that looks like one is named
/// here and decided by the route: refused unless it opted in, and only for WebSocket.
/// </summary>
public static class ProtocolSwitch
{
    public static (SwitchKind Kind, string What) Classify(HttpContext context)
    {
        var request = context.Request;
        if (context.Features.Get<IHttpExtendedConnectFeature>() is { IsExtendedConnect: true } connect)
        {
            return string.Equals(connect.Protocol, "websocket", StringComparison.OrdinalIgnoreCase)
                ? (SwitchKind.WebSocket, "a WebSocket (HTTP/2 extended CONNECT)")
                : (SwitchKind.Other, "an extended CONNECT for another protocol");
        }

        if (HttpMethods.IsConnect(request.Method))
        {
            return (SwitchKind.Other, "CONNECT");
        }

        var upgradable = context.Features.Get<IHttpUpgradeFeature>()?.IsUpgradableRequest == true;
        var upgrade = request.Headers.Upgrade;
        var connectionUpgrade = ConnectionNamesUpgrade(request.Headers.Connection);
        if (upgrade.Count == 0 && !connectionUpgrade && !upgradable)
        {
            return (SwitchKind.None, "");
        }

        var protocols = upgrade.SelectMany(v => (v ?? "").Split(',')).Select(p => p.Trim()).Where(p => p.Length > 0).ToList();
        if (protocols is ["h2c"] || protocols is ["H2C"])
        {
            return (SwitchKind.Declined, "an HTTP/2 cleartext upgrade");
        }

        if (protocols.Count == 1 && protocols[0].Equals("websocket", StringComparison.OrdinalIgnoreCase)
            && connectionUpgrade && upgradable && HttpMethods.IsGet(request.Method))
        {
            return (SwitchKind.WebSocket, "a WebSocket (HTTP/1.1 Upgrade)");
        }

        return (SwitchKind.Other, protocols.Count == 0 ? "a Connection: Upgrade without a protocol" : "a protocol upgrade (Upgrade header)");
    }

    private static bool ConnectionNamesUpgrade(Microsoft.Extensions.Primitives.StringValues connection)
    {
        foreach (var value in connection)
        {
            foreach (var token in (value ?? "").Split(','))
            {
                if (token.Trim().Equals("upgrade", StringComparison.OrdinalIgnoreCase))
                {
                    return true;
                }
            }
        }

        return false;
    }
}

/// <summary>Stands in for Kestrel's upgrade feature on requests that must not switch protocols
/// (a declined <c>h2c</c> offer): an upstream answering 101 anyway gets no tunnel.</summary>
internal sealed class NoUpgrade : IHttpUpgradeFeature
{
    public static readonly NoUpgrade Instance = new();

    public bool IsUpgradableRequest => false;

    public Task<Stream> UpgradeAsync() => throw new InvalidOperationException("the gateway does not switch protocols on this request");
}
