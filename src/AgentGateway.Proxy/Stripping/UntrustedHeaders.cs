namespace AgentGateway.Proxy.Stripping;

/// <summary>
/// Headers an agent must not be able to set for the upstream even though they are not
/// credentials: claims about the client or the original request that upstreams trust from their
/// proxy (YARP rewrites only <c>X-Forwarded-*</c>), and requests to reinterpret the method (policy
/// decided on the real one).
/// </summary>
public static class UntrustedHeaders
{
    private static readonly HashSet<string> Names = new(StringComparer.OrdinalIgnoreCase)
    {
        // Client address and original-request claims.
        "Forwarded", "X-Real-IP", "X-Client-IP", "True-Client-IP", "CF-Connecting-IP", "Fastly-Client-IP",
        "X-Cluster-Client-IP", "X-Originating-IP", "X-Remote-IP", "X-Remote-Addr", "X-ProxyUser-Ip",
        "X-Original-URL", "X-Rewrite-URL", "X-Original-URI", "X-Original-Host", "X-Original-Method", "X-Forwarded-Server",
        // Method overrides: the method the policy decided on is the method that goes.
        "X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override",
    };

    /// <summary>Whether <paramref name="name"/> is never forwarded from an agent (compared with '_' as '-').</summary>
    public static bool IsUntrusted(string name) => Names.Contains(name.Replace('_', '-'));

    /// <summary>
    /// The header names a message's <c>Connection</c> header nominates as hop-by-hop (RFC 9110
    /// §7.6.1): they are for the connection they arrived on and end there. YARP drops only its fixed
    /// list, so without this an agent's <c>Connection: X-Secret-Hint</c> header would travel on, and
    /// an upstream's nominated headers would reach the agent.
    /// </summary>
    public static IEnumerable<string> NominatedHopByHop(Microsoft.Extensions.Primitives.StringValues connection)
    {
        foreach (var value in connection)
        {
            if (string.IsNullOrEmpty(value))
            {
                continue;
            }

            foreach (var token in value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                // The body's own headers and Host stay: policy and inspection decided on them, and
                // dropping them would change how the upstream reads the message, not who it is for.
                if (!token.Equals("close", StringComparison.OrdinalIgnoreCase)
                    && !token.StartsWith("Content-", StringComparison.OrdinalIgnoreCase)
                    && !token.Equals("Host", StringComparison.OrdinalIgnoreCase)
                    && !token.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase))
                {
                    yield return token;
                }
            }
        }
    }
}
