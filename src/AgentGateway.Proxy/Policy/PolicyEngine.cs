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
public sealed record PolicyRequest(Agent Agent, string RouteId, string Method, string Path, bool HasDelegation, InspectedBody? Body, string? TaskId);

/// <summary>A decision: the grant that allowed the request, or the refusal; and what shadow policy
/// would have refused.</summary>
/// <param name="Rule">The separation rule that refused, if one did.</param>
public sealed record PolicyDecision(Grant? Grant, Refusal? Refusal, IReadOnlyList<string> ShadowDenials, string? Rule)
{
    public bool Allowed => Refusal is null;
}

/// <summary>
/// Decides each request afresh. Of the agent's grants that open the route, the first (in the
/// agent's order) whose every restriction holds allows it; if none does, the refusal names the
/// restriction that the closest grant failed. Then the allowing grant's rate limit, then the
/// task's separation rules — checked and recorded in one atomic step, so two concurrent requests
/// of one task cannot both slip past a rule.
/// </summary>
public sealed class PolicyEngine(IPolicyStateStore state, TimeProvider time)
{
    private enum Stage
    {
        Method,
        Path,
        Delegation,
        Hours,
        Body,
    }

    public async ValueTask<PolicyDecision> DecideAsync(PolicyRequest request, PolicyOptions options, IReadOnlyDictionary<string, Grant> grants, CancellationToken cancellationToken)
    {
        if (!request.Agent.RouteGrants.TryGetValue(request.RouteId, out var candidates) || candidates.Count == 0)
        {
            return Deny(Refusal.GrantMissing($"agent '{request.Agent.Id}' holds no grant for route '{request.RouteId}'"));
        }

        if (candidates.Any(g => g.Paths is not null) && AmbiguousPath(request.Path) is { } ambiguity)
        {
            return Deny(Refusal.BadRequest($"the path is ambiguous ({ambiguity}); path rules are not decided on it"));
        }

        var now = time.GetUtcNow();
        var shadow = new List<string>();
        Grant? allowed = null;
        (Stage Stage, Refusal Refusal)? closest = null;
        foreach (var grant in candidates)
        {
            var failure = Check(grant, request, now);
            if (failure is null)
            {
                allowed = grant;
                break;
            }

            if (grant.Shadow)
            {
                shadow.Add($"{grant.Name}: {failure.Value.Refusal.Reason}");
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
            return Deny(closest!.Value.Refusal, shadow);
        }

        if (allowed.RateLimit is { } limit)
        {
            var hit = await state.HitAsync($"{request.Agent.Id}:{allowed.Name}", limit, now, cancellationToken);
            if (!hit.Allowed)
            {
                var refusal = Refusal.RateLimited(
                    $"grant '{allowed.Name}' allows agent '{request.Agent.Id}' {limit.Requests} requests per {limit.Window}", hit.RetryAfter);
                if (!allowed.Shadow)
                {
                    return new PolicyDecision(allowed, refusal, shadow, null);
                }

                shadow.Add($"{allowed.Name}: rate-limited");
            }
        }

        if (request.TaskId is { } task && options.Separation.Count > 0)
        {
            var separation = await SeparateAsync(request, task, allowed, options, grants, now, cancellationToken);
            if (separation.Refusal is { } refusal)
            {
                return new PolicyDecision(allowed, refusal, shadow, separation.Rule);
            }

            shadow.AddRange(separation.Shadow);
        }

        return new PolicyDecision(allowed, null, shadow, null);
    }

    /// <summary>Null when every restriction of <paramref name="grant"/> holds.</summary>
    private static (Stage Stage, Refusal Refusal)? Check(Grant grant, PolicyRequest request, DateTimeOffset now)
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
            { Kind: BodyKind.Llm } body => CheckModel(grant, body),
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
            // Its subscriptions name resources in a shape the gateway does not decide on yet: only
            // a grant that leaves resources open allows it.
            "subscriptions/listen" when grant.Resources is not null =>
                (Stage.Body, Refusal.McpResourceDenied($"grant '{grant.Name}' restricts resources, and subscriptions/listen is not decided per resource")),
            _ => null,
        };
    }

    private static (Stage, Refusal)? CheckModel(Grant grant, InspectedBody body)
    {
        if (grant.Models is null)
        {
            return null;
        }

        if (body.Model is not { } model)
        {
            return (Stage.Body, Refusal.ModelDenied($"grant '{grant.Name}' allows certain models only, and the request names none"));
        }

        return Grant.Matches(grant.Models, model) ? null : (Stage.Body, Refusal.ModelDenied($"grant '{grant.Name}' does not allow model '{Printable(model)}'"));
    }

    private async ValueTask<(Refusal? Refusal, string? Rule, List<string> Shadow)> SeparateAsync(
        PolicyRequest request, string task, Grant allowed, PolicyOptions options, IReadOnlyDictionary<string, Grant> grants, DateTimeOffset now, CancellationToken cancellationToken)
    {
        // Which earlier grants would make this one toxic, by rule.
        var enforced = new Dictionary<string, SeparationRule>(StringComparer.OrdinalIgnoreCase);
        var shadowed = new Dictionary<string, SeparationRule>(StringComparer.OrdinalIgnoreCase);
        foreach (var rule in options.Separation)
        {
            if (!rule.Deny.Any(allowed.IsNamed))
            {
                continue;
            }

            foreach (var earlier in grants.Values.Where(g => rule.After.Any(g.IsNamed)))
            {
                (rule.Shadow ? shadowed : enforced).TryAdd(earlier.Name, rule);
            }
        }

        var step = new TaskStep(allowed.Name, request.RouteId, now);
        IReadOnlyList<TaskStep> hits;
        try
        {
            hits = await state.CheckAndRecordAsync($"{request.Agent.Id}:{task}", step, enforced.Keys, shadowed.Keys.Except(enforced.Keys).ToList(), options.TaskTtl, cancellationToken);
        }
        catch (PolicyStateUnavailableException ex)
        {
            return enforced.Count > 0
                ? (Refusal.PolicyUnavailable($"task '{task}': {ex.Message}; separation rules cannot be checked"), null, [])
                : (null, null, []);
        }

        var shadow = new List<string>();
        foreach (var hit in hits)
        {
            if (enforced.TryGetValue(hit.Grant, out var rule))
            {
                return (Refusal.ToxicCombination(
                    $"task '{task}' used grant '{hit.Grant}' (route '{hit.Route}', {hit.At:O}); rule '{rule.Name}' forbids grant '{allowed.Name}' after it"),
                    rule.Name,
                    shadow);
            }

            if (shadowed.TryGetValue(hit.Grant, out var shadowRule))
            {
                shadow.Add($"rule {shadowRule.Name}: toxic-combination after {hit.Grant}");
            }
        }

        return (null, null, shadow);
    }

    /// <summary>Null when a path has one reading; else what makes it ambiguous. Path rules are
    /// bypassed through the places where a proxy and an upstream normalise differently.</summary>
    public static string? AmbiguousPath(string path)
    {
        if (path.Contains("//", StringComparison.Ordinal))
        {
            return "empty segment";
        }

        if (path.Contains('\\'))
        {
            return "backslash";
        }

        if (path.Contains(';'))
        {
            return "matrix parameter";
        }

        // The path is already percent-decoded (Kestrel keeps only %2F encoded), so any '%' left is
        // an encoded slash or a second layer of encoding: %2500 reaches the upstream as %00, which a
        // C-based server reads as the end of the path. Found by the fuzz target for path rules.
        if (path.Contains('%'))
        {
            return "percent-encoding left after decoding (an encoded slash, or double encoding)";
        }

        if (path.Any(char.IsControl))
        {
            return "control character";
        }

        foreach (var segment in path.Split('/'))
        {
            if (segment is "." or "..")
            {
                return "dot segment";
            }
        }

        return null;
    }

    private static PolicyDecision Deny(Refusal refusal, IReadOnlyList<string>? shadow = null) => new(null, refusal, shadow ?? [], null);

    /// <summary>Names an agent or upstream supplied go into problem bodies, logs and audit records: short and plain.</summary>
    internal static string Printable(string text) =>
        new([.. text.Take(128).Select(c => char.IsControl(c) ? '?' : c)]);
}
