using AgentGateway.Proxy.Configuration;
using AgentGateway.Proxy.Inventory;
using AgentGateway.Proxy.Problems;
using Microsoft.AspNetCore.Http;

namespace AgentGateway.Proxy.Identity;

/// <summary>
/// One kind of proof an agent presents on an HTTP request: an access token or JWT-SVID in
/// <c>Authorization</c>, a static key, a client certificate. <see cref="AgentAuthenticator"/>
/// asks every scheme whether the request carries its proof, and refuses a request that carries
/// more than one.
/// </summary>
internal interface IProofScheme
{
    /// <summary>What the proof is, for a refusal naming two (never its value).</summary>
    string Kind { get; }

    /// <summary>Whether the request carries this kind of proof; decided from what is already there
    /// (any header this scheme would read, the handshake's certificate), never by asking the client.</summary>
    bool IsPresented(HttpRequest request, GatewayRevision revision);

    /// <summary>The agent this proof names, or why not.</summary>
    ValueTask<AuthenticationOutcome> AuthenticateAsync(HttpRequest request, GatewayRevision revision, CancellationToken cancellationToken);
}

/// <summary>What every proof ends with: the proven identity mapped to the inventory, and what
/// only the inventory knows (the agent's expiry, its own DPoP requirement) applied.</summary>
internal sealed class AgentAdmission(AgentResolver resolver, TimeProvider time)
{
    public TimeProvider Time => time;

    /// <summary>The inventory agent with this identity, or why not.</summary>
    /// <param name="keyBound">The proof was a key-bound token with its DPoP proof: what an agent requiring DPoP needs.</param>
    public (Agent? Agent, string? Instance, Refusal Refusal) Resolve(GatewayRevision revision, AgentIdentityKey key, bool keyBound)
    {
        if (!resolver.TryResolve(revision, key, out var agent, out var instance))
        {
            return (null, null, Refusal.AgentUnknown("no agent of the inventory has this identity"));
        }

        if (agent!.ExpiresAt is { } expiresAt && expiresAt <= time.GetUtcNow())
        {
            return (null, null, Refusal.AgentExpired($"agent '{agent.Id}' expired at {expiresAt:O}"));
        }

        if (agent.RequireDpop && !keyBound)
        {
            return (null, null, Refusal.Unauthenticated($"agent '{agent.Id}' requires DPoP-bound tokens"));
        }

        return (agent, instance, default);
    }

    public bool Knows(GatewayRevision revision, AgentIdentityKey key) => resolver.TryResolve(revision, key, out _, out _);

    /// <summary>An agent proven by something other than an issuer's token (a certificate, a
    /// JWT-SVID, a static key): no issuer, no token to exchange.</summary>
    public AuthenticationOutcome Admit(GatewayRevision revision, AgentIdentityKey key, string kind, DateTimeOffset? expiresAt = null)
    {
        var (agent, instance, refusal) = Resolve(revision, key, keyBound: false);
        return agent is null
            ? AuthenticationOutcome.Fail(refusal)
            : AuthenticationOutcome.Success(new AuthenticatedAgent(agent, null, key.Subject, string.Empty, null, kind) { Instance = instance, ExpiresAt = expiresAt });
    }
}
