using AgentGateway.Credentials;
using AgentGateway.Proxy.Configuration;
using AgentGateway.Proxy.Inventory;
using AgentGateway.Proxy.Problems;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace AgentGateway.Proxy.Identity;

/// <summary>The agent as proven on this request.</summary>
/// <param name="Agent">The inventory entry.</param>
/// <param name="Issuer">The issuer that vouched for it.</param>
/// <param name="Subject">The agent claim's value.</param>
/// <param name="Token">The agent's verified access token: the actor token of on-behalf-of exchanges. Never printed.</param>
/// <param name="Task">The task named by the token's task claim (<c>Gateway:Policy:Task:Claim</c>), if any.</param>
/// <param name="IdentityKind">How it proved itself: the issuer's name for tokens, or <c>spiffe</c>,
/// <c>x509-sha256</c>, <c>x509-san</c>, <c>static-key</c>.</param>
public sealed record AuthenticatedAgent(Agent Agent, TrustedIssuer? Issuer, string Subject, string Token, string? Task = null, string? IdentityKind = null)
{
    public string Kind => IdentityKind ?? Issuer?.Name ?? "unknown";

    /// <summary>For an agent class: which instance of it this is (its identity's subject).</summary>
    public string? Instance { get; init; }

    /// <summary>When the proof stops proving: the token's <c>exp</c>, the certificate's end. A
    /// long-lived connection (a database session) lasts no longer.</summary>
    public DateTimeOffset? ExpiresAt { get; init; }

    public IdentityStrength Strength => IdentityKind == StaticKeys.Issuer ? IdentityStrength.Weak : IdentityStrength.Strong;

    public override string ToString() => $"agent {Agent.Id} ({Kind}:{Subject})";
}

/// <summary>A delegation check: none presented (both null), a verified delegation, or why not.</summary>
public readonly record struct DelegationOutcome(Delegation? Delegation, Refusal Refusal)
{
    public bool Failed => Refusal.Status != 0;

    public static DelegationOutcome Fail(Refusal refusal) => new(null, refusal);
}

/// <summary>A verified token and its issuer, or why not.</summary>
internal readonly record struct TokenCheck(JsonWebToken? Jwt, TrustedIssuer? Issuer, Refusal Refusal)
{
    public static TokenCheck Fail(Refusal refusal) => new(null, null, refusal);
}

/// <summary>An authentication result: the agent, or why not.</summary>
public readonly record struct AuthenticationOutcome(AuthenticatedAgent? Agent, Refusal Refusal)
{
    public static AuthenticationOutcome Success(AuthenticatedAgent agent) => new(agent, default);

    public static AuthenticationOutcome Fail(Refusal refusal) => new(null, refusal);
}

/// <summary>
/// Proves which inventory agent sent a request, from the agent's own OAuth 2.1 access token.
/// Validation is the identity library's (<see cref="JsonWebTokenHandler"/>, the same one the
/// ASP.NET Core JwtBearer handler uses); this class chooses the issuer by the token's exact
/// <c>iss</c>, applies the stricter rules the threat model asks for, and maps the verified
/// claim to the inventory.
/// </summary>
public sealed partial class AgentAuthenticator(DpopValidator dpop, AgentResolver resolver, TimeProvider time, ILogger<AgentAuthenticator> logger)
{
    private const string BearerPrefix = "Bearer ";
    private const string DpopPrefix = "DPoP ";

    private readonly ValidationCache _validated = new();

    private readonly JsonWebTokenHandler _handler = new()
    {
        // Claim names as issued: the agent claim is looked up by its real name.
        MapInboundClaims = false,
    };

    public async ValueTask<AuthenticationOutcome> AuthenticateAsync(HttpRequest request, GatewayRevision revision, CancellationToken cancellationToken)
    {
        var authorization = request.Headers.Authorization;
        if (authorization.Count == 0)
        {
            return await AuthenticateWithoutTokenAsync(request, revision);
        }

        if (authorization.Count > 1)
        {
            // Two values would be merged into one line on the way out; refuse rather than guess which counts.
            return Fail(Refusal.BadRequest("more than one Authorization header"));
        }

        var value = authorization[0];
        if (string.IsNullOrEmpty(value) || value.Length > revision.Inbound.MaxTokenBytes)
        {
            return Fail(Refusal.Unauthenticated("the Authorization header is empty or too large"));
        }

        var proofScheme = value.StartsWith(DpopPrefix, StringComparison.OrdinalIgnoreCase);
        if (!proofScheme && !value.StartsWith(BearerPrefix, StringComparison.OrdinalIgnoreCase))
        {
            return Fail(Refusal.Unauthenticated("only the Bearer and DPoP schemes are accepted"));
        }

        var token = value[(proofScheme ? DpopPrefix.Length : BearerPrefix.Length)..];
        return await AuthenticateTokenAsync(token, proofScheme, request, revision, cancellationToken);
    }

    /// <summary>
    /// An agent on a connection that is not HTTP (the database listener), by its access token alone,
    /// checked by exactly the rules a Bearer token is checked by here. Such a connection cannot carry
    /// a DPoP proof, so a DPoP-bound token is refused, as is an agent or issuer that requires DPoP.
    /// </summary>
    public ValueTask<AuthenticationOutcome> AuthenticateTokenAsync(string token, GatewayRevision revision, CancellationToken cancellationToken) =>
        string.IsNullOrEmpty(token) || token.Length > revision.Inbound.MaxTokenBytes
            ? ValueTask.FromResult(Fail(Refusal.Unauthenticated("the access token is empty or too large")))
            : AuthenticateTokenAsync(token, proofScheme: false, request: null, revision, cancellationToken);

    /// <summary>An agent on a TLS connection that is not HTTP (the database listener), by its client
    /// certificate (mTLS, X509-SVID), checked by the same rules as on an https endpoint.</summary>
    public AuthenticationOutcome AuthenticateCertificate(System.Security.Cryptography.X509Certificates.X509Certificate2 certificate, GatewayRevision revision)
    {
        var outcome = IdentifyCertificate(certificate, revision);
        return outcome.Agent is { } agent
            ? AuthenticationOutcome.Success(agent with { ExpiresAt = new DateTimeOffset(certificate.NotAfter.ToUniversalTime(), TimeSpan.Zero) })
            : outcome;
    }

    /// <param name="request">The HTTP request whose DPoP proof is checked; null where no proof can be carried.</param>
    private async ValueTask<AuthenticationOutcome> AuthenticateTokenAsync(string token, bool proofScheme, HttpRequest? request, GatewayRevision revision, CancellationToken cancellationToken)
    {
        if (!proofScheme && await TryJwtSvidAsync(token, revision) is { } svid)
        {
            return svid;
        }

        var check = await ValidateAsync(token, revision, cancellationToken);
        if (check.Jwt is not { } jwt)
        {
            return Fail(check.Refusal);
        }

        var issuer = check.Issuer!;
        var now = time.GetUtcNow();
        // A long-lived agent token is a static key with extra steps: lifetime is exp − iat (or nbf).
        var issued = jwt.TryGetPayloadValue<long>(JwtRegisteredClaimNames.Iat, out var iat) ? DateTimeOffset.FromUnixTimeSeconds(iat)
            : jwt.ValidFrom != DateTime.MinValue ? new DateTimeOffset(jwt.ValidFrom, TimeSpan.Zero) : (DateTimeOffset?)null;
        if (issued is null)
        {
            return Fail(Refusal.Unauthenticated("the token says neither when it was issued (iat) nor from when it is valid (nbf)"));
        }

        var lifetime = new DateTimeOffset(jwt.ValidTo, TimeSpan.Zero) - issued.Value;
        if (lifetime > revision.Inbound.MaxTokenLifetime)
        {
            return Fail(Refusal.TokenLifetimeTooLong($"the token lives {lifetime.TotalMinutes:0} minutes; at most {revision.Inbound.MaxTokenLifetime.TotalMinutes:0} are accepted (Gateway:Inbound:MaxTokenLifetime)"));
        }

        if (!jwt.TryGetPayloadValue<string>(issuer.AgentClaim, out var subject) || string.IsNullOrEmpty(subject))
        {
            return Fail(Refusal.AgentUnknown($"the token has no '{issuer.AgentClaim}' claim naming the agent"));
        }

        if (!resolver.TryResolve(revision, new AgentIdentityKey(issuer.Name, subject), out var agent, out var instance))
        {
            return Fail(Refusal.AgentUnknown("no agent of the inventory has this identity"));
        }

        if (agent!.ExpiresAt is { } expiresAt && expiresAt <= now)
        {
            return Fail(Refusal.AgentExpired($"agent '{agent.Id}' expired at {expiresAt:O}"));
        }

        // RFC 9449: a key-bound token is worth nothing without proof of the key, and must never be
        // accepted as a plain bearer token (§7.1); a token that is not bound cannot use DPoP.
        var thumbprint = BoundThumbprint(jwt);
        if (thumbprint is null && proofScheme)
        {
            return Fail(Refusal.Unauthenticated("the DPoP scheme needs a DPoP-bound token (cnf.jkt)"));
        }

        if (thumbprint is not null && !proofScheme)
        {
            return Fail(Refusal.Unauthenticated("this token is bound to a key: present it with the DPoP scheme and a DPoP proof"));
        }

        if (thumbprint is null && (issuer.RequireDpop || agent.RequireDpop))
        {
            return Fail(Refusal.Unauthenticated($"{(agent.RequireDpop ? $"agent '{agent.Id}'" : $"issuer '{issuer.Name}'")} requires DPoP-bound tokens"));
        }

        if (thumbprint is not null && (request is null
            ? Refusal.Unauthenticated("this token is bound to a key, and this connection cannot carry a DPoP proof")
            : await dpop.ValidateAsync(request, token, thumbprint, issuer.ClockSkew, cancellationToken)) is { } badProof)
        {
            return Fail(badProof);
        }

        string? task = null;
        if (revision.Policy.TaskClaim is { } claim && jwt.TryGetPayloadValue<string>(claim, out var named))
        {
            task = named;
        }

        return AuthenticationOutcome.Success(new AuthenticatedAgent(agent, issuer, subject, token, task)
        {
            Instance = instance,
            ExpiresAt = new DateTimeOffset(jwt.ValidTo, TimeSpan.Zero),
        });
    }

    /// <summary>
    /// Verifies the delegation an agent presents: the user's access token in the configured header,
    /// from an issuer trusted for delegation, valid by the same rules as agent tokens, naming a
    /// user other than the agent — and, unless switched off, issued to this very agent (its
    /// <c>azp</c> or <c>client_id</c> is the agent's identity), so a user token lifted from another
    /// application cannot be replayed through an agent.
    /// </summary>
    /// <returns>No delegation when the header is absent; a refusal when it is present but not valid.</returns>
    public async ValueTask<DelegationOutcome> AuthenticateDelegationAsync(HttpRequest request, GatewayRevision revision, AuthenticatedAgent agent, CancellationToken cancellationToken)
    {
        var policy = revision.Inbound.Delegation;
        var values = request.Headers[policy.Header];
        if (values.Count == 0)
        {
            return default;
        }

        if (values.Count > 1)
        {
            return DelegationOutcome.Fail(Refusal.BadRequest($"more than one {policy.Header} header"));
        }

        if (!policy.Enabled)
        {
            return DelegationOutcome.Fail(Refusal.DelegationInvalid($"the request carries {policy.Header}, and this gateway accepts no delegations"));
        }

        var token = values[0];
        if (string.IsNullOrEmpty(token) || token.Length > revision.Inbound.MaxTokenBytes)
        {
            return DelegationOutcome.Fail(Refusal.DelegationInvalid("the delegation token is empty or too large"));
        }

        var check = await ValidateAsync(token, revision, cancellationToken);
        if (check.Jwt is not { } jwt)
        {
            return DelegationOutcome.Fail(check.Refusal.Status == 401 ? Refusal.DelegationInvalid("delegation token: " + check.Refusal.Detail) : check.Refusal);
        }

        var issuer = check.Issuer!;
        if (!policy.Issuers.Contains(issuer.Name))
        {
            return DelegationOutcome.Fail(Refusal.DelegationInvalid($"issuer '{issuer.Name}' is not trusted for delegation"));
        }

        if (!jwt.TryGetPayloadValue<string>(JwtRegisteredClaimNames.Sub, out var user) || string.IsNullOrEmpty(user))
        {
            return DelegationOutcome.Fail(Refusal.DelegationInvalid("the delegation token names no user (sub)"));
        }

        if (ReferenceEquals(issuer, agent.Issuer) && string.Equals(user, agent.Subject, StringComparison.Ordinal))
        {
            return DelegationOutcome.Fail(Refusal.DelegationInvalid("an agent cannot act on behalf of itself"));
        }

        if (policy.RequireAuthorizedParty && !IssuedTo(jwt, issuer, agent))
        {
            return DelegationOutcome.Fail(Refusal.DelegationInvalid("the user's token was not issued to this agent (azp/client_id)"));
        }

        return new DelegationOutcome(new Delegation(issuer.Name, user, token, new DateTimeOffset(jwt.ValidTo, TimeSpan.Zero)), default);
    }

    private static bool IssuedTo(JsonWebToken jwt, TrustedIssuer issuer, AuthenticatedAgent agent)
    {
        // Client identifiers are only meaningful within the issuer that assigned them.
        if (!ReferenceEquals(issuer, agent.Issuer))
        {
            return false;
        }

        var party = jwt.TryGetPayloadValue<string>("azp", out var azp) ? azp
            : jwt.TryGetPayloadValue<string>("client_id", out var clientId) ? clientId
            : null;
        return string.Equals(party, agent.Subject, StringComparison.Ordinal);
    }

    /// <summary>An operator calling the admin API: a bearer token from the configured admin issuer,
    /// validated by that issuer's rules, whose agent claim is one of the admin subjects.</summary>
    public async ValueTask<(string? Caller, Refusal Refusal)> AuthenticateAdminAsync(HttpRequest request, GatewayRevision revision, CancellationToken cancellationToken)
    {
        var authorization = request.Headers.Authorization;
        if (authorization.Count != 1 || authorization[0] is not { } value || !value.StartsWith(BearerPrefix, StringComparison.OrdinalIgnoreCase)
            || value.Length > revision.Inbound.MaxTokenBytes)
        {
            return (null, Refusal.Unauthenticated("the admin API needs 'Authorization: Bearer <token>'"));
        }

        var check = await ValidateAsync(value[BearerPrefix.Length..], revision, cancellationToken);
        if (check.Jwt is not { } jwt)
        {
            return (null, check.Refusal);
        }

        var issuer = check.Issuer!;
        if (!string.Equals(issuer.Name, revision.Admin.Issuer, StringComparison.OrdinalIgnoreCase)
            || !jwt.TryGetPayloadValue<string>(issuer.AgentClaim, out var subject)
            || subject is null || !revision.Admin.Subjects.Contains(subject))
        {
            return (null, Refusal.AdminForbidden("the token does not name an operator of this gateway (Gateway:Admin:Subjects)"));
        }

        return (subject, default);
    }

    /// <summary>Validates a JWT access token against the trusted issuer its <c>iss</c> names.</summary>
    private async ValueTask<TokenCheck> ValidateAsync(string token, GatewayRevision revision, CancellationToken cancellationToken)
    {
        // An agent sends the same token on every call of a task: verifying its signature once per
        // minute, not once per request, is most of what identity costs. Only successes are kept,
        // keyed by the token's hash (the token itself is not retained), per revision, never past
        // the token's expiry; everything decided per request (DPoP, revocation, policy) still is.
        var key = ValidationCache.Key(token, revision.Number);
        var now = time.GetUtcNow();
        if (_validated.TryGet(key, now, out var cached))
        {
            return cached;
        }

        var check = await ValidateUncachedAsync(token, revision, cancellationToken);
        if (check.Jwt is { } valid)
        {
            var until = new DateTimeOffset(valid.ValidTo, TimeSpan.Zero);
            _validated.Add(key, check, until < now + ValidationCache.Lifetime ? until : now + ValidationCache.Lifetime);
        }

        return check;
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
            var parameters = await issuer!.GetParametersAsync(cancellationToken);
            result = await _handler.ValidateTokenAsync(jwt, parameters);
            if (!result.IsValid && result.Exception is SecurityTokenSignatureKeyNotFoundException)
            {
                // Perhaps the issuer rotated its keys. The refresh is throttled by the key source,
                // so a flood of made-up kids costs at most one fetch per interval.
                issuer.RequestKeyRefresh();
                var refreshed = await issuer.GetParametersAsync(cancellationToken);
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

        // The library does not look at iat; a token "issued" in the future was minted by a
        // skewed or hostile clock.
        if (jwt.TryGetPayloadValue<long>(JwtRegisteredClaimNames.Iat, out var iat) &&
            DateTimeOffset.FromUnixTimeSeconds(iat) > time.GetUtcNow() + issuer.ClockSkew)
        {
            return TokenCheck.Fail(Refusal.Unauthenticated("the token's iat lies in the future"));
        }

        return new TokenCheck(jwt, issuer, default);
    }

    private static AuthenticationOutcome Fail(Refusal refusal) => AuthenticationOutcome.Fail(refusal);

    /// <summary>No bearer token: a static key (when the development switch is on), else the TLS
    /// connection's client certificate (mTLS, X509-SVID).</summary>
    private async ValueTask<AuthenticationOutcome> AuthenticateWithoutTokenAsync(HttpRequest request, GatewayRevision revision)
    {
        var inbound = revision.Inbound;
        if (inbound.StaticKeyHeader is { } header && request.Headers[header] is { Count: > 0 } keys)
        {
            if (keys.Count > 1 || string.IsNullOrEmpty(keys[0]))
            {
                return Fail(Refusal.BadRequest($"exactly one {header} header"));
            }

            return StaticKeys.Match(keys[0]!, revision.Agents.IdentitiesOf(StaticKeys.Issuer)) is { } key
                ? Admit(revision, key, StaticKeys.Issuer)
                : Fail(Refusal.AgentUnknown("no agent of the inventory has this key"));
        }

        if (inbound.Certificates.Enabled && await request.HttpContext.Connection.GetClientCertificateAsync(request.HttpContext.RequestAborted) is { } certificate)
        {
            return IdentifyCertificate(certificate, revision);
        }

        return Fail(Refusal.Unauthenticated("no access token; send 'Authorization: Bearer <token>'"));
    }

    private AuthenticationOutcome IdentifyCertificate(System.Security.Cryptography.X509Certificates.X509Certificate2 certificate, GatewayRevision revision)
    {
        if (!revision.Inbound.Certificates.Enabled)
        {
            return Fail(Refusal.Unauthenticated("client certificates are not accepted here"));
        }

        var (candidates, refusal) = CertificateIdentity.Identify(certificate, revision.Inbound.Certificates, time.GetUtcNow());
        if (refusal is { } refused)
        {
            return Fail(refused);
        }

        foreach (var key in candidates)
        {
            if (resolver.TryResolve(revision, key, out _, out _))
            {
                return Admit(revision, key, key.Issuer);
            }
        }

        return Fail(Refusal.AgentUnknown("no agent of the inventory has this certificate's identity"));
    }

    private static readonly HashSet<string> SvidAlgorithms = new(StringComparer.Ordinal) { "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512" };

    /// <summary>A JWT-SVID: a token without a trusted issuer whose <c>sub</c> is a SPIFFE ID, signed by a
    /// key of the trust domain's JWT bundle, for one of the accepted audiences. Null when the token
    /// is not one (it is then validated as an issuer's token).</summary>
    private async ValueTask<AuthenticationOutcome?> TryJwtSvidAsync(string token, GatewayRevision revision)
    {
        if (revision.Inbound.Certificates.Spiffe is not { JwtKeys: { } keys } spiffe || !_handler.CanReadToken(token))
        {
            return null;
        }

        JsonWebToken jwt;
        try
        {
            jwt = _handler.ReadJsonWebToken(token);
        }
        catch (Exception ex) when (ex is ArgumentException or SecurityTokenException)
        {
            return null;
        }

        if ((!string.IsNullOrEmpty(jwt.Issuer) && revision.Inbound.TryGetIssuer(jwt.Issuer, out _))
            || !jwt.TryGetPayloadValue<string>(JwtRegisteredClaimNames.Sub, out var subject) || subject?.StartsWith("spiffe://", StringComparison.Ordinal) != true)
        {
            return null;
        }

        if (JwsHeader.NamesCriticalExtensions(jwt))
        {
            return Fail(Refusal.Unauthenticated("the JWT-SVID names critical header extensions (crit) the gateway does not understand"));
        }

        var why = CertificateIdentity.CheckSpiffeId(subject, out var trustDomain);
        if (why is not null || trustDomain != spiffe.TrustDomain)
        {
            return Fail(Refusal.Unauthenticated("the JWT-SVID's SPIFFE ID is invalid or outside this trust domain" + (why is null ? "" : ": " + why)));
        }

        var result = await _handler.ValidateTokenAsync(jwt, new TokenValidationParameters
        {
            IssuerSigningKeys = keys.GetSigningKeys(),
            ValidateIssuer = false,
            ValidAudiences = spiffe.Audiences,
            ValidAlgorithms = SvidAlgorithms,
            RequireExpirationTime = true,
            ClockSkew = TimeSpan.FromSeconds(30),
        });
        if (!result.IsValid)
        {
            return Fail(Refusal.Unauthenticated("the JWT-SVID is invalid: " + Explain(result.Exception)));
        }

        var admitted = Admit(revision, new AgentIdentityKey(CertificateIdentity.SpiffeIssuer, subject), "spiffe-jwt");
        return admitted.Agent is { } agent ? AuthenticationOutcome.Success(agent with { ExpiresAt = new DateTimeOffset(jwt.ValidTo, TimeSpan.Zero) }) : admitted;
    }

    private AuthenticationOutcome Admit(GatewayRevision revision, AgentIdentityKey key, string kind)
    {
        if (!resolver.TryResolve(revision, key, out var agent, out var instance))
        {
            return Fail(Refusal.AgentUnknown("no agent of the inventory has this identity"));
        }

        if (agent!.ExpiresAt is { } expiresAt && expiresAt <= time.GetUtcNow())
        {
            return Fail(Refusal.AgentExpired($"agent '{agent.Id}' expired at {expiresAt:O}"));
        }

        if (agent.RequireDpop)
        {
            return Fail(Refusal.Unauthenticated($"agent '{agent.Id}' requires DPoP-bound tokens"));
        }

        return AuthenticationOutcome.Success(new AuthenticatedAgent(agent, null, key.Subject, string.Empty, null, kind) { Instance = instance });
    }

    /// <summary>The <c>cnf.jkt</c> the token is bound to, or null.</summary>
    private static string? BoundThumbprint(JsonWebToken jwt) =>
        jwt.TryGetPayloadValue<System.Text.Json.JsonElement>("cnf", out var cnf)
        && cnf.ValueKind == System.Text.Json.JsonValueKind.Object
        && cnf.TryGetProperty("jkt", out var jkt) && jkt.ValueKind == System.Text.Json.JsonValueKind.String
            ? jkt.GetString()
            : null;

    /// <summary>A short, safe explanation: the class of failure, never the token's content.</summary>
    private static string Explain(Exception? exception) => exception switch
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
