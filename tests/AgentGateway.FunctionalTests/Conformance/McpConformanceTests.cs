using System.Text.Json.Nodes;
using AgentGateway.FunctionalTests.Infrastructure;
using Xunit.Abstractions;

namespace AgentGateway.FunctionalTests.Conformance;

/// <summary>
/// Strictness must not break correct clients: the official MCP conformance suite, run against a
/// conformance server written with the MCP C# SDK, once directly and once through the gateway on an
/// inspected MCP route (a grant with an <c>Mcp</c> section opening what the server offers, an
/// <c>McpOAuth</c> hop token injected). Every check that passes directly must pass through the
/// gateway, and the server must never see the agent's own token.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class McpConformanceTests(GatewayFixture fx, ITestOutputHelper output) : IAsyncLifetime
{
    // The suite's scenarios in version 0.1.16, all of which the conformance server implements.
    private const int Scenarios = 32;
    private const string DirectSubject = "conformance-direct";
    private static readonly TimeSpan SuiteTimeout = TimeSpan.FromMinutes(3);

    public Task InitializeAsync() => fx.ResetAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    // Both runs take a minute or more: made once, by whichever test comes first, for both.
    private static readonly SemaphoreSlim Once = new(1, 1);
    private static Runs? _runs;

    [Fact]
    public async Task Every_check_of_the_official_suite_that_passes_directly_passes_through_the_gateway()
    {
        var runs = await RunsAsync();
        var broken = runs.Direct.Verdicts.Where(c => c.Passed).DistinctBy(c => c.Name)
            .Where(check => runs.Through.Checks.Where(c => c.Name == check.Name).ToList() is var results && (results.Count == 0 || results.Any(c => !c.Passed)))
            .ToList();
        // A scenario that ends early reports under another id: show all it said.
        var said = runs.Through.Checks.Where(c => c.Status != "INFO" && !c.Passed && broken.Any(b => b.Scenario == c.Scenario));
        Assert.True(broken.Count == 0,
            $"passed directly, not through the gateway:\n  {string.Join("\n  ", broken.Select(c => c.Name))}\n\n" +
            $"what those scenarios reported through the gateway:\n  {string.Join("\n  ", said)}\n\nthe suite's output through the gateway:\n{runs.Through.Output}");

        // What reached the server through the gateway was the gateway's hop token, never the agent's.
        Assert.NotEmpty(runs.Forwarded);
        Assert.All(runs.Forwarded, r => Assert.Equal(Clients.McpGateway, r.Subject));
        Canary.AssertAbsent(runs.AgentToken, runs.Forwarded.Concat(runs.SeenDirectly).Select(r => (r.PathAndQuery + "\n" + r.Body, r.Headers)));
    }

    /// <summary>The suite's client carries on when its standalone GET stream (or a resumption)
    /// fails, so no check notices if the gateway refuses one: every kind of request that reached
    /// the server directly must reach it through the gateway too.</summary>
    [Fact]
    public async Task Every_kind_of_request_that_reaches_the_server_directly_reaches_it_through_the_gateway()
    {
        var runs = await RunsAsync();
        var lost = runs.SeenDirectly.Select(Kind).ToHashSet().Except(runs.Forwarded.Select(Kind)).Order(StringComparer.Ordinal).ToList();
        Assert.True(lost.Count == 0, $"reached the server directly, never through the gateway: {string.Join(", ", lost)}\n\nthe gateway's errors:\n" +
            string.Join("\n", runs.GatewayErrors.Take(5)));
    }

    private async Task<Runs> RunsAsync()
    {
        await Once.WaitAsync();
        try
        {
            return _runs ??= await RunBothAsync();
        }
        finally
        {
            Once.Release();
        }
    }

    private async Task<Runs> RunBothAsync()
    {
        await using var server = await ConformanceServer.StartAsync(fx.Auth, fx.McpPort);
        var now = DateTime.UtcNow;
        // Directly, the suite plays the gateway's part: it holds a token for the server itself.
        var direct = await ConformanceSuite.RunAsync(server.Resource, fx.Auth.Mint(DirectSubject, server.Resource, now, now.AddHours(1)), SuiteTimeout);
        Report("directly", direct);
        // The comparison is only as wide as what passes directly: the server must pass it all.
        Assert.True(direct.Scenarios.Count == Scenarios && direct.Verdicts.All(c => c.Passed),
            $"the conformance server itself fails the suite ({direct.Scenarios.Count} of {Scenarios} scenarios ran):\n  " +
            string.Join("\n  ", direct.Verdicts.Where(c => !c.Passed)) + $"\n\nthe suite's output:\n{direct.Output}");
        var seenDirectly = server.Requests;

        await using var gateway = await GatewayInstance.StartAsync(fx.Config(withRedis: true).WithMcpHop(fx.Auth, server.Resource, server.Url, ConformanceGrant()));
        var agentToken = await fx.AgentTokenAsync();
        var through = await ConformanceSuite.RunAsync(new Uri(gateway.Address, "/mcp").AbsoluteUri, agentToken, SuiteTimeout);
        Report("through the gateway", through);
        var forwarded = server.Requests.Skip(seenDirectly.Count).Where(r => r.PathAndQuery.StartsWith("/mcp", StringComparison.Ordinal)).ToList();
        var errors = gateway.Logs.Lines.Where(l => l.StartsWith("Error", StringComparison.Ordinal) || l.StartsWith("Critical", StringComparison.Ordinal)).ToList();
        return new Runs(direct, through, seenDirectly, forwarded, agentToken, errors);
    }

    private static string Kind(McpToolServer.SeenRequest request) =>
        request.Method + (request.Headers.ContainsKey("Last-Event-ID") ? " with Last-Event-ID" : "");

    /// <summary>The grant opens exactly what the conformance server offers.</summary>
    private static JsonObject ConformanceGrant() => new()
    {
        ["Mcp"] = new JsonObject
        {
            ["Tools"] = new JsonArray("test_*", "json_schema_2020_12_tool"),
            ["Prompts"] = new JsonArray("test_simple_prompt", "test_prompt_with_arguments", "test_prompt_with_embedded_resource", "test_prompt_with_image"),
            ["Resources"] = new JsonArray("test://static-text", "test://static-binary", "test://template/*/data", "test://watched-resource"),
            ["ServerRequests"] = new JsonArray("sampling/createMessage", "elicitation/create"),
        },
    };

    /// <param name="SeenDirectly">What the server received in the direct run.</param>
    /// <param name="Forwarded">What the server received at its MCP endpoint through the gateway.</param>
    private sealed record Runs(
        ConformanceRun Direct,
        ConformanceRun Through,
        IReadOnlyList<McpToolServer.SeenRequest> SeenDirectly,
        IReadOnlyList<McpToolServer.SeenRequest> Forwarded,
        string AgentToken,
        IReadOnlyList<string> GatewayErrors);

    private void Report(string how, ConformanceRun run)
    {
        output.WriteLine($"{how}: {run.Verdicts.Count(c => c.Passed)} of {run.Verdicts.Count} checks passed in {run.Scenarios.Count} scenarios");
        foreach (var check in run.Checks.Where(c => c.Status != "INFO"))
        {
            output.WriteLine("  " + check);
        }
    }
}
