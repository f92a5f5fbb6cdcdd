using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using AgentGateway.Configuration;
using AgentGateway.Proxy.Policy;
using AgentGateway.Proxy.Problems;
using Microsoft.AspNetCore.Http;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace AgentGateway.Proxy.Identity;

/// <summary>
/// DPoP (RFC 9449 §4.3): a proof that the agent holds the key its access token is bound to.
/// The proof must be a <c>dpop+jwt</c> signed with an asymmetric algorithm by the public key in
/// its own header (no private material), for this method and this URL at one of the gateway's own
/// origins (<see cref="PublicOrigins"/>, never the caller's <c>Host</c>), fresh, bound to this
/// access token (<c>ath</c>), by the key the token names (<c>cnf.jkt</c>), and never seen before
/// (its <c>jti</c> is claimed once across every replica).
/// </summary>
public sealed class DpopValidator(IPolicyStateStore replay, TimeProvider time)
{
    private static readonly System.Collections.Frozen.FrozenSet<string> Algorithms = SigningAlgorithm.All;
    private static readonly string[] PrivateMembers = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
    private static readonly JsonWebTokenHandler Handler = new();

    /// <summary>How old a proof may be (its <c>iat</c>), and how far in the future, beyond clock skew.</summary>
    public static readonly TimeSpan MaxAge = TimeSpan.FromSeconds(60);

    /// <summary>Null when the proof in <paramref name="request"/> is valid for <paramref name="accessToken"/>, else why not.</summary>
    /// <param name="origins">Where callers reach this listener: the proof's <c>htu</c> must name one of them.</param>
    public async ValueTask<Refusal?> ValidateAsync(
        HttpRequest request, string accessToken, string boundThumbprint, TimeSpan clockSkew, PublicOrigins origins, CancellationToken cancellationToken)
    {
        var headers = request.Headers["DPoP"];
        if (headers.Count != 1 || string.IsNullOrEmpty(headers[0]) || headers[0]!.Length > 8 * 1024)
        {
            return Refusal.Unauthenticated("a DPoP-bound token needs exactly one DPoP proof header");
        }

        JsonWebToken proof;
        try
        {
            proof = Handler.ReadJsonWebToken(headers[0]);
        }
        catch (Exception ex) when (ex is ArgumentException or SecurityTokenException)
        {
            return Invalid("it is not a JWT");
        }

        if (proof.Typ != "dpop+jwt")
        {
            return Invalid("its typ is not dpop+jwt");
        }

        if (JwsHeader.NamesCriticalExtensions(proof))
        {
            return Invalid("it names critical header extensions (crit) the gateway does not understand");
        }

        if (!Algorithms.Contains(proof.Alg))
        {
            return Invalid("its algorithm is not an allowed asymmetric one");
        }

        if (!proof.TryGetHeaderValue<JsonElement>("jwk", out var jwkElement) || jwkElement.ValueKind != JsonValueKind.Object)
        {
            return Invalid("it carries no jwk");
        }

        if (PrivateMembers.Any(m => jwkElement.TryGetProperty(m, out _)))
        {
            return Invalid("its jwk holds private or symmetric key material");
        }

        JsonWebKey jwk;
        try
        {
            jwk = new JsonWebKey(jwkElement.GetRawText());
        }
        catch (ArgumentException)
        {
            return Invalid("its jwk cannot be read");
        }

        var signed = await Handler.ValidateTokenAsync(proof, new TokenValidationParameters
        {
            IssuerSigningKey = jwk,
            ValidateIssuer = false,
            ValidateAudience = false,
            ValidateLifetime = false,
            RequireExpirationTime = false,
            ValidTypes = ["dpop+jwt"],
            ValidAlgorithms = Algorithms,
            TryAllIssuerSigningKeys = true,
        });
        if (!signed.IsValid)
        {
            return Invalid("its signature does not verify with its jwk");
        }

        if (Base64UrlEncoder.Encode(jwk.ComputeJwkThumbprint()) != boundThumbprint)
        {
            return Invalid("it is signed by another key than the one the token is bound to (cnf.jkt)");
        }

        if (!proof.TryGetPayloadValue<string>("htm", out var htm) || htm != request.Method)
        {
            return Invalid("its htm is not this request's method");
        }

        if (!proof.TryGetPayloadValue<string>("htu", out var htu) || !origins.Matches(htu, request))
        {
            return Invalid(origins.Origins.Count > 0
                ? "its htu is not this request's URL at one of the gateway's public origins"
                : "its htu is not this request's URL at the address it was sent to (behind a proxy, set the gateway's public origins)");
        }

        var now = time.GetUtcNow();
        if (!proof.TryGetPayloadValue<long>("iat", out var iat)
            || DateTimeOffset.FromUnixTimeSeconds(iat) < now - MaxAge - clockSkew
            || DateTimeOffset.FromUnixTimeSeconds(iat) > now + clockSkew)
        {
            return Invalid("its iat is missing or not recent");
        }

        var expectedAth = Base64UrlEncoder.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(accessToken)));
        if (!proof.TryGetPayloadValue<string>("ath", out var ath) || ath != expectedAth)
        {
            return Invalid("its ath does not match the access token");
        }

        if (!proof.TryGetPayloadValue<string>("jti", out var jti) || string.IsNullOrEmpty(jti) || jti.Length > 256)
        {
            return Invalid("it has no jti");
        }

        var key = "dpop:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(boundThumbprint + "\n" + jti)));
        bool first;
        try
        {
            first = await replay.TryClaimAsync(key, MaxAge + clockSkew + clockSkew, cancellationToken);
        }
        catch (PolicyStateUnavailableException)
        {
            // Replays cannot be ruled out: fail closed.
            return Refusal.IdentityUnavailable("DPoP replay protection is unavailable");
        }

        return first ? null : Invalid("it was used before (replay)");
    }

    private static Refusal Invalid(string why) => Refusal.Unauthenticated("the DPoP proof is invalid: " + why);
}
