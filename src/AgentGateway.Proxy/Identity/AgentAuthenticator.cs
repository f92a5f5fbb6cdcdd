using AgentGateway.Credentials;
using AgentGateway.Proxy.Configuration;
using AgentGateway.Proxy.Inventory;
using AgentGateway.Proxy.Problems;
using Microsoft.AspNetCore.Http;

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
/// Proves which inventory agent sent a request, and which operator calls the admin API. Each
/// kind of proof is one <see cref="IProofScheme"/> sharing one set of token rules
/// (<see cref="AccessTokenRules"/>): a token in <c>Authorization</c> (an issuer's access token,
/// DPoP, a JWT-SVID), a static key (when the development switch is on), the TLS connection's
/// client certificate. Exactly one may be presented: a request carrying two is refused
/// (<c>identity-ambiguous</c>), never decided by whichever scheme is asked first.
/// </summary>
public sealed class AgentAuthenticator
{
    private readonly TokenProofScheme _token;
    private readonly ClientCertificateScheme _certificate;
    private readonly IProofScheme[] _schemes;
    private readonly DelegationProof _delegation;
    private readonly OperatorProof _operators;

    public AgentAuthenticator(AccessTokenRules tokens, AgentResolver resolver, TimeProvider time)
    {
        var admission = new AgentAdmission(resolver, time);
        _token = new TokenProofScheme(tokens, admission);
        _certificate = new ClientCertificateScheme(admission);
        _schemes = [_token, new StaticKeyScheme(admission), _certificate];
        _delegation = new DelegationProof(tokens);
        _operators = new OperatorProof(tokens);
    }

    public ValueTask<AuthenticationOutcome> AuthenticateAsync(HttpRequest request, GatewayRevision revision, CancellationToken cancellationToken)
    {
        // Every scheme is asked, whatever the first says: two proofs may name two agents (or one
        // agent twice, by a weak and a strong proof), and which one wins must not depend on the
        // order schemes happen to be asked in.
        IProofScheme? presented = null;
        foreach (var scheme in _schemes)
        {
            if (!scheme.IsPresented(request, revision))
            {
                continue;
            }

            if (presented is not null)
            {
                return ValueTask.FromResult(AuthenticationOutcome.Fail(Refusal.IdentityAmbiguous(
                    $"the request carries more than one proof of identity ({presented.Kind} and {scheme.Kind}); send exactly one")));
            }

            presented = scheme;
        }

        // With none, the certificate scheme says why: a client certificate that names no agent
        // (and so is no proof here) is refused with its own reason, as is the lack of any proof.
        return (presented ?? _certificate).AuthenticateAsync(request, revision, cancellationToken);
    }

    /// <summary>
    /// An agent on a connection that is not HTTP (the database listener), by its access token alone,
    /// checked by exactly the rules a Bearer token is checked by here. Such a connection cannot carry
    /// a DPoP proof, so a DPoP-bound token is refused, as is an agent or issuer that requires DPoP.
    /// </summary>
    public ValueTask<AuthenticationOutcome> AuthenticateTokenAsync(string token, GatewayRevision revision, CancellationToken cancellationToken) =>
        string.IsNullOrEmpty(token) || token.Length > revision.Inbound.MaxTokenBytes
            ? ValueTask.FromResult(AuthenticationOutcome.Fail(Refusal.Unauthenticated("the access token is empty or too large")))
            : _token.AuthenticateAsync(new PresentedToken(token, dpopScheme: false), request: null, revision, cancellationToken);

    /// <summary>An agent on a TLS connection that is not HTTP (the database listener), by its client
    /// certificate (mTLS, X509-SVID), checked by the same rules as on an https endpoint.</summary>
    public AuthenticationOutcome AuthenticateCertificate(System.Security.Cryptography.X509Certificates.X509Certificate2 certificate, GatewayRevision revision)
    {
        // The scheme carries the certificate's end as the proof's expiry, as on an https endpoint.
        return _certificate.Identify(certificate, revision);
    }

    /// <inheritdoc cref="DelegationProof.VerifyAsync"/>
    public ValueTask<DelegationOutcome> AuthenticateDelegationAsync(HttpRequest request, GatewayRevision revision, AuthenticatedAgent agent, CancellationToken cancellationToken) =>
        _delegation.VerifyAsync(request, revision, agent, cancellationToken);

    /// <inheritdoc cref="OperatorProof.ProveAsync"/>
    public ValueTask<(string? Caller, Refusal Refusal)> AuthenticateAdminAsync(HttpRequest request, GatewayRevision revision, CancellationToken cancellationToken) =>
        _operators.ProveAsync(request, revision, cancellationToken);
}
