using Microsoft.IdentityModel.JsonWebTokens;

namespace AgentGateway.Proxy.Identity;

/// <summary>Header rules the token library leaves to its caller.</summary>
internal static class JwsHeader
{
    /// <summary>
    /// RFC 7515 §4.1.11: a JWS naming extensions in <c>crit</c> that the recipient does not
    /// understand MUST be rejected. The gateway understands none, and the library would silently
    /// ignore them — so the issuer's "do not accept this unless you enforce X" would be lost.
    /// </summary>
    public static bool NamesCriticalExtensions(JsonWebToken jwt) => jwt.TryGetHeaderValue<object>("crit", out _);
}
