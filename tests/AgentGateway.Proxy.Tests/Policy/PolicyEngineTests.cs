using System.Collections.Frozen;
using AgentGateway.Proxy.Identity;
using AgentGateway.Proxy.Inspection;
using AgentGateway.Proxy.Policy;
using Microsoft.Extensions.Time.Testing;

namespace AgentGateway.Proxy.Tests.Policy;

public sealed class PolicyEngineTests
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 22, 12, 0, 0, TimeSpan.Zero));

    [Fact]
    public async Task The_rate_limit_counts_per_window_and_says_when_to_retry()
    {
        var grant = Grant("g") with { RateLimit = new RateLimit(2, TimeSpan.FromMinutes(1)) };
        var engine = Engine();
        var request = Request(Agent(grant));

        var one = await engine.DecideAsync(request, PolicyOptions.Default, Grants(grant), default);
        var two = await engine.DecideAsync(request, PolicyOptions.Default, Grants(grant), default);
        var three = await engine.DecideAsync(request, PolicyOptions.Default, Grants(grant), default);
        _time.Advance(TimeSpan.FromMinutes(1));
        var next = await engine.DecideAsync(request, PolicyOptions.Default, Grants(grant), default);

        Assert.True(one.Allowed);
        Assert.True(two.Allowed);
        Assert.Equal("rate-limited", three.Refusal?.Reason);
        Assert.Equal(TimeSpan.FromMinutes(1), three.Refusal?.RetryAfter);
        Assert.True(next.Allowed);
    }

    [Fact]
    public async Task A_shadow_grant_alone_opens_nothing()
    {
        var shadow = Grant("g") with { Shadow = true };
        var agent = Agent(shadow);

        var decision = await Engine().DecideAsync(Request(agent, route: "g"), PolicyOptions.Default, Grants(shadow), default);

        Assert.Equal("grant-missing", decision.Refusal?.Reason);
        Assert.Null(decision.Grant);
        // Nothing that opens routes sees it either (the gateway's early route check reads RouteGrants).
        Assert.False(agent.RouteGrants.ContainsKey("g"));
        Assert.True(agent.ShadowRouteGrants.ContainsKey("g"));
    }

    [Fact]
    public async Task A_failing_shadow_grant_never_allows_what_the_enforced_grants_refuse()
    {
        // The report: GET on /accounts/** enforced, a tighter shadow grant on the same route, and
        // DELETE /admin/users/x went through on the shadow grant.
        var read = Grant("read", "crm") with { Methods = Set("GET"), Paths = [GlobPattern.ForPath("/accounts/**")] };
        var tighter = Grant("tighter", "crm") with { Methods = Set("GET"), Paths = [GlobPattern.ForPath("/accounts/*")], Shadow = true };
        var agent = Agent(read, tighter);
        var engine = Engine();

        var delete = await engine.DecideAsync(Request(agent, route: "crm", method: "DELETE", path: "/admin/users/x"), PolicyOptions.Default, Grants(read, tighter), default);
        var elsewhere = await engine.DecideAsync(Request(agent, route: "crm", path: "/admin/users/x"), PolicyOptions.Default, Grants(read, tighter), default);
        var deep = await engine.DecideAsync(Request(agent, route: "crm", path: "/accounts/1/orders"), PolicyOptions.Default, Grants(read, tighter), default);

        Assert.Equal("method-denied", delete.Refusal?.Reason);
        Assert.Equal("path-denied", elsewhere.Refusal?.Reason);
        // Allowed by the enforced grant; the shadow grant only says it would have refused.
        Assert.True(deep.Allowed);
        Assert.Equal("read", deep.Grant?.Name);
        Assert.Equal(["tighter: path-denied"], deep.ShadowDenials);
    }

    public static TheoryData<string, string, string?> Requests => new()
    {
        { "GET", "/accounts/1", null },
        { "GET", "/accounts/1/orders", null },
        { "DELETE", "/admin/users/x", null },
        { "POST", "/accounts", null },
        { "GET", "/accounts/../admin", null },
        { "GET", "/accounts/1", "task-1" },
        { "POST", "/send", "task-1" },
        { "POST", "/send", null },
    };

    /// <summary>The class, not the instance: whatever shadow grants, shadow rate limits and shadow
    /// separation rules are added, every decision (and the enforced state it leaves) is the one
    /// taken without them.</summary>
    [Theory]
    [MemberData(nameof(Requests))]
    public async Task Shadow_policy_never_changes_an_enforced_decision(string method, string path, string? task)
    {
        var read = Grant("read", "crm") with
        {
            Methods = Set("GET", "POST"), Paths = [GlobPattern.ForPath("/accounts/**"), GlobPattern.ForPath("/send")], RateLimit = new RateLimit(3, TimeSpan.FromMinutes(1)),
        };
        var everything = Grant("everything", "crm") with { Shadow = true, RateLimit = new RateLimit(1, TimeSpan.FromMinutes(1)) };
        var nothing = Grant("nothing", "crm") with { Methods = Set(), Shadow = true };
        var rule = new SeparationRule("r", ["read"], ["read"], Shadow: false);
        var shadowRule = new SeparationRule("s", ["read"], ["read"], Shadow: true, RequireTask: true);

        var plainEngine = Engine();
        var shadowEngine = Engine();
        var plainAgent = Agent(read);
        var shadowAgent = Agent(everything, read, nothing);
        var plainOptions = PolicyOptions.Default;
        var shadowOptions = PolicyOptions.Default with { Separation = [shadowRule] };
        var withRule = PolicyOptions.Default with { Separation = [rule] };
        var withBoth = PolicyOptions.Default with { Separation = [shadowRule, rule] };

        foreach (var (plain, shadowed) in new[] { (plainOptions, shadowOptions), (withRule, withBoth) })
        {
            for (var i = 0; i < 5; i++)
            {
                var expected = await plainEngine.DecideAsync(Request(plainAgent, route: "crm", method: method, path: path, task: task), plain, Grants(read), default);
                var actual = await shadowEngine.DecideAsync(Request(shadowAgent, route: "crm", method: method, path: path, task: task), shadowed, Grants(read, everything, nothing), default);

                Assert.Equal(expected.Refusal?.Reason, actual.Refusal?.Reason);
                Assert.Equal(expected.Grant?.Name, actual.Grant?.Name);
                Assert.Equal(expected.Rule, actual.Rule);
            }
        }
    }

    [Fact]
    public async Task A_shadow_rate_limit_records_and_never_spends_the_enforced_count()
    {
        var read = Grant("read", "crm") with { RateLimit = new RateLimit(3, TimeSpan.FromMinutes(1)) };
        var tight = Grant("tight", "crm") with { RateLimit = new RateLimit(1, TimeSpan.FromMinutes(1)), Shadow = true };
        var engine = Engine();
        var agent = Agent(read, tight);

        var decisions = new List<PolicyDecision>();
        for (var i = 0; i < 4; i++)
        {
            decisions.Add(await engine.DecideAsync(Request(agent, route: "crm"), PolicyOptions.Default, Grants(read, tight), default));
        }

        Assert.Equal([true, true, true, false], decisions.Select(d => d.Allowed));
        Assert.Empty(decisions[0].ShadowDenials);
        Assert.Equal(["tight: rate-limited"], decisions[1].ShadowDenials);
        Assert.Equal("rate-limited", decisions[3].Refusal?.Reason);
    }

    [Fact]
    public async Task A_shadow_separation_rule_records_and_never_refuses()
    {
        var read = Grant("read");
        var send = Grant("send");
        var options = PolicyOptions.Default with { Separation = [new SeparationRule("r", ["read"], ["send"], Shadow: true, RequireTask: true)] };
        var agent = Agent(read, send);
        var engine = Engine();

        var first = await engine.DecideAsync(Request(agent, route: "read", task: "t"), options, Grants(read, send), default);
        var taskless = await engine.DecideAsync(Request(agent, route: "read"), options, Grants(read, send), default);
        var second = await engine.DecideAsync(Request(agent, route: "send", task: "t"), options, Grants(read, send), default);

        Assert.True(first.Allowed);
        Assert.True(taskless.Allowed);
        Assert.Equal(["rule r: task-required"], taskless.ShadowDenials);
        Assert.True(second.Allowed);
        Assert.Equal(["rule r: toxic-combination"], second.ShadowDenials);
    }

    [Fact]
    public async Task Separation_is_checked_and_recorded_in_one_step_and_a_fresh_task_escapes_nothing()
    {
        var read = Grant("read") with { Labels = FrozenSet.ToFrozenSet(["reads-crm"], StringComparer.OrdinalIgnoreCase) };
        var send = Grant("send");
        var options = PolicyOptions.Default with { Separation = [new SeparationRule("r", ["reads-crm"], ["send"], false)] };
        var agent = Agent(read, send);
        var engine = Engine();

        var first = await engine.DecideAsync(Request(agent, route: "read", task: "t"), options, Grants(read, send), default);
        var second = await engine.DecideAsync(Request(agent, route: "send", task: "t"), options, Grants(read, send), default);
        var fresh = await engine.DecideAsync(Request(agent, route: "send", task: "u"), options, Grants(read, send), default);
        var none = await engine.DecideAsync(Request(agent, route: "send"), options, Grants(read, send), default);

        Assert.True(first.Allowed);
        Assert.Equal("toxic-combination", second.Refusal?.Reason);
        Assert.Equal("r", second.Rule);
        Assert.Contains("task 't' used grant 'read'", second.Refusal?.Detail, StringComparison.Ordinal);
        Assert.Equal("toxic-combination", fresh.Refusal?.Reason);
        Assert.Contains("agent 'agent' used grant 'read'", fresh.Refusal?.Detail, StringComparison.Ordinal);
        Assert.Equal("toxic-combination", none.Refusal?.Reason);
    }

    [Fact]
    public async Task Without_a_task_the_agent_instance_history_decides_and_instances_are_apart()
    {
        var read = Grant("read");
        var send = Grant("send");
        var options = PolicyOptions.Default with { Separation = [new SeparationRule("r", ["read"], ["send"], false)] };
        var agent = Agent(read, send);
        var engine = Engine();

        var readA = await engine.DecideAsync(Request(agent, route: "read", instance: "a"), options, Grants(read, send), default);
        var sendA = await engine.DecideAsync(Request(agent, route: "send", instance: "a"), options, Grants(read, send), default);
        var sendB = await engine.DecideAsync(Request(agent, route: "send", instance: "b"), options, Grants(read, send), default);
        _time.Advance(options.TaskTtl + TimeSpan.FromSeconds(1));
        var later = await engine.DecideAsync(Request(agent, route: "send", instance: "a"), options, Grants(read, send), default);

        Assert.True(readA.Allowed);
        Assert.Equal("toxic-combination", sendA.Refusal?.Reason);
        Assert.Contains("instance 'a'", sendA.Refusal?.Detail, StringComparison.Ordinal);
        Assert.True(sendB.Allowed);
        Assert.True(later.Allowed);
    }

    [Fact]
    public async Task A_task_links_the_steps_of_every_instance_that_names_it()
    {
        var read = Grant("read");
        var send = Grant("send");
        var options = PolicyOptions.Default with { Separation = [new SeparationRule("r", ["read"], ["send"], false)] };
        var agent = Agent(read, send);
        var engine = Engine();

        await engine.DecideAsync(Request(agent, route: "read", instance: "a", task: "t"), options, Grants(read, send), default);
        var otherInstanceSameTask = await engine.DecideAsync(Request(agent, route: "send", instance: "b", task: "t"), options, Grants(read, send), default);
        var otherInstanceOtherTask = await engine.DecideAsync(Request(agent, route: "send", instance: "b", task: "u"), options, Grants(read, send), default);

        Assert.Equal("toxic-combination", otherInstanceSameTask.Refusal?.Reason);
        Assert.True(otherInstanceOtherTask.Allowed);
    }

    [Fact]
    public async Task Require_task_refuses_task_less_requests_on_the_grants_a_rule_names_only()
    {
        var read = Grant("read");
        var send = Grant("send");
        var other = Grant("other");
        var options = PolicyOptions.Default with { Separation = [new SeparationRule("r", ["read"], ["send"], false, RequireTask: true)] };
        var agent = Agent(read, send, other);
        var engine = Engine();

        var readNone = await engine.DecideAsync(Request(agent, route: "read"), options, Grants(read, send, other), default);
        var sendNone = await engine.DecideAsync(Request(agent, route: "send"), options, Grants(read, send, other), default);
        var readTask = await engine.DecideAsync(Request(agent, route: "read", task: "t"), options, Grants(read, send, other), default);
        var otherNone = await engine.DecideAsync(Request(agent, route: "other"), options, Grants(read, send, other), default);

        Assert.Equal("task-required", readNone.Refusal?.Reason);
        Assert.Equal("r", readNone.Rule);
        Assert.Equal("task-required", sendNone.Refusal?.Reason);
        Assert.True(readTask.Allowed);
        Assert.True(otherNone.Allowed);
    }

    [Fact]
    public async Task A_step_a_rule_names_is_refused_when_its_history_cannot_be_written()
    {
        var read = Grant("read");
        var send = Grant("send");
        var other = Grant("other");
        var options = PolicyOptions.Default with { Separation = [new SeparationRule("r", ["read"], ["send"], false)] };
        var agent = Agent(read, send, other);
        var engine = new PolicyEngine(new UnavailableHistories(_time), _time);

        // An unrecorded read could not be checked against later: fail closed, not only on the check.
        var unrecorded = await engine.DecideAsync(Request(agent, route: "read"), options, Grants(read, send, other), default);
        var unrelated = await engine.DecideAsync(Request(agent, route: "other"), options, Grants(read, send, other), default);

        Assert.Equal("policy-unavailable", unrecorded.Refusal?.Reason);
        Assert.True(unrelated.Allowed);
    }

    [Fact]
    public async Task A_tool_call_is_decided_on_its_own_name()
    {
        var grant = Grant("g") with { Tools = [GlobPattern.ForName("lookup_*")] };
        var engine = Engine();
        var agent = Agent(grant);

        var allowed = await engine.DecideAsync(Request(agent, body: Mcp("tools/call", "lookup_x")), PolicyOptions.Default, Grants(grant), default);
        var denied = await engine.DecideAsync(Request(agent, body: Mcp("tools/call", "delete_x")), PolicyOptions.Default, Grants(grant), default);
        var list = await engine.DecideAsync(Request(agent, body: Mcp("tools/list", null)), PolicyOptions.Default, Grants(grant), default);
        var note = await engine.DecideAsync(Request(agent, body: Mcp("notifications/initialized", null)), PolicyOptions.Default, Grants(grant), default);
        var odd = await engine.DecideAsync(Request(agent, body: Mcp("tools/run", null)), PolicyOptions.Default, Grants(grant), default);

        Assert.True(allowed.Allowed);
        Assert.Equal("mcp-tool-denied", denied.Refusal?.Reason);
        Assert.True(list.Allowed);
        Assert.True(note.Allowed);
        Assert.Equal("mcp-method-denied", odd.Refusal?.Reason);
    }

    [Theory]
    [InlineData("demo://resource/static/document/1", null)]
    [InlineData("demo://resource/static/document/../../dynamic/text/1", "bad-request")]
    [InlineData("demo://resource/static/document/%2e%2e/%2e%2e/dynamic/text/1", "bad-request")]
    [InlineData("demo://resource/static/document/..%2F..%2Fdynamic%2Ftext%2F1", "bad-request")]
    [InlineData("demo://resource/static/document/1/2", "mcp-resource-denied")]
    [InlineData("demo://resource/static/document/1?x=/../..", "mcp-resource-denied")]
    [InlineData("demo://resource/dynamic/text/1", "mcp-resource-denied")]
    [InlineData("DEMO://resource/static/document/1", "mcp-resource-denied")]
    public async Task A_resource_is_decided_on_a_uri_with_one_reading(string uri, string? reason)
    {
        var grant = Grant("g") with { Resources = [GlobPattern.ForUri("demo://resource/static/document/*")] };

        var decision = await Engine().DecideAsync(Request(Agent(grant), body: Mcp("resources/read", uri)), PolicyOptions.Default, Grants(grant), default);

        Assert.Equal(reason, decision.Refusal?.Reason);
    }

    [Fact]
    public async Task A_completion_is_decided_on_the_prompt_or_template_it_completes()
    {
        var grant = Grant("g") with
        {
            Prompts = [GlobPattern.ForPath("summarize")], Resources = [GlobPattern.ForUri("demo://resource/static/document/*")],
        };
        var engine = Engine();
        var agent = Agent(grant);

        async Task<string?> Complete((string, string)? reference) =>
            (await engine.DecideAsync(Request(agent, body: Mcp("completion/complete", null) with { CompletionRef = reference }), PolicyOptions.Default, Grants(grant), default)).Refusal?.Reason;

        Assert.Null(await Complete(("ref/prompt", "summarize")));
        Assert.Equal("mcp-prompt-denied", await Complete(("ref/prompt", "internal_notes")));
        Assert.Equal("bad-request", await Complete(("ref/prompt", "summarize/../internal_notes")));
        Assert.Null(await Complete(("ref/resource", "demo://resource/static/document/{name}")));
        Assert.Equal("mcp-resource-denied", await Complete(("ref/resource", "demo://resource/dynamic/text/{id}")));
        Assert.Equal("bad-request", await Complete(("ref/resource", "demo://resource/static/document/{name}/../../x")));
        Assert.Equal("mcp-method-denied", await Complete(null));
    }

    [Theory]
    [InlineData(LlmProvider.AzureOpenAI, "POST", "/openai/deployments/gpt-4o/chat/completions", "gpt-4o-mini", "bad-request")]
    [InlineData(LlmProvider.AzureOpenAI, "POST", "/openai/deployments/gpt-4o/chat/completions", null, "model-denied")]
    [InlineData(LlmProvider.AzureOpenAI, "POST", "/openai/deployments/gpt-4o-mini/chat/completions", null, null)]
    [InlineData(LlmProvider.Gemini, "POST", "/v1beta/models/gemini-2.5-pro:generateContent", null, "model-denied")]
    [InlineData(LlmProvider.Gemini, "POST", "/v1beta/models/gemini-2.5-flash:generateContent", null, null)]
    [InlineData(LlmProvider.OpenAI, "POST", "/v1beta/models/gemini-2.5-flash:generateContent", null, "bad-request")]
    [InlineData(LlmProvider.OpenAI, "POST", "/v1/chat/completions", "gpt-4o-mini", null)]
    [InlineData(LlmProvider.OpenAI, "GET", "/v1/models", null, null)]
    [InlineData(LlmProvider.OpenAI, "GET", "/v1/models/gpt-4o", null, "model-denied")]
    public async Task A_model_is_decided_where_the_provider_reads_it(LlmProvider provider, string method, string path, string? bodyModel, string? reason)
    {
        var grant = Grant("g") with { Models = [GlobPattern.ForPath("gpt-4o-mini"), GlobPattern.ForPath("gemini-2.5-flash")] };
        var body = bodyModel is null
            ? (method == "GET" ? InspectedBody.Empty(BodyKind.Llm) : new InspectedBody(BodyKind.Llm, null, null, null, new byte[] { (byte)'{', (byte)'}' }))
            : new InspectedBody(BodyKind.Llm, null, null, bodyModel, new byte[] { (byte)'{', (byte)'}' }) { Models = [("model", bodyModel)] };

        var decision = await Engine().DecideAsync(Request(Agent(grant), method: method, path: path, body: body) with { Provider = provider }, PolicyOptions.Default, Grants(grant), default);

        Assert.Equal(reason, decision.Refusal?.Reason);
    }

    private PolicyEngine Engine() => new(new InProcessPolicyStateStore(_time), _time);

    private static InspectedBody Mcp(string method, string? target) => new(BodyKind.Mcp, method, target, null, ReadOnlyMemory<byte>.Empty);

    internal static Grant Grant(string name, string? route = null) => new(
        name, FrozenSet.ToFrozenSet([route ?? name], StringComparer.OrdinalIgnoreCase), null, null, null, null, null, true, null, null, null, false, null, false,
        FrozenSet<string>.Empty);

    private static FrozenSet<string> Set(params string[] items) => items.ToFrozenSet(StringComparer.Ordinal);

    private static FrozenDictionary<string, Grant> Grants(params Grant[] grants) => grants.ToFrozenDictionary(g => g.Name, StringComparer.OrdinalIgnoreCase);

    private static Agent Agent(params Grant[] grants) => AgentGateway.Proxy.Identity.Agent.Create("agent", "owner", null, null, [.. grants.Select(g => g.Name)], grants);

    private static PolicyRequest Request(
        Agent agent, string? route = null, string method = "GET", string path = "/", InspectedBody? body = null, string? task = null, string? instance = null) =>
        new(agent, route ?? agent.RouteGrants.Keys.Concat(agent.ShadowRouteGrants.Keys).First(), method, path, false, body, task) { Instance = instance };

    /// <summary>Rate limits in process; histories unreachable, as when Redis is down.</summary>
    private sealed class UnavailableHistories(TimeProvider time) : IPolicyStateStore
    {
        private readonly InProcessPolicyStateStore _inner = new(time);

        public ValueTask<RateOutcome> HitAsync(RateKey key, RateLimit limit, DateTimeOffset now, CancellationToken cancellationToken) =>
            _inner.HitAsync(key, limit, now, cancellationToken);

        public ValueTask<IReadOnlyList<HistoryHit>> CheckAndRecordAsync(
            IReadOnlyList<string> scopes, TaskStep step, IReadOnlyCollection<string> earlier, TimeSpan ttl, CancellationToken cancellationToken) =>
            throw new PolicyStateUnavailableException("the shared step history (Redis) is unreachable");

        public ValueTask<bool> TryClaimAsync(string key, TimeSpan ttl, CancellationToken cancellationToken) => _inner.TryClaimAsync(key, ttl, cancellationToken);
    }
}
