using System.Collections.Frozen;
using AgentGateway.Configuration;
using AgentGateway.Proxy.Configuration;
using AgentGateway.Proxy.Problems;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace AgentGateway.Proxy.Identity;

/// <summary>What a request's <c>Authorization</c> header carries: nothing (no header and no
/// refusal), a token and whether it came under the DPoP scheme, or why it cannot be read. The token
/// is <paramref name="Header"/> from <paramref name="Start"/> on: read in place, not copied out.</summary>
public readonly record struct PresentedToken(string? Header, int Start, bool DpopScheme, Refusal Refusal)
{
    /// <summary>A token given whole (not from an <c>Authorization</c> header).</summary>
    public PresentedToken(string token, bool dpopScheme)
        : this(token, 0, dpopScheme, default)
    {
    }

    public bool Failed => Refusal.Status != 0;

    public bool HasToken => Header is not null;

    /// <summary>The token's characters, in the header's own string.</summary>
    public ReadOnlyMemory<char> Token => Header is null ? default : Header.AsMemory(Start);

    /// <summary>Never the token.</summary>
    public override string ToString() => HasToken ? $"a {(DpopScheme ? "DPoP" : "Bearer")} token" : Failed ? Refusal.Detail : "no token";
}

/// <summary>An access token that passed <see cref="AccessTokenRules"/>: validated, not too
/// long-lived, naming its holder, and — when bound to a key — presented with a valid proof.</summary>
/// <param name="Jwt">The validated token.</param>
/// <param name="Issuer">The issuer that vouched for it.</param>
/// <param name="Subject">The value of the issuer's agent claim: who holds it.</param>
/// <param name="Token">The token itself. Never printed.</param>
/// <param name="KeyBound">Bound to a key (<c>cnf.jkt</c>) and proven with DPoP on this request.</param>
public sealed record ProvenToken(JsonWebToken Jwt, TrustedIssuer Issuer, string Subject, string Token, bool KeyBound)
{
    /// <summary>Until when the token is valid (its <c>exp</c>).</summary>
    public DateTimeOffset ExpiresAt { get; init; }

    /// <summary>The value of the revision's task claim (<c>Policy:TaskClaim</c>), if the token has it.</summary>
    public string? Task { get; init; }
}

/// <summary>A verified token and its issuer, or why not.</summary>
/// <param name="Token">The token verified, as a string: on a cache hit, the one kept since it was
/// first verified, so a request's token is never copied out of its header again.</param>
/// <param name="Claims">What the rules read of a verified token's claims, read once when it is
/// verified and kept with it in the cache, not looked up in its payload on every request.</param>
internal readonly record struct TokenCheck(JsonWebToken? Jwt, TrustedIssuer? Issuer, Refusal Refusal, string? Token = null, TokenClaims? Claims = null)
{
    public static TokenCheck Fail(Refusal refusal) => new(null, null, refusal);
}

/// <summary>The claims of a verified token the rules decide on, for one revision (its lifetime
/// limit, its task claim) and the issuer that verified it (its agent claim).</summary>
/// <param name="TooLong">The refusal when the token lives longer than the revision allows.</param>
/// <param name="Subject">The issuer's agent claim, if a string.</param>
/// <param name="Thumbprint">The key the token is bound to (<c>cnf.jkt</c>), if any.</param>
/// <param name="Task">The revision's task claim, if a string.</param>
/// <param name="ExpiresAt">Its <c>exp</c>.</param>
internal sealed record TokenClaims(Refusal? TooLong, string? Subject, string? Thumbprint, string? Task, DateTimeOffset ExpiresAt);

/// <summary>
/// The rules every OAuth access token presented to the gateway must pass, whoever presents it —
/// an agent on the proxy listener or an operator on the admin API: one <c>Authorization</c>
/// header, the Bearer or DPoP scheme, the token validated against the issuer its exact <c>iss</c>
/// names (signature, algorithms, <c>typ</c>, audience, lifetime with the configured skew, <c>iat</c>
/// not in the future, no unknown <c>crit</c>), a lifetime no longer than
/// <c>Inbound:MaxTokenLifetime</c>, the holder named by the issuer's agent claim, and RFC 9449's
/// binding: a key-bound token only with the DPoP scheme and a valid proof for this listener's
/// origin, an unbound one never with it, and none at all from an issuer that requires DPoP.
/// Validation is the identity library's (<see cref="JsonWebTokenHandler"/>, the one the ASP.NET
/// Core JwtBearer handler uses); successes are cached briefly, everything per request is not.
/// </summary>
public sealed partial class AccessTokenRules(DpopValidator dpop, TimeProvider time, ILogger<AccessTokenRules> logger)
{
    private const string BearerPrefix = "Bearer ";
    private const string DpopPrefix = "DPoP ";

    private static readonly System.Collections.Frozen.FrozenSet<string> SvidAlgorithms = SigningAlgorithm.All;

    private readonly ValidationCache _validated = new();
    private readonly ValidationCache _svids = new();

    private readonly JsonWebTokenHandler _handler = new()
    {
        // Claim names as issued: the agent claim is looked up by its real name.
        MapInboundClaims = false,
    };

    /// <summary>The token in <c>Authorization</c>, if any. Two headers are refused rather than
    /// guessed between (they would be merged into one line on the way out).</summary>
    public static PresentedToken Read(HttpRequest request, GatewayRevision revision)
    {
        var authorization = request.Headers.Authorization;
        if (authorization.Count == 0)
        {
            return default;
        }

        if (authorization.Count > 1)
        {
            return new(null, 0, false, Refusal.BadRequest("more than one Authorization header"));
        }

        var value = authorization[0];
        if (string.IsNullOrEmpty(value) || value.Length > revision.Inbound.MaxTokenBytes)
        {
            return new(null, 0, false, Refusal.Unauthenticated("the Authorization header is empty or too large"));
        }

        var dpopScheme = value.StartsWith(DpopPrefix, StringComparison.OrdinalIgnoreCase);
        if (!dpopScheme && !value.StartsWith(BearerPrefix, StringComparison.OrdinalIgnoreCase))
        {
            return new(null, 0, false, Refusal.Unauthenticated("only the Bearer and DPoP schemes are accepted"));
        }

        return new(value, dpopScheme ? DpopPrefix.Length : BearerPrefix.Length, dpopScheme, default);
    }

    /// <summary>Applies every rule to a presented token.</summary>
    /// <param name="request">The HTTP request whose DPoP proof is checked; null on connections that
    /// cannot carry one (the database listener), where a key-bound token is then refused.</param>
    /// <param name="origins">Where callers reach this listener (a DPoP proof's <c>htu</c>).</param>
    /// <remarks>Not an async method: with the token's validation cached and no DPoP proof to check
    /// (most requests), nothing here waits.</remarks>
    public ValueTask<(ProvenToken? Token, Refusal Refusal)> ProveAsync(
        HttpRequest? request, PresentedToken presented, GatewayRevision revision, PublicOrigins origins, CancellationToken cancellationToken)
    {
        if (!presented.HasToken)
        {
            throw new ArgumentException("no token was presented", nameof(presented));
        }

        var validating = ValidateAsync(presented.Token, revision, cancellationToken);
        return validating.IsCompletedSuccessfully
            ? Prove(validating.Result, request, presented, origins, cancellationToken)
            : ProveAsync(validating, request, presented, origins, cancellationToken);
    }

    private async ValueTask<(ProvenToken? Token, Refusal Refusal)> ProveAsync(
        ValueTask<TokenCheck> validating, HttpRequest? request, PresentedToken presented, PublicOrigins origins, CancellationToken cancellationToken) =>
        await Prove(await validating, request, presented, origins, cancellationToken);

    private ValueTask<(ProvenToken? Token, Refusal Refusal)> Prove(
        TokenCheck check, HttpRequest? request, PresentedToken presented, PublicOrigins origins, CancellationToken cancellationToken)
    {
        if (check.Jwt is not { } jwt)
        {
            return new((null, check.Refusal));
        }

        var token = check.Token!;
        var issuer = check.Issuer!;
        // Set on every verified token (ValidateAsync), cached with it.
        var claims = check.Claims!;
        if (claims.TooLong is { } tooLong)
        {
            return new((null, tooLong));
        }

        if (string.IsNullOrEmpty(claims.Subject))
        {
            return new((null, Refusal.AgentUnknown($"the token has no '{issuer.AgentClaim}' claim naming its holder")));
        }

        // RFC 9449: a key-bound token is worth nothing without proof of the key, and must never be
        // accepted as a plain bearer token (§7.1); a token that is not bound cannot use DPoP.
        var thumbprint = claims.Thumbprint;
        var proven = new ProvenToken(jwt, issuer, claims.Subject, token, KeyBound: thumbprint is not null) { ExpiresAt = claims.ExpiresAt, Task = claims.Task };
        if (thumbprint is null && presented.DpopScheme)
        {
            return new((null, Refusal.Unauthenticated("the DPoP scheme needs a DPoP-bound token (cnf.jkt)")));
        }

        if (thumbprint is not null && !presented.DpopScheme)
        {
            return new((null, Refusal.Unauthenticated("this token is bound to a key: present it with the DPoP scheme and a DPoP proof")));
        }

        if (thumbprint is null && issuer.RequireDpop)
        {
            return new((null, Refusal.Unauthenticated($"issuer '{issuer.Name}' requires DPoP-bound tokens")));
        }

        if (thumbprint is null)
        {
            return new((proven, default));
        }

        if (request is null)
        {
            return new((null, Refusal.Unauthenticated("this token is bound to a key, and this connection cannot carry a DPoP proof")));
        }

        return ProvenWithKeyAsync(proven, request, thumbprint, origins, cancellationToken);
    }

    private async ValueTask<(ProvenToken? Token, Refusal Refusal)> ProvenWithKeyAsync(
        ProvenToken proven, HttpRequest request, string thumbprint, PublicOrigins origins, CancellationToken cancellationToken) =>
        await dpop.ValidateAsync(request, proven.Token, thumbprint, proven.Issuer.ClockSkew, origins, cancellationToken) is { } badProof
            ? (null, badProof)
            : (proven, default);

    /// <summary>Validates a JWT against the trusted issuer its <c>iss</c> names: signature, claims,
    /// <c>typ</c>, <c>iat</c>. Without the binding and lifetime rules, for tokens that are not the
    /// caller's own (a user's delegation token).</summary>
    internal ValueTask<TokenCheck> ValidateAsync(ReadOnlyMemory<char> token, GatewayRevision revision, CancellationToken cancellationToken)
    {
        // A caller sends the same token on every call of a task: verifying its signature once per
        // minute, not once per request, is most of what identity costs. Only successes are kept,
        // per revision, never past the token's expiry, and only for the very token verified (see
        // ValidationCache); everything decided per request (DPoP, revocation, policy) still is.
        var key = ValidationCache.Key(token.Span, revision.Number);
        var now = time.GetUtcNow();
        return _validated.TryGet(key, token.Span, now, out var cached, out _) ? new(cached) : ValidateAndKeepAsync(token, key, now, revision, cancellationToken);
    }

    private async ValueTask<TokenCheck> ValidateAndKeepAsync(
        ReadOnlyMemory<char> token, (UInt128, long) key, DateTimeOffset now, GatewayRevision revision, CancellationToken cancellationToken)
    {
        // A miss: the one copy of the token, which the cache then keeps for every later hit.
        var text = token.ToString();
        var check = await ValidateUncachedAsync(text, revision, cancellationToken) with { Token = text };
        if (check.Jwt is { } valid)
        {
            var until = new DateTimeOffset(valid.ValidTo, TimeSpan.Zero);
            check = check with { Claims = new TokenClaims(LivesTooLong(valid, revision.Inbound), Claim(valid, check.Issuer!.AgentClaim), BoundThumbprint(valid), revision.Policy.TaskClaim is { } task ? Claim(valid, task) : null, until) };
            _validated.Add(key, text, check, until < now + ValidationCache.Lifetime ? until : now + ValidationCache.Lifetime);
        }

        return check;

        static string? Claim(JsonWebToken jwt, string name) => jwt.TryGetPayloadValue<string>(name, out var value) ? value : null;
    }

    private async ValueTask<TokenCheck> ValidateUncachedAsync(string token, GatewayRevision revision, CancellationToken cancellationToken)
    {
        if (!_handler.CanReadToken(token))
        {
            return TokenCheck.Fail(Refusal.Unauthenticated("the access token is not a well-formed JWT"));
        }

        JsonWebToken jwt;
        try
        {
            jwt = _handler.ReadJsonWebToken(token);
        }
        catch (Exception ex) when (ex is ArgumentException or SecurityTokenException)
        {
            return TokenCheck.Fail(Refusal.Unauthenticated("the access token is not a well-formed JWT"));
        }

        if (jwt.IsEncrypted || !revision.Inbound.TryGetIssuer(jwt.Issuer, out var issuer))
        {
            return TokenCheck.Fail(Refusal.Unauthenticated("the token's issuer is not trusted"));
        }

        if (JwsHeader.NamesCriticalExtensions(jwt))
        {
            return TokenCheck.Fail(Refusal.Unauthenticated("the token names critical header extensions (crit) the gateway does not understand"));
        }

        TokenValidationResult result;
        try
        {
            var parameters = await issuer!.GetParametersAsync(time, cancellationToken);
            result = await _handler.ValidateTokenAsync(jwt, parameters);
            if (!result.IsValid && result.Exception is SecurityTokenSignatureKeyNotFoundException)
            {
                // Perhaps the issuer rotated its keys. The refresh is throttled by the key source,
                // so a flood of made-up kids costs at most one fetch per interval.
                issuer.RequestKeyRefresh();
                var refreshed = await issuer.GetParametersAsync(time, cancellationToken);
                if (!ReferenceEquals(refreshed, parameters))
                {
                    result = await _handler.ValidateTokenAsync(jwt, refreshed);
                }
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            Log.IssuerKeysUnavailable(logger, issuer!.Name, ex.GetType().Name);
            return TokenCheck.Fail(Refusal.IdentityUnavailable($"the keys of issuer '{issuer.Name}' could not be obtained"));
        }

        if (!result.IsValid)
        {
            return TokenCheck.Fail(Refusal.Unauthenticated(Explain(result.Exception)));
        }

        if (IssuedInTheFuture(jwt, issuer.ClockSkew))
        {
            return TokenCheck.Fail(Refusal.Unauthenticated("the token's iat lies in the future"));
        }

        return new TokenCheck(jwt, issuer, default);
    }

    /// <summary>
    /// A JWT-SVID — a token signed by a key of the SPIFFE trust domain's JWT bundle rather than by
    /// a trusted issuer — by the rules every token here passes: an allowed algorithm, only
    /// accepted audiences, <c>exp</c> required, lifetime and <c>iat</c> judged with
    /// <c>Inbound:ClockSkew</c>, no longer-lived than <c>Inbound:MaxTokenLifetime</c>; successes
    /// cached like issuers' tokens. Its <c>typ</c> is the JWT-SVID's own (<see cref="SvidType"/>).
    /// </summary>
    /// <returns>No refusal (status 0) when the SVID is valid.</returns>
    internal async ValueTask<Refusal> ValidateSvidAsync(JsonWebToken jwt, string token, SpiffeTrust spiffe, GatewayRevision revision)
    {
        var key = ValidationCache.Key(token, revision.Number);
        var now = time.GetUtcNow();
        // Kept apart from issuers' tokens: a cached SVID has no issuer, and must never answer for
        // a token that is checked as an issuer's (a delegation).
        if (!_svids.TryGet(key, token, now, out _, out _))
        {
            var result = await _handler.ValidateTokenAsync(jwt, new TokenValidationParameters
            {
                IssuerSigningKeys = spiffe.JwtKeys?.GetSigningKeys() ?? [],
                ValidateIssuer = false,
                ValidateAudience = true,
                AudienceValidator = spiffe.AudienceRule,
                TypeValidator = SvidType,
                ValidAlgorithms = SvidAlgorithms,
                RequireExpirationTime = true,
                RequireSignedTokens = true,
                ValidateLifetime = true,
                LifetimeValidator = TrustedIssuer.Lifetime(time),
                ClockSkew = revision.Inbound.ClockSkew,
                SaveSigninToken = false,
            });
            if (!result.IsValid)
            {
                return Refusal.Unauthenticated("the JWT-SVID is invalid: " + Explain(result.Exception));
            }

            if (IssuedInTheFuture(jwt, revision.Inbound.ClockSkew))
            {
                return Refusal.Unauthenticated("the JWT-SVID's iat lies in the future");
            }

            var until = new DateTimeOffset(jwt.ValidTo, TimeSpan.Zero);
            _svids.Add(key, token, new TokenCheck(jwt, null, default, token), until < now + ValidationCache.Lifetime ? until : now + ValidationCache.Lifetime);
        }

        return LivesTooLong(jwt, revision.Inbound) ?? default;
    }

    /// <summary>
    /// Every audience a token names must be one the gateway accepts, compared exactly (no
    /// trailing-slash or case folding); a token without one is refused. A token that also names
    /// another service is one that service could replay here. For JWT-SVIDs this is the strict
    /// reading of the SPIFFE JWT-SVID specification: §3.2 only requires that the validator's own
    /// value be present and recommends a single audience, but §6.2 explains that a JWT-SVID with
    /// audiences Bob and Chuck lets Chuck impersonate its holder to Bob — the gateway will not be Bob.
    /// </summary>
    internal static AudienceValidator OnlyAudiences(IEnumerable<string> accepted)
    {
        var ours = accepted.ToFrozenSet(StringComparer.Ordinal);
        return (tokenAudiences, _, _) =>
        {
            var any = false;
            foreach (var audience in tokenAudiences)
            {
                if (!ours.Contains(audience))
                {
                    return false;
                }

                any = true;
            }

            return any;
        };
    }

    /// <summary>
    /// A JWT-SVID's <c>typ</c> is absent, <c>JWT</c> or <c>JOSE</c> (SPIFFE JWT-SVID §2.3; compared as
    /// media types, RFC 7515 §4.1.9: any case, <c>application/</c> implied). Anything else — an
    /// access token's <c>at+jwt</c>, a DPoP proof's <c>dpop+jwt</c> — is a token of another kind
    /// that happens to be signed by a bundle key, and is not replayed here as an SVID.
    /// </summary>
    private static string SvidType(string? type, SecurityToken token, TokenValidationParameters parameters)
    {
        var bare = type is not null && type.StartsWith("application/", StringComparison.OrdinalIgnoreCase) ? type["application/".Length..] : type;
        return string.IsNullOrEmpty(type) || string.Equals(bare, "JWT", StringComparison.OrdinalIgnoreCase) || string.Equals(bare, "JOSE", StringComparison.OrdinalIgnoreCase)
            ? type ?? string.Empty
            : throw new SecurityTokenInvalidTypeException("a JWT-SVID's typ is JWT or JOSE") { InvalidType = type };
    }

    /// <summary>A long-lived token is a static key with extra steps: refused when its lifetime,
    /// <c>exp</c> − <c>iat</c> (or <c>nbf</c>), exceeds <c>Inbound:MaxTokenLifetime</c>, or when it
    /// says neither.</summary>
    private static Refusal? LivesTooLong(JsonWebToken jwt, InboundOptions inbound)
    {
        var issued = jwt.TryGetPayloadValue<long>(JwtRegisteredClaimNames.Iat, out var iat) ? DateTimeOffset.FromUnixTimeSeconds(iat)
            : jwt.ValidFrom != DateTime.MinValue ? new DateTimeOffset(jwt.ValidFrom, TimeSpan.Zero) : (DateTimeOffset?)null;
        if (issued is null)
        {
            return Refusal.Unauthenticated("the token says neither when it was issued (iat) nor from when it is valid (nbf)");
        }

        var lifetime = new DateTimeOffset(jwt.ValidTo, TimeSpan.Zero) - issued.Value;
        return lifetime > inbound.MaxTokenLifetime
            ? Refusal.TokenLifetimeTooLong($"the token lives {lifetime.TotalMinutes:0} minutes; at most {inbound.MaxTokenLifetime.TotalMinutes:0} are accepted (Gateway:Inbound:MaxTokenLifetime)")
            : null;
    }

    /// <summary>The library does not look at <c>iat</c>; a token "issued" in the future was minted
    /// by a skewed or hostile clock.</summary>
    private bool IssuedInTheFuture(JsonWebToken jwt, TimeSpan skew) =>
        jwt.TryGetPayloadValue<long>(JwtRegisteredClaimNames.Iat, out var iat) &&
        DateTimeOffset.FromUnixTimeSeconds(iat) > time.GetUtcNow() + skew;

    /// <summary>The <c>cnf.jkt</c> the token is bound to, or null.</summary>
    private static string? BoundThumbprint(JsonWebToken jwt) =>
        jwt.TryGetPayloadValue<System.Text.Json.JsonElement>("cnf", out var cnf)
        && cnf.ValueKind == System.Text.Json.JsonValueKind.Object
        && cnf.TryGetProperty("jkt", out var jkt) && jkt.ValueKind == System.Text.Json.JsonValueKind.String
            ? jkt.GetString()
            : null;

    /// <summary>A short, safe explanation: the class of failure, never the token's content.</summary>
    internal static string Explain(Exception? exception) => exception switch
    {
        SecurityTokenExpiredException => "the access token has expired",
        SecurityTokenNotYetValidException => "the access token is not valid yet",
        SecurityTokenNoExpirationException => "the access token has no expiry",
        SecurityTokenInvalidAudienceException => "the access token is not for this gateway (audience)",
        SecurityTokenInvalidIssuerException => "the token's issuer is not trusted",
        SecurityTokenInvalidTypeException => "the token is not an access token (typ)",
        SecurityTokenInvalidAlgorithmException => "the token's signature algorithm is not allowed",
        SecurityTokenSignatureKeyNotFoundException => "the token is signed with a key the issuer does not publish",
        SecurityTokenInvalidSignatureException => "the token's signature is invalid",
        _ => "the access token is invalid",
    };

    private static partial class Log
    {
        [LoggerMessage(EventId = 1211, Level = LogLevel.Warning, Message = "The keys of issuer {IssuerName} could not be obtained: {ErrorType}")]
        public static partial void IssuerKeysUnavailable(ILogger logger, string issuerName, string errorType);
    }
}
