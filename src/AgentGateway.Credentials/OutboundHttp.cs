namespace AgentGateway.Credentials;

/// <summary>The one policy for HTTP clients that carry secrets or fetch keys (token endpoints,
/// issuer metadata): no redirects (a redirect would carry the secret, or swap in keys, from
/// wherever it points), no cookies, no ambient proxy, bounded connect time.</summary>
public static class OutboundHttp
{
    public static SocketsHttpHandler CreateHandler() => new()
    {
        AllowAutoRedirect = false,
        UseCookies = false,
        UseProxy = false,
        ConnectTimeout = TimeSpan.FromSeconds(5),
        PooledConnectionLifetime = TimeSpan.FromMinutes(5),
    };
}
