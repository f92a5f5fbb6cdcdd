using System.Collections.Frozen;

namespace AgentGateway.Proxy.Policy;

/// <summary>
/// A grant compiled for the request path. A null restriction is "not restricted by this grant";
/// an empty one allows nothing of its kind.
/// </summary>
public sealed record Grant(
    string Name,
    FrozenSet<string> Routes,
    FrozenSet<string>? Methods,
    IReadOnlyList<GlobPattern>? Paths,
    IReadOnlyList<GlobPattern>? Tools,
    IReadOnlyList<GlobPattern>? Prompts,
    IReadOnlyList<GlobPattern>? Resources,
    bool FilterToolList,
    FrozenSet<string>? ServerRequests,
    IReadOnlyList<GlobPattern>? Models,
    RateLimit? RateLimit,
    bool RequireDelegation,
    IReadOnlyList<TimeWindow>? Hours,
    bool Shadow,
    FrozenSet<string> Labels)
{
    /// <summary>
    /// Whether the grant restricts MCP at all. Then only the client methods MCP defines are
    /// allowed, and a server-to-client request on one of its streams (sampling, elicitation,
    /// roots) reaches the agent only when <see cref="ServerRequests"/> lists it.
    /// </summary>
    public bool RestrictsMcp => Tools is not null || Prompts is not null || Resources is not null || ServerRequests is not null;

    /// <summary>Whether the MCP server may send the agent a request for <paramref name="method"/>
    /// on a stream this grant opened. <c>ping</c> asks nothing of the agent and always may.</summary>
    public bool AllowsServerRequest(string method) =>
        !RestrictsMcp || method == "ping" || ServerRequests?.Contains(method) == true;

    /// <summary>Whether <paramref name="name"/> (a separation rule's entry) names this grant or one of its labels.</summary>
    public bool IsNamed(string name) => string.Equals(name, Name, StringComparison.OrdinalIgnoreCase) || Labels.Contains(name);

    public static bool Matches(IReadOnlyList<GlobPattern>? patterns, string value)
    {
        if (patterns is null)
        {
            return true;
        }

        // Indexed: a foreach over the interface would allocate an enumerator on every request.
        for (var i = 0; i < patterns.Count; i++)
        {
            if (patterns[i].IsMatch(value))
            {
                return true;
            }
        }

        return false;
    }
}

/// <summary>At most <see cref="Requests"/> per agent per <see cref="Window"/>.</summary>
public sealed record RateLimit(int Requests, TimeSpan Window);

/// <summary>A separation rule: after a grant matching <see cref="After"/>, none matching <see cref="Deny"/>
/// in the same history (the agent instance's, and the task's when the request names one).</summary>
/// <param name="RequireTask">Requests allowed by a grant the rule names (in <see cref="After"/> or
/// <see cref="Deny"/>) must name a task; without one they are refused (<c>task-required</c>).</param>
public sealed record SeparationRule(string Name, IReadOnlyList<string> After, IReadOnlyList<string> Deny, bool Shadow, bool RequireTask = false)
{
    /// <summary>Whether the rule decides on requests allowed by <paramref name="grant"/>.</summary>
    public bool Names(Grant grant) => After.Any(grant.IsNamed) || Deny.Any(grant.IsNamed);
}

/// <summary>Everything the <c>Gateway:Policy</c> section compiles to.</summary>
public sealed record PolicyOptions(
    int MaxInspectedBodyBytes,
    int MaxServerEventBytes,
    string TaskHeader,
    string? TaskClaim,
    TimeSpan TaskTtl,
    IReadOnlyList<SeparationRule> Separation)
{
    public static PolicyOptions Default { get; } = new(1024 * 1024, 4 * 1024 * 1024, "Agent-Task", null, TimeSpan.FromHours(1), []);
}

/// <summary>An agent's grants by the route they open, enforced and shadow apart.</summary>
public static class GrantsByRoute
{
    /// <summary>
    /// Splits <paramref name="grants"/> (in the agent's order) by route. Shadow grants never join
    /// the enforced map: whatever opens a route or decides a request (the route check, the policy
    /// engine) reads only the enforced one, so a shadow grant opens nothing by construction.
    /// </summary>
    public static (FrozenDictionary<string, IReadOnlyList<Grant>> Enforced, FrozenDictionary<string, IReadOnlyList<Grant>> Shadow) Build(IEnumerable<Grant> grants)
    {
        var enforced = new Dictionary<string, List<Grant>>(StringComparer.OrdinalIgnoreCase);
        var shadow = new Dictionary<string, List<Grant>>(StringComparer.OrdinalIgnoreCase);
        foreach (var grant in grants)
        {
            var map = grant.Shadow ? shadow : enforced;
            foreach (var route in grant.Routes)
            {
                (map.TryGetValue(route, out var list) ? list : map[route] = []).Add(grant);
            }
        }

        return (Freeze(enforced), Freeze(shadow));

        static FrozenDictionary<string, IReadOnlyList<Grant>> Freeze(Dictionary<string, List<Grant>> map) =>
            map.ToFrozenDictionary(e => e.Key, e => (IReadOnlyList<Grant>)e.Value, StringComparer.OrdinalIgnoreCase);
    }
}
