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

/// <summary>An authentication result: the agent, or why not.</summary>
public readonly record struct AuthenticationOutcome(AuthenticatedAgent? Agent, Refusal Refusal)
{
    public static AuthenticationOutcome Success(AuthenticatedAgent agent) => new(agent, default);

    public static AuthenticationOutcome Fail(Refusal refusal) => new(null, refusal);
}

/// <summary>
/// Proves which inventory agent sent a request — from the agent's own OAuth 2.1 access token
/// (by <see cref="AccessTokenRules"/>), a JWT-SVID, a client certificate, or a development static
/// key — and which operator calls the admin API, by the same token rules. Maps the proven identity
/// to the inventory and applies what only the inventory knows (expiry, per-agent DPoP).
/// </summary>
public sealed class AgentAuthenticator(AccessTokenRules tokens, AgentResolver resolver, TimeProvider time)
{
    /// <summary>For JWT-SVIDs, which have no issuer entry and so no <see cref="AccessTokenRules"/>.</summary>
    private static readonly JsonWebTokenHandler SvidHandler = new() { MapInboundClaims = false };

    public async ValueTask<AuthenticationOutcome> AuthenticateAsync(HttpRequest request, GatewayRevision revision, CancellationToken cancellationToken)
    {
        var presented = AccessTokenRules.Read(request, revision);
        if (presented.Failed)
        {
            return Fail(presented.Refusal);
        }

        if (presented.Token is null)
        {
            return await AuthenticateWithoutTokenAsync(request, revision);
        }

        return await AuthenticateTokenAsync(presented, request, revision, cancellationToken);
    }

    /// <summary>
    /// An agent on a connection that is not HTTP (the database listener), by its access token alone,
    /// checked by exactly the rules a Bearer token is checked by here. Such a connection cannot carry
    /// a DPoP proof, so a DPoP-bound token is refused, as is an agent or issuer that requires DPoP.
    /// </summary>
    public ValueTask<AuthenticationOutcome> AuthenticateTokenAsync(string token, GatewayRevision revision, CancellationToken cancellationToken) =>
        string.IsNullOrEmpty(token) || token.Length > revision.Inbound.MaxTokenBytes
            ? ValueTask.FromResult(Fail(Refusal.Unauthenticated("the access token is empty or too large")))
            : AuthenticateTokenAsync(new PresentedToken(token, DpopScheme: false, default), request: null, revision, cancellationToken);

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
    private async ValueTask<AuthenticationOutcome> AuthenticateTokenAsync(PresentedToken presented, HttpRequest? request, GatewayRevision revision, CancellationToken cancellationToken)
    {
        var token = presented.Token!;
        if (!presented.DpopScheme && await TryJwtSvidAsync(token, revision) is { } svid)
        {
            return svid;
        }

        var (proven, refusal) = await tokens.ProveAsync(request, presented, revision, revision.Inbound.PublicOrigins, cancellationToken);
        if (proven is null)
        {
            return Fail(refusal);
        }

        var (issuer, subject) = (proven.Issuer, proven.Subject);
        if (!resolver.TryResolve(revision, new AgentIdentityKey(issuer.Name, subject), out var agent, out var instance))
        {
            return Fail(Refusal.AgentUnknown("no agent of the inventory has this identity"));
        }

        if (agent!.ExpiresAt is { } expiresAt && expiresAt <= time.GetUtcNow())
        {
            return Fail(Refusal.AgentExpired($"agent '{agent.Id}' expired at {expiresAt:O}"));
        }

        if (agent.RequireDpop && !proven.KeyBound)
        {
            return Fail(Refusal.Unauthenticated($"agent '{agent.Id}' requires DPoP-bound tokens"));
        }

        string? task = null;
        if (revision.Policy.TaskClaim is { } claim && proven.Jwt.TryGetPayloadValue<string>(claim, out var named))
        {
            task = named;
        }

        return AuthenticationOutcome.Success(new AuthenticatedAgent(agent, issuer, subject, token, task)
        {
            Instance = instance,
            ExpiresAt = new DateTimeOffset(proven.Jwt.ValidTo, TimeSpan.Zero),
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

        var check = await tokens.ValidateAsync(token, revision, cancellationToken);
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

    /// <summary>An operator calling the admin API: an access token proven by the same rules as an
    /// agent's (binding and DPoP proof for the admin listener's origin, lifetime, types, skew),
    /// from the admin issuer, whose holder is one of the operators.</summary>
    public async ValueTask<(string? Caller, Refusal Refusal)> AuthenticateAdminAsync(HttpRequest request, GatewayRevision revision, CancellationToken cancellationToken)
    {
        var presented = AccessTokenRules.Read(request, revision);
        if (presented.Token is null)
        {
            return (null, presented.Failed
                ? presented.Refusal
                : Refusal.Unauthenticated("the admin API needs an operator's access token: 'Authorization: Bearer <token>', or 'DPoP <token>' with a DPoP proof"));
        }

        var (proven, refusal) = await tokens.ProveAsync(request, presented, revision, revision.Admin.PublicOrigins, cancellationToken);
        if (proven is null)
        {
            return (null, refusal);
        }

        if (!string.Equals(proven.Issuer.Name, revision.Admin.Issuer, StringComparison.OrdinalIgnoreCase) || !revision.Admin.Subjects.Contains(proven.Subject))
        {
            return (null, Refusal.AdminForbidden("the token does not name an operator of this gateway (Gateway:Admin:Subjects)"));
        }

        if (revision.Admin.RequireDpop && !proven.KeyBound)
        {
            return (null, Refusal.Unauthenticated("operators must present DPoP-bound tokens (Gateway:Admin:RequireDpop)"));
        }

        return (proven.Subject, default);
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

    /// <summary>A JWT-SVID: a token without a trusted issuer whose <c>sub</c> is a SPIFFE ID, checked
    /// by <see cref="AccessTokenRules.ValidateSvidAsync"/>. Null when the token is not one (it is
    /// then validated as an issuer's token).</summary>
    private async ValueTask<AuthenticationOutcome?> TryJwtSvidAsync(string token, GatewayRevision revision)
    {
        if (revision.Inbound.Certificates.Spiffe is not { JwtKeys: not null } spiffe || !SvidHandler.CanReadToken(token))
        {
            return null;
        }

        JsonWebToken jwt;
        try
        {
            jwt = SvidHandler.ReadJsonWebToken(token);
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

        if (await tokens.ValidateSvidAsync(jwt, token, spiffe, revision) is { Status: not 0 } refused)
        {
            return Fail(refused);
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
}
