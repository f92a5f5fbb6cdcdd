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
    public async Task A_shadow_grant_records_what_it_would_refuse_and_allows()
    {
        var grant = Grant("g") with { Methods = FrozenSet.ToFrozenSet(["GET"]), Shadow = true };

        var decision = await Engine().DecideAsync(Request(Agent(grant), method: "POST"), PolicyOptions.Default, Grants(grant), default);

        Assert.True(decision.Allowed);
        Assert.Equal(["g: method-denied"], decision.ShadowDenials);
    }

    [Fact]
    public async Task Separation_is_checked_and_recorded_in_one_step_so_concurrent_requests_cannot_both_pass()
    {
        var read = Grant("read") with { Labels = FrozenSet.ToFrozenSet(["reads-crm"], StringComparer.OrdinalIgnoreCase) };
        var send = Grant("send");
        var options = PolicyOptions.Default with { Separation = [new SeparationRule("r", ["reads-crm"], ["send"], false)] };
        var agent = Agent(read, send);
        var engine = Engine();

        var first = await engine.DecideAsync(Request(agent, route: "read", task: "t"), options, Grants(read, send), default);
        var second = await engine.DecideAsync(Request(agent, route: "send", task: "t"), options, Grants(read, send), default);
        var other = await engine.DecideAsync(Request(agent, route: "send", task: "u"), options, Grants(read, send), default);

        Assert.True(first.Allowed);
        Assert.Equal("toxic-combination", second.Refusal?.Reason);
        Assert.Equal("r", second.Rule);
        Assert.True(other.Allowed);
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

    private PolicyEngine Engine() => new(new InProcessPolicyStateStore(_time), _time);

    private static InspectedBody Mcp(string method, string? target) => new(BodyKind.Mcp, method, target, null, ReadOnlyMemory<byte>.Empty);

    internal static Grant Grant(string name) => new(
        name, FrozenSet.ToFrozenSet([name], StringComparer.OrdinalIgnoreCase), null, null, null, null, null, true, null, null, null, false, null, false,
        FrozenSet<string>.Empty);

    private static FrozenDictionary<string, Grant> Grants(params Grant[] grants) => grants.ToFrozenDictionary(g => g.Name, StringComparer.OrdinalIgnoreCase);

    private static Agent Agent(params Grant[] grants) => new(
        "agent", "owner", null, null, [.. grants.Select(g => g.Name)],
        grants.SelectMany(g => g.Routes.Select(r => (Route: r, Grant: g)))
            .GroupBy(x => x.Route)
            .ToFrozenDictionary(x => x.Key, x => (IReadOnlyList<Grant>)[.. x.Select(y => y.Grant)], StringComparer.OrdinalIgnoreCase));

    private static PolicyRequest Request(Agent agent, string? route = null, string method = "GET", InspectedBody? body = null, string? task = null) =>
        new(agent, route ?? agent.RouteGrants.Keys.First(), method, "/", false, body, task);
}
