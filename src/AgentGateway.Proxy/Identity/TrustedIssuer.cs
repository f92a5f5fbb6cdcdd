using Microsoft.IdentityModel.Protocols;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;
using Microsoft.IdentityModel.Tokens;

namespace AgentGateway.Proxy.Identity;

/// <summary>
/// One trusted issuer of agent access tokens, compiled from configuration. Each issuer has its
/// own key source, so a key published by issuer B can never validate a token naming issuer A.
/// </summary>
public sealed class TrustedIssuer
{
    private readonly IConfigurationManager<OpenIdConnectConfiguration> _keys;
    private readonly TokenValidationParameters _template;
    private ValidationSnapshot? _snapshot;

    public TrustedIssuer(
        string name,
        string issuer,
        IReadOnlyList<string> audiences,
        string agentClaim,
        IReadOnlyList<string> algorithms,
        IReadOnlyList<string> tokenTypes,
        TimeSpan clockSkew,
        IConfigurationManager<OpenIdConnectConfiguration> keys)
    {
        Name = name;
        Issuer = issuer;
        AgentClaim = agentClaim;
        _keys = keys;
        _template = new TokenValidationParameters
        {
            ValidIssuer = issuer,
            ValidateIssuer = true,
            ValidateAudience = true,
            AudienceValidator = AccessTokenRules.OnlyAudiences(audiences),
            ValidAlgorithms = [.. algorithms],
            ValidTypes = [.. tokenTypes],
            ClockSkew = clockSkew,
            RequireExpirationTime = true,
            RequireSignedTokens = true,
            ValidateLifetime = true,
            ValidateIssuerSigningKey = true,
            // Only keys from this issuer's own key set; the token's header may not point elsewhere
            // (jku, x5u and jwk are never read). A token naming a kid must be signed by that key:
            // trying every key for a made-up kid would let one request cost a signature check per
            // published key, and accept tokens the issuer's own tooling would call malformed.
            TryAllIssuerSigningKeys = false,
            IssuerSigningKeyResolver = (_, _, kid, parameters) => KeysNamed(kid, parameters.IssuerSigningKeys),
            SaveSigninToken = false,
        };
    }

    /// <summary>The configured name, as agents' identities refer to it.</summary>
    public string Name { get; }

    /// <summary>The exact <c>iss</c> value.</summary>
    public string Issuer { get; }

    public string AgentClaim { get; }

    /// <summary>Tokens of this issuer must be DPoP-bound (RFC 9449) and presented with a proof.</summary>
    public bool RequireDpop { get; init; }

    public TimeSpan ClockSkew => _template.ClockSkew;

    /// <summary>The validation parameters for the issuer's current keys. Rebuilt only when the
    /// key set changes, so a request with warm keys allocates none.</summary>
    /// <param name="time">The clock lifetimes are judged on.</param>
    public async ValueTask<TokenValidationParameters> GetParametersAsync(TimeProvider time, CancellationToken cancellationToken)
    {
        var configuration = await _keys.GetConfigurationAsync(cancellationToken);
        var snapshot = _snapshot;
        if (snapshot is null || !ReferenceEquals(snapshot.Configuration, configuration) || !ReferenceEquals(snapshot.Time, time))
        {
            var parameters = _template.Clone();
            parameters.IssuerSigningKeys = configuration.SigningKeys;
            parameters.LifetimeValidator = Lifetime(time);
            snapshot = new ValidationSnapshot(configuration, time, parameters);
            _snapshot = snapshot;
        }

        return snapshot.Parameters;
    }

    /// <summary>Asks for fresh keys (a token named a key we do not have). The key source
    /// throttles this to its refresh interval, so a flood of unknown kids costs one fetch.</summary>
    public void RequestKeyRefresh() => _keys.RequestRefresh();

    /// <summary>The key the token names; every key of the set only for a token naming none (an
    /// issuer with a single unnamed key). Empty for an unknown kid, which the caller treats as a
    /// possible rotation.</summary>
    private static IEnumerable<SecurityKey> KeysNamed(string? kid, IEnumerable<SecurityKey>? keys)
    {
        if (keys is null)
        {
            return [];
        }

        if (string.IsNullOrEmpty(kid))
        {
            return keys;
        }

        return keys.Where(key => string.Equals(key.KeyId, kid, StringComparison.Ordinal));
    }

    /// <summary>
    /// The library's lifetime rule — <c>exp</c> required, <c>nbf</c> and <c>exp</c> each with the
    /// clock skew — judged on the gateway's clock (its <see cref="TimeProvider"/>) instead of the
    /// system's, which the library would read: the same clock as the validation cache, sessions
    /// and every other expiry, so one clock decides whether a token still lives.
    /// </summary>
    public static LifetimeValidator Lifetime(TimeProvider time) => (notBefore, expires, _, parameters) =>
    {
        var now = time.GetUtcNow().UtcDateTime;
        if (expires is not { } exp)
        {
            throw new SecurityTokenNoExpirationException("the token has no expiry (exp)");
        }

        exp = exp.ToUniversalTime();
        var nbf = notBefore?.ToUniversalTime();
        if (nbf > exp)
        {
            throw new SecurityTokenInvalidLifetimeException("the token's nbf is after its exp") { NotBefore = nbf, Expires = exp };
        }

        if (nbf > now + parameters.ClockSkew)
        {
            throw new SecurityTokenNotYetValidException("the token is not valid yet (nbf)") { NotBefore = nbf.Value };
        }

        if (exp < now - parameters.ClockSkew)
        {
            throw new SecurityTokenExpiredException("the token has expired (exp)") { Expires = exp };
        }

        return true;
    };

    private sealed record ValidationSnapshot(OpenIdConnectConfiguration Configuration, TimeProvider Time, TokenValidationParameters Parameters);
}
