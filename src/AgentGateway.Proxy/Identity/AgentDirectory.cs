using System.Collections.Frozen;
using AgentGateway.Proxy.Policy;

namespace AgentGateway.Proxy.Identity;

/// <summary>An agent of the inventory, compiled for the request path.</summary>
/// <param name="Id">The inventory id.</param>
/// <param name="Owner">Who answers for it.</param>
/// <param name="Description">What it is for.</param>
/// <param name="ExpiresAt">After this it is refused.</param>
/// <param name="Grants">Its grant names, as configured.</param>
/// <param name="RouteGrants">Route id → the agent's enforced grants that open it, in the agent's
/// order, precomputed so finding the candidates is one lookup. Shadow grants are never here (see
/// <see cref="GrantsByRoute"/>): they open nothing.</param>
public sealed record Agent(
    string Id,
    string Owner,
    string? Description,
    DateTimeOffset? ExpiresAt,
    IReadOnlyList<string> Grants,
    FrozenDictionary<string, IReadOnlyList<Grant>> RouteGrants)
{
    /// <summary>The identities that prove to be this agent.</summary>
    public IReadOnlyList<AgentIdentityKey> Identities { get; init; } = [];

    /// <summary>This agent's tokens must be DPoP-bound, whatever its issuer requires.</summary>
    public bool RequireDpop { get; init; }

    /// <summary>Route id → the agent's shadow grants there: evaluated only to record what they
    /// would refuse, after the enforced decision.</summary>
    public FrozenDictionary<string, IReadOnlyList<Grant>> ShadowRouteGrants { get; init; } = FrozenDictionary<string, IReadOnlyList<Grant>>.Empty;

    /// <summary>An agent whose grants are split by <see cref="GrantsByRoute"/>.</summary>
    public static Agent Create(string id, string owner, string? description, DateTimeOffset? expiresAt, IReadOnlyList<string> grantNames, IEnumerable<Grant> grants)
    {
        var (enforced, shadow) = GrantsByRoute.Build(grants);
        return new Agent(id, owner, description, expiresAt, grantNames, enforced) { ShadowRouteGrants = shadow };
    }
}

/// <summary>A class of agents: identities of <see cref="Issuer"/> matching <see cref="Pattern"/> (a
/// subject pattern, or a SPIFFE ID prefix) are instances of <see cref="Agent"/>.</summary>
public sealed record AgentClass(Agent Agent, string Issuer, GlobPattern? Pattern, string? Prefix, TimeSpan IdleTimeout)
{
    public bool Matches(AgentIdentityKey key) =>
        string.Equals(key.Issuer, Issuer, StringComparison.OrdinalIgnoreCase)
        && (Pattern?.IsMatch(key.Subject) ?? key.Subject.StartsWith(Prefix!, StringComparison.Ordinal));
}

/// <summary>The inventory: which verified identity is which agent.</summary>
public sealed class AgentDirectory(FrozenDictionary<AgentIdentityKey, Agent> byIdentity, FrozenDictionary<string, Agent> byId)
{
    /// <summary>Agent classes, tried in order after the exact identities.</summary>
    public IReadOnlyList<AgentClass> Classes { get; init; } = [];

    /// <summary>The class an agent id defines, if it is one.</summary>
    public AgentClass? ClassOf(string agentId) => Classes.FirstOrDefault(c => string.Equals(c.Agent.Id, agentId, StringComparison.OrdinalIgnoreCase));

    /// <summary>An exact identity, else the first class it is an instance of (the instance is its subject).</summary>
    public bool TryResolve(AgentIdentityKey identity, out Agent? agent, out string? instance)
    {
        instance = null;
        if (byIdentity.TryGetValue(identity, out agent))
        {
            return true;
        }

        foreach (var agentClass in Classes)
        {
            if (agentClass.Matches(identity))
            {
                agent = agentClass.Agent;
                instance = identity.Subject;
                return true;
            }
        }

        return false;
    }

    public IReadOnlyCollection<Agent> All => byId.Values;

    public bool TryGet(string id, out Agent? agent) => byId.TryGetValue(id, out agent);

    /// <summary>The identities of one kind (e.g. every static key's hash).</summary>
    public IEnumerable<AgentIdentityKey> IdentitiesOf(string kind) => byIdentity.Keys.Where(k => k.Issuer == kind);
}

/// <summary>An identity as proven: the issuer's configured name and the agent claim's value.</summary>
public readonly record struct AgentIdentityKey(string Issuer, string Subject);
