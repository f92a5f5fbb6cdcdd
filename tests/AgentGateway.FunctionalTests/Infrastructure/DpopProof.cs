using System.Security.Cryptography;
using System.Text;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace AgentGateway.FunctionalTests.Infrastructure;

/// <summary>Real DPoP proofs (RFC 9449) made with a caller's EC key, and tokens bound to it minted
/// by the test authorization server with its real signing key.</summary>
public static class DpopProof
{
    /// <summary>A token for <paramref name="subject"/> bound to <paramref name="key"/> (<c>cnf.jkt</c>).</summary>
    public static string BoundToken(AuthorizationServer auth, string subject, ECDsa key, TimeSpan? lifetime = null) => auth.Mint(
        subject,
        AuthorizationServer.GatewayAudience,
        DateTime.UtcNow.AddMinutes(-1),
        DateTime.UtcNow.Add(lifetime ?? TimeSpan.FromMinutes(10)),
        claims: new Dictionary<string, object>
        {
            ["cnf"] = new Dictionary<string, object> { ["jkt"] = Thumbprint(key) },
            ["jti"] = Guid.NewGuid().ToString("N"),
        });

    public static string Thumbprint(ECDsa key) => Base64UrlEncoder.Encode(new JsonWebKey { Kty = "EC", Crv = "P-256", X = Jwk(key)["x"], Y = Jwk(key)["y"] }.ComputeJwkThumbprint());

    public static Dictionary<string, string> Jwk(ECDsa key, bool leakPrivate = false)
    {
        var p = key.ExportParameters(includePrivateParameters: leakPrivate);
        var jwk = new Dictionary<string, string>
        {
            ["kty"] = "EC",
            ["crv"] = "P-256",
            ["x"] = Base64UrlEncoder.Encode(p.Q.X!),
            ["y"] = Base64UrlEncoder.Encode(p.Q.Y!),
        };
        if (leakPrivate)
        {
            jwk["d"] = Base64UrlEncoder.Encode(p.D!);
        }

        return jwk;
    }

    public static string Create(ECDsa key, string method, string url, string accessToken, string? jti = null, DateTimeOffset? iat = null, string typ = "dpop+jwt", bool leakPrivate = false) =>
        new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(new SecurityTokenDescriptor
        {
            TokenType = typ,
            AdditionalHeaderClaims = new Dictionary<string, object> { ["jwk"] = Jwk(key, leakPrivate) },
            Claims = Claims(method, url, accessToken, jti, iat),
            SigningCredentials = new SigningCredentials(new ECDsaSecurityKey(key), SecurityAlgorithms.EcdsaSha256),
        });

    public static Dictionary<string, object> Claims(string method, string url, string accessToken, string? jti, DateTimeOffset? iat) => new()
    {
        ["htm"] = method,
        ["htu"] = url,
        ["iat"] = (iat ?? DateTimeOffset.UtcNow).ToUnixTimeSeconds(),
        ["jti"] = jti ?? Guid.NewGuid().ToString("N"),
        ["ath"] = Base64UrlEncoder.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(accessToken))),
    };
}
