using System.Collections.Concurrent;
using AgentGateway.Proxy.Identity;
using AgentGateway.Proxy.Inspection;
using AgentGateway.Proxy.Problems;

namespace AgentGateway.Proxy.Policy;

/// <summary>The facts one decision is taken on, all from the request as it will be forwarded.</summary>
/// <param name="Agent">The verified agent.</param>
/// <param name="RouteId">The matched route.</param>
/// <param name="Method">The HTTP method.</param>
/// <param name="Path">The path exactly as it will be forwarded (after the route's transforms).</param>
/// <param name="HasDelegation">Whether the request carries a verified delegation.</param>
/// <param name="Body">The inspected body on inspected routes.</param>
/// <param name="TaskId">The task the request belongs to, if it names one.</param>
public sealed record PolicyRequest(Agent Agent, string RouteId, string Method, string Path, bool HasDelegation, InspectedBody? Body, string? TaskId)
{
    /// <summary>For an agent class, the instance that sent it (its identity's subject); null for an agent of its own.</summary>
    public string? Instance { get; init; }

    /// <summary>The query string exactly as it will be forwarded (with its '?'), if any.</summary>
    public string? Query { get; init; }

    /// <summary>Whose request shapes the route's LLM requests have (<c>Metadata:LlmProvider</c>).</summary>
    public LlmProvider Provider { get; init; }
}

/// <summary>A decision: the grant that allowed the request, or the refusal; and what shadow policy
/// would have refused.</summary>
/// <param name="Rule">The separation rule that refused, if one did.</param>
public sealed record PolicyDecision(Grant? Grant, Refusal? Refusal, IReadOnlyList<string> ShadowDenials, string? Rule)
{
    public bool Allowed => Refusal is null;
}

/// <summary>
/// Decides each request afresh, in two evaluations kept apart. The enforced one sees only the
/// agent's enforced grants and the enforced separation rules, and alone makes the decision: of the
/// grants that open the route, the first (in the agent's order) whose every restriction holds
/// allows it; if none does, the refusal names the restriction that the closest grant failed. Then
/// the allowing grant's rate limit, then the separation rules that name it — checked and recorded
/// in one atomic step, so two concurrent requests cannot both slip past a rule. The shadow
/// evaluation runs after, on a request already decided, with counters and histories of its own:
/// it can only add "would have refused" records, never change the decision or enforced state.
/// </summary>
public sealed class PolicyEngine(IPolicyStateStore state, TimeProvider time)
{
    private const string EnforcedHistories = "sep";

    private const string ShadowHistories = "sep-shadow";

    private enum Stage
    {
        Method,
        Path,
        Delegation,
        Hours,
        Body,
    }

    /// <summary>Decides on a plan made for this call alone (tests, tools); the gateway decides on the
    /// plan of the revision its route was built from.</summary>
    public ValueTask<PolicyDecision> DecideAsync(PolicyRequest request, PolicyOptions options, IReadOnlyDictionary<string, Grant> grants, CancellationToken cancellationToken) =>
        DecideAsync(request, new PolicyPlan(options, grants), cancellationToken);

    /// <remarks>Not an async method, nor are the steps it takes: most requests meet no rate limit,
    /// separation rule or shadow grant, so nothing is waited for and each step hands back a finished
    /// result; only a step that waits for the policy state goes on in an async method of its own.</remarks>
    public ValueTask<PolicyDecision> DecideAsync(PolicyRequest request, PolicyPlan plan, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var facts = new RequestFacts(request);
        var enforcing = EnforceAsync(request, facts, plan, now, cancellationToken);
        return enforcing.IsCompletedSuccessfully
            ? WithShadow(enforcing.Result, request, facts, plan, now, cancellationToken)
            : WithShadowAsync(enforcing, request, facts, plan, now, cancellationToken);
    }

    private async ValueTask<PolicyDecision> WithShadowAsync(
        ValueTask<PolicyDecision> enforcing, PolicyRequest request, RequestFacts facts, PolicyPlan plan, DateTimeOffset now, CancellationToken cancellationToken) =>
        await WithShadow(await enforcing, request, facts, plan, now, cancellationToken);

    /// <summary>An allowed <paramref name="decision"/> with what shadow policy would have refused of it.</summary>
    private ValueTask<PolicyDecision> WithShadow(
        PolicyDecision decision, PolicyRequest request, RequestFacts facts, PolicyPlan plan, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (decision.Grant is not { } allowed || !decision.Allowed)
        {
            return new(decision);
        }

        var shadowing = ShadowAsync(request, facts, allowed, plan, now, cancellationToken);
        return shadowing.IsCompletedSuccessfully ? new(With(decision, shadowing.Result)) : WithAsync(decision, shadowing);

        static async ValueTask<PolicyDecision> WithAsync(PolicyDecision decision, ValueTask<List<string>?> shadowing) => With(decision, await shadowing);

        static PolicyDecision With(PolicyDecision decision, List<string>? shadow) => shadow is null ? decision : decision with { ShadowDenials = shadow };
    }

    private ValueTask<PolicyDecision> EnforceAsync(
        PolicyRequest request, RequestFacts facts, PolicyPlan plan, DateTimeOffset now, CancellationToken cancellationToken)
    {
        // Agent.RouteGrants holds no shadow grant (GrantsByRoute); skipping them keeps that true for
        // an Agent built any other way. Indexed loops: this runs on every request.
        var candidates = request.Agent.RouteGrants.TryGetValue(request.RouteId, out var onRoute) ? onRoute : [];
        var enforced = 0;
        for (var i = 0; i < candidates.Count; i++)
        {
            if (candidates[i].Shadow)
            {
                continue;
            }

            enforced++;

            // What cannot be decided is refused before any grant is tried, wherever a grant has a rule it could slip past.
            if (Ambiguity(candidates[i], facts) is { } ambiguous)
            {
                return new(Deny(ambiguous));
            }
        }

        if (enforced == 0)
        {
            return new(Deny(Refusal.GrantMissing($"agent '{request.Agent.Id}' holds no grant for route '{request.RouteId}'")));
        }

        Grant? allowed = null;
        (Stage Stage, Refusal Refusal)? closest = null;
        for (var i = 0; i < candidates.Count; i++)
        {
            var grant = candidates[i];
            if (grant.Shadow)
            {
                continue;
            }

            var failure = Check(grant, request, facts, now);
            if (failure is null)
            {
                allowed = grant;
                break;
            }

            if (closest is null || failure.Value.Stage > closest.Value.Stage)
            {
                closest = failure;
            }
        }

        if (allowed is null)
        {
            return new(Deny(closest!.Value.Refusal));
        }

        return allowed.RateLimit is null ? SeparateEnforcedAsync(request, allowed, plan, now, cancellationToken) : LimitAsync(request, allowed, plan, now, cancellationToken);
    }

    /// <summary>The allowing grant's rate limit, then its separation rules.</summary>
    private async ValueTask<PolicyDecision> LimitAsync(PolicyRequest request, Grant allowed, PolicyPlan plan, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var limit = allowed.RateLimit!;
        var hit = await state.HitAsync(RateKeyOf(request.Agent.Id, allowed), limit, now, cancellationToken);
        if (!hit.Allowed)
        {
            return new PolicyDecision(allowed, Refusal.RateLimited(
                $"grant '{allowed.Name}' allows agent '{request.Agent.Id}' {limit.Requests} requests per {limit.Window}", hit.RetryAfter), [], null);
        }

        return await SeparateEnforcedAsync(request, allowed, plan, now, cancellationToken);
    }

    /// <summary>The enforced separation rules that name the allowing grant: the decision.</summary>
    private ValueTask<PolicyDecision> SeparateEnforcedAsync(PolicyRequest request, Grant allowed, PolicyPlan plan, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var separating = SeparateAsync(request, allowed, plan.Separation(allowed, shadow: false), EnforcedHistories, plan.Options, now, cancellationToken);
        return separating.IsCompletedSuccessfully ? new(Decided(allowed, separating.Result)) : DecidedAsync(allowed, separating);

        static async ValueTask<PolicyDecision> DecidedAsync(Grant allowed, ValueTask<(Refusal? Refusal, string? Rule)> separating) => Decided(allowed, await separating);

        static PolicyDecision Decided(Grant allowed, (Refusal? Refusal, string? Rule) separated) => new(allowed, separated.Refusal, [], separated.Rule);
    }

    /// <summary>What the agent's shadow grants and the shadow separation rules would have refused of
    /// a request the enforced evaluation allowed with <paramref name="allowed"/>; null when nothing
    /// (most requests: nothing is allocated for them).</summary>
    private ValueTask<List<string>?> ShadowAsync(
        PolicyRequest request, RequestFacts facts, Grant allowed, PolicyPlan plan, DateTimeOffset now, CancellationToken cancellationToken) =>
        !request.Agent.ShadowRouteGrants.ContainsKey(request.RouteId) && plan.Separation(allowed, shadow: true).Named.Length == 0
            ? default
            : ShadowedAsync(request, facts, allowed, plan, now, cancellationToken);

    private async ValueTask<List<string>?> ShadowedAsync(
        PolicyRequest request, RequestFacts facts, Grant allowed, PolicyPlan plan, DateTimeOffset now, CancellationToken cancellationToken)
    {
        List<string>? records = null;
        try
        {
            if (request.Agent.ShadowRouteGrants.TryGetValue(request.RouteId, out var shadowGrants))
            {
                foreach (var grant in shadowGrants)
                {
                    if ((Ambiguity(grant, facts) ?? Check(grant, request, facts, now)?.Refusal) is { } failure)
                    {
                        (records ??= []).Add($"{grant.Name}: {failure.Reason}");
                    }
                    else if (grant.RateLimit is { } limit && !(await state.HitAsync(new RateKey(request.Agent.Id, grant.Name, Shadow: true), limit, now, cancellationToken)).Allowed)
                    {
                        (records ??= []).Add($"{grant.Name}: rate-limited");
                    }
                }
            }

            var separation = plan.Separation(allowed, shadow: true);
            if (await SeparateAsync(request, allowed, separation, ShadowHistories, plan.Options, now, cancellationToken) is (Refusal refusal, var rule))
            {
                (records ??= []).Add($"rule {rule ?? "?"}: {refusal.Reason}");
            }
        }
        catch (PolicyStateUnavailableException)
        {
            (records ??= []).Add("shadow separation rules could not be checked (policy-unavailable)");
        }

        return records;
    }

    /// <summary>A 400 when the request has no single reading for a rule of <paramref name="grant"/>.</summary>
    private static Refusal? Ambiguity(Grant grant, RequestFacts facts)
    {
        if (grant.Paths is not null && facts.PathAmbiguity is { } path)
        {
            return Refusal.BadRequest($"the path is ambiguous ({path}); path rules are not decided on it");
        }

        if (grant.Resources is not null && facts.ResourceAmbiguity is { } resource)
        {
            return Refusal.BadRequest($"the resource URI is ambiguous ({resource}); resource rules are not decided on it");
        }

        if (grant.Prompts is not null && facts.PromptAmbiguity is { } prompt)
        {
            return Refusal.BadRequest($"the prompt name is ambiguous ({prompt}); prompt rules are not decided on it");
        }

        if (grant.Models is not null && facts.Models.Ambiguity is { } model)
        {
            return Refusal.BadRequest($"{model}; model rules are not decided on it");
        }

        return null;
    }

    /// <summary>Null when every restriction of <paramref name="grant"/> holds.</summary>
    private static (Stage Stage, Refusal Refusal)? Check(Grant grant, PolicyRequest request, RequestFacts facts, DateTimeOffset now)
    {
        if (grant.Methods is { } methods && !methods.Contains(request.Method))
        {
            return (Stage.Method, Refusal.MethodDenied($"grant '{grant.Name}' does not allow {request.Method} on route '{request.RouteId}'"));
        }

        if (!Grant.Matches(grant.Paths, request.Path))
        {
            return (Stage.Path, Refusal.PathDenied($"grant '{grant.Name}' does not allow this path on route '{request.RouteId}'"));
        }

        if (grant.RequireDelegation && !request.HasDelegation)
        {
            return (Stage.Delegation, Refusal.DelegationRequired($"grant '{grant.Name}' is for acting on behalf of a user, and the request names none"));
        }

        if (grant.Hours is { } hours && !hours.Any(w => w.Contains(now)))
        {
            return (Stage.Hours, Refusal.OutsideHours($"grant '{grant.Name}' applies {string.Join("; ", hours)}"));
        }

        return request.Body switch
        {
            { Kind: BodyKind.Mcp } body => CheckMcp(grant, body),
            { Kind: BodyKind.Llm } body => CheckModel(grant, body, facts.Models),
            _ => null,
        };
    }

    private static (Stage, Refusal)? CheckMcp(Grant grant, InspectedBody body)
    {
        if (!grant.RestrictsMcp || body.Method is not { } method || method.StartsWith("notifications/", StringComparison.Ordinal))
        {
            return null;
        }

        if (!BodyInspector.KnownMcpMethods.Contains(method))
        {
            return (Stage.Body, Refusal.McpMethodDenied($"grant '{grant.Name}' restricts MCP, and '{Printable(method)}' is not an MCP client method"));
        }

        return method switch
        {
            "tools/call" when !Grant.Matches(grant.Tools, body.Target!) =>
                (Stage.Body, Refusal.McpToolDenied($"grant '{grant.Name}' does not allow tool '{body.Target}'")),
            "prompts/get" when !Grant.Matches(grant.Prompts, body.Target!) =>
                (Stage.Body, Refusal.McpPromptDenied($"grant '{grant.Name}' does not allow prompt '{Printable(body.Target!)}'")),
            "resources/read" or "resources/subscribe" or "resources/unsubscribe" when !Grant.Matches(grant.Resources, body.Target!) =>
                (Stage.Body, Refusal.McpResourceDenied($"grant '{grant.Name}' does not allow resource '{Printable(body.Target!)}'")),
            "completion/complete" => CheckCompletion(grant, body),
            // Its subscriptions name resources in a shape the gateway does not decide on yet: only
            // a grant that leaves resources open allows it.
            "subscriptions/listen" when grant.Resources is not null =>
                (Stage.Body, Refusal.McpResourceDenied($"grant '{grant.Name}' restricts resources, and subscriptions/listen is not decided per resource")),
            _ => null,
        };
    }

    /// <summary>A completion names the prompt or resource template whose arguments it completes:
    /// the values it returns are a view into them, so it is decided like a use of them.</summary>
    private static (Stage, Refusal)? CheckCompletion(Grant grant, InspectedBody body)
    {
        if (grant.Prompts is null && grant.Resources is null)
        {
            return null;
        }

        return body.CompletionRef switch
        {
            ("ref/prompt", var name) when !Grant.Matches(grant.Prompts, name) =>
                (Stage.Body, Refusal.McpPromptDenied($"grant '{grant.Name}' does not allow completions for prompt '{Printable(name)}'")),
            ("ref/resource", var template) when !Grant.Matches(grant.Resources, template) =>
                (Stage.Body, Refusal.McpResourceDenied($"grant '{grant.Name}' does not allow completions for resource '{Printable(template)}'")),
            null => (Stage.Body, Refusal.McpMethodDenied($"grant '{grant.Name}' restricts prompts or resources, and this completion/complete names neither")),
            _ => null,
        };
    }

    private static (Stage, Refusal)? CheckModel(Grant grant, InspectedBody body, LlmModels.Reading reading)
    {
        if (grant.Models is null)
        {
            return null;
        }

        if (reading.Models.Count == 0)
        {
            // A request without a body runs no model (a model list, a deletion by id names one in
            // its path); a body that names none may get the upstream's default model.
            return body.Bytes.IsEmpty
                ? null
                : (Stage.Body, Refusal.ModelDenied($"grant '{grant.Name}' allows certain models only, and the request names none"));
        }

        foreach (var model in reading.Models)
        {
            if (!Grant.Matches(grant.Models, model))
            {
                return (Stage.Body, Refusal.ModelDenied($"grant '{grant.Name}' does not allow model '{Printable(model)}'"));
            }
        }

        return null;
    }

    /// <summary>
    /// The separation rules that name <paramref name="allowed"/> (<paramref name="separation"/>), decided on the
    /// histories of <paramref name="kind"/> the request belongs to: always the agent instance's
    /// own (a proof, not a label), and the named task's as well. A task label can so link steps
    /// across instances of an agent, but never take a step out of its instance's history: a
    /// fresh, changed or absent task id escapes nothing.
    /// </summary>
    private ValueTask<(Refusal? Refusal, string? Rule)> SeparateAsync(
        PolicyRequest request, Grant allowed, Separation separation, string kind, PolicyOptions options,
        DateTimeOffset now, CancellationToken cancellationToken)
    {
        var (named, requiring, _) = separation;
        if (named.Length == 0)
        {
            return default;
        }

        if (request.TaskId is null && requiring is not null)
        {
            return new((Refusal.TaskRequired($"rule '{requiring.Name}' decides on grant '{allowed.Name}' per task, and the request names none ({options.TaskHeader}{(options.TaskClaim is { } claim ? $", or the token's '{claim}' claim" : "")})"), requiring.Name));
        }

        return CheckAndRecordAsync(request, allowed, separation, kind, options, now, cancellationToken);
    }

    /// <summary>Checks the request's histories for an earlier step a rule forbids this one after,
    /// and records this step, in one atomic step of the policy state.</summary>
    private async ValueTask<(Refusal? Refusal, string? Rule)> CheckAndRecordAsync(
        PolicyRequest request, Grant allowed, Separation separation, string kind, PolicyOptions options,
        DateTimeOffset now, CancellationToken cancellationToken)
    {
        var (named, _, earlier) = separation;

        // Agent ids are letters, digits, '-', '_' and '.', so the braces (a Redis Cluster hash tag:
        // one agent's histories share a slot, as the atomic script needs) end each key's agent part.
        var scopes = new List<string> { $"{kind}:{{{request.Agent.Id}}}:instance:{request.Instance}" };
        if (request.TaskId is { } task)
        {
            scopes.Add($"{kind}:{{{request.Agent.Id}}}:task:{task}");
        }

        IReadOnlyList<HistoryHit> hits;
        try
        {
            hits = await state.CheckAndRecordAsync(scopes, new TaskStep(allowed.Name, request.RouteId, now), earlier.Keys, options.TaskTtl, cancellationToken);
        }
        catch (PolicyStateUnavailableException ex) when (kind == EnforcedHistories)
        {
            // Unchecked, or unrecorded (then a later step could not be checked against it): refused.
            return (Refusal.PolicyUnavailable($"{ex.Message}; separation rule '{named[0].Name}' cannot be checked"), null);
        }

        if (hits.Count == 0)
        {
            return (null, null);
        }

        // The task's own history, when it has the step, is the more telling one to name.
        var (scope, step) = hits.MaxBy(h => h.Scope)!;
        var found = earlier[step.Grant];
        var who = scope == 0
            ? $"agent '{request.Agent.Id}'{(request.Instance is { } instance ? $" (instance '{Printable(instance)}')" : "")}"
            : $"task '{request.TaskId}'";
        return (Refusal.ToxicCombination(
            $"{who} used grant '{step.Grant}' (route '{step.Route}', {step.At:O}); rule '{found.Name}' forbids grant '{allowed.Name}' after it (histories are kept {options.TaskTtl} after their latest step)"),
            found.Name);
    }

    /// <summary>Null when a path has one reading; else what makes it ambiguous (<see cref="Identifiers.AmbiguousPath"/>).</summary>
    public static string? AmbiguousPath(string path) => Identifiers.AmbiguousPath(path);

    /// <summary>The request's identifiers, each read (and judged) only if a rule needs it.</summary>
    private sealed class RequestFacts(PolicyRequest request)
    {
        private (bool Read, string? Why) _path;
        private (bool Read, string? Why) _resource;
        private (bool Read, string? Why) _prompt;
        private LlmModels.Reading? _models;

        public string? PathAmbiguity => Once(ref _path, () => Identifiers.AmbiguousPath(request.Path));

        public string? ResourceAmbiguity => Once(ref _resource, () => request.Body switch
        {
            { Method: "resources/read" or "resources/subscribe" or "resources/unsubscribe", Target: { } uri } => Identifiers.AmbiguousUri(uri),
            { Method: "completion/complete", CompletionRef: ("ref/resource", var template) } => Identifiers.AmbiguousUri(template, template: true),
            _ => null,
        });

        public string? PromptAmbiguity => Once(ref _prompt, () => request.Body switch
        {
            { Method: "prompts/get", Target: { } name } => Identifiers.AmbiguousName(name),
            { Method: "completion/complete", CompletionRef: ("ref/prompt", var name) } => Identifiers.AmbiguousName(name),
            _ => null,
        });

        public LlmModels.Reading Models => _models ??= LlmModels.Read(request.Provider, request.Method, request.Path, request.Query, request.Body);

        private static string? Once(ref (bool Read, string? Why) slot, Func<string?> read)
        {
            if (!slot.Read)
            {
                slot = (true, read());
            }

            return slot.Why;
        }
    }

    private static PolicyDecision Deny(Refusal refusal) => new(null, refusal, [], null);

    /// <summary>For one allowed grant: the rules (enforced or shadow) that name it, the first of them
    /// that requires a task, and which earlier grants would make it toxic, by rule.</summary>
    internal sealed record Separation(SeparationRule[] Named, SeparationRule? RequiringTask, Dictionary<string, SeparationRule> Earlier);

    /// <summary>Counts one more use of <paramref name="grant"/> by <paramref name="agentId"/> against
    /// its rate limit — a message on a tunnel the grant opened counts as a request does: the refusal
    /// when the limit is used up, else null.</summary>
    public async ValueTask<Refusal?> CountAsync(string agentId, Grant grant, CancellationToken cancellationToken)
    {
        if (grant.RateLimit is not { } limit || grant.Shadow)
        {
            return null;
        }

        var hit = await state.HitAsync(RateKeyOf(agentId, grant), limit, time.GetUtcNow(), cancellationToken);
        return hit.Allowed ? null : Refusal.RateLimited($"grant '{grant.Name}' allows agent '{agentId}' {limit.Requests} requests per {limit.Window}", hit.RetryAfter);
    }

    private static RateKey RateKeyOf(string agentId, Grant grant) => new(agentId, grant.Name);

    /// <summary>Names an agent or upstream supplied go into problem bodies, logs and audit records: short and plain.</summary>
    internal static string Printable(string text) =>
        new([.. text.Take(128).Select(c => char.IsControl(c) ? '?' : c)]);
}

/// <summary>
/// What one revision's policy decides with: its options, its grants, and what the separation rules
/// say about each grant — derived on the grant's first use in that revision rather than on every
/// request (that walked every rule and every grant of the configuration per request). Made once per
/// revision, with the routes YARP builds from it.
/// </summary>
public sealed class PolicyPlan(PolicyOptions options, IReadOnlyDictionary<string, Grant> grants)
{
    private readonly ConcurrentDictionary<Grant, PolicyEngine.Separation> _enforced = new(ReferenceEqualityComparer.Instance);
    private readonly ConcurrentDictionary<Grant, PolicyEngine.Separation> _shadow = new(ReferenceEqualityComparer.Instance);

    public PolicyOptions Options { get; } = options;

    public IReadOnlyDictionary<string, Grant> Grants { get; } = grants;

    internal PolicyEngine.Separation Separation(Grant allowed, bool shadow) =>
        (shadow ? _shadow : _enforced).GetOrAdd(allowed, static (grant, state) => state.Plan.Build(grant, state.Shadow), (Plan: this, Shadow: shadow));

    private PolicyEngine.Separation Build(Grant allowed, bool shadow)
    {
        SeparationRule[] named = [.. Options.Separation.Where(r => r.Shadow == shadow && r.Names(allowed))];
        var earlier = new Dictionary<string, SeparationRule>(StringComparer.OrdinalIgnoreCase);
        foreach (var rule in named.Where(r => r.Deny.Any(allowed.IsNamed)))
        {
            foreach (var grant in Grants.Values.Where(g => rule.After.Any(g.IsNamed)))
            {
                earlier.TryAdd(grant.Name, rule);
            }
        }

        return new PolicyEngine.Separation(named, named.FirstOrDefault(r => r.RequireTask), earlier);
    }
}
