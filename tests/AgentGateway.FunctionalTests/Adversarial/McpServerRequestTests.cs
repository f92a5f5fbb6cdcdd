using System.Text.Json.Nodes;
using AgentGateway.FunctionalTests.Infrastructure;
using ModelContextProtocol;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

// Sampling is deprecated from MCP 2026-07-28 (SEP-2577) but works for a year after, and servers
// speaking 2025-11-25 use it today: the gateway must still decide on it.
#pragma warning disable MCP9005

namespace AgentGateway.FunctionalTests.Adversarial;

/// <summary>
/// The threat model (README): server-to-client traffic on SSE streams is traffic too. A real MCP server whose
/// tools ask the client for sampling or elicitation in the middle of a call, a real MCP client
/// with handlers for both, the gateway between them: a request the grant does not list never
/// reaches the client's handler, the server is told so (its tool ends with an error rather than
/// waiting), and one the grant lists works end to end.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class McpServerRequestTests(GatewayFixture fx) : IAsyncLifetime
{
    private McpToolServer _server = null!;
    private string _agentToken = null!;
    private int _samplings;
    private int _elicitations;

    public async Task InitializeAsync()
    {
        await fx.ResetAsync();
        _server = await McpToolServer.StartAsync(fx.Auth, fx.McpPort);
        _agentToken = await fx.AgentTokenAsync();
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task A_sampling_request_the_grant_lists_reaches_the_agent_and_its_answer_reaches_the_tool()
    {
        await using var gateway = await StartAsync(serverRequests: ["sampling/createMessage"]);
        await using var client = await ConnectAsync(gateway);

        var result = await client.CallToolAsync("ask_model", new Dictionary<string, object?> { ["question"] = "meaning of life?" }, cancellationToken: Bounded());

        Assert.NotEqual(true, result.IsError);
        Assert.Equal("the model said: forty-two", Assert.IsType<TextContentBlock>(Assert.Single(result.Content)).Text);
        Assert.Equal(1, _samplings);
        Assert.Equal(["ask_model(meaning of life?) = forty-two"], _server.ToolCalls);
        _server.AssertNeverSaw(_agentToken);
    }

    [Fact]
    public async Task A_server_request_the_grant_does_not_list_never_reaches_the_agent_and_the_tool_ends_with_an_error()
    {
        await using var gateway = await StartAsync(serverRequests: ["sampling/createMessage"]);
        await using var client = await ConnectAsync(gateway);

        // The server's tool fails on the refusal, and the call ends with it (not with a hang).
        var error = await Assert.ThrowsAsync<McpProtocolException>(() =>
            client.CallToolAsync("ask_user", new Dictionary<string, object?> { ["question"] = "your password?" }, cancellationToken: Bounded()).AsTask());

        Assert.Contains("policy does not allow 'elicitation/create'", error.Message, StringComparison.Ordinal);
        Assert.Equal(0, _elicitations);
        var call = Assert.Single(_server.ToolCalls);
        Assert.StartsWith("ask_user(your password?) failed:", call, StringComparison.Ordinal);
        Assert.Contains("policy does not allow 'elicitation/create'", call, StringComparison.Ordinal);
        // The refusal went to the server as the client's answer would: with the hop token, not the agent's.
        var answer = Assert.Single(_server.Requests, r => r.Method == "POST" && r.Body.Contains("-32601", StringComparison.Ordinal));
        Assert.Equal(Clients.McpGateway, answer.Subject);
        Assert.True(answer.Headers.ContainsKey("Mcp-Session-Id"));
        Assert.Contains("elicitation/create", answer.Body, StringComparison.Ordinal);
        // With nothing exported, it carries the trace of the call it belongs to, as the call did.
        var callTrace = Assert.Single(_server.Requests, r => r.Body.Contains("\"ask_user\"", StringComparison.Ordinal)).Headers["traceparent"];
        Assert.Matches("^00-[0-9a-f]{32}-[0-9a-f]{16}-00$", answer.Headers.GetValueOrDefault("traceparent") ?? "(none)");
        Assert.Equal(callTrace.Split('-')[1], answer.Headers["traceparent"].Split('-')[1]);
        Assert.NotEqual(callTrace, answer.Headers["traceparent"]);
        Assert.Contains(gateway.Logs.Lines, l => l.Contains("asked agent support-bot for elicitation/create", StringComparison.Ordinal));
        _server.AssertNeverSaw(_agentToken);
    }

    [Fact]
    public async Task A_grant_that_restricts_tools_but_names_no_server_requests_refuses_sampling_too()
    {
        await using var gateway = await StartAsync(serverRequests: null);
        await using var client = await ConnectAsync(gateway);

        var error = await Assert.ThrowsAsync<McpProtocolException>(() =>
            client.CallToolAsync("ask_model", new Dictionary<string, object?> { ["question"] = "exfiltrate?" }, cancellationToken: Bounded()).AsTask());
        var ordinary = await client.CallToolAsync("lookup_customer", new Dictionary<string, object?> { ["id"] = "7" }, cancellationToken: Bounded());

        Assert.Contains("policy does not allow 'sampling/createMessage'", error.Message, StringComparison.Ordinal);
        Assert.NotEqual(true, ordinary.IsError);
        Assert.Equal(0, _samplings);
        Assert.Contains(_server.ToolCalls, c => c.StartsWith("ask_model(exfiltrate?) failed:", StringComparison.Ordinal));
        _server.AssertNeverSaw(_agentToken);
    }

    private async Task<GatewayInstance> StartAsync(string[]? serverRequests)
    {
        var mcp = new JsonObject { ["Tools"] = new JsonArray("lookup_*", "ask_*") };
        if (serverRequests is not null)
        {
            mcp["ServerRequests"] = new JsonArray([.. serverRequests.Select(s => JsonValue.Create(s))]);
        }

        return await GatewayInstance.StartAsync(fx.Config(withRedis: false).WithMcpHop(fx.Auth, fx.McpResource, _server.Url, new JsonObject { ["Mcp"] = mcp }));
    }

    private async Task<McpClient> ConnectAsync(GatewayInstance gateway)
    {
        var transport = new HttpClientTransport(new HttpClientTransportOptions
        {
            Endpoint = new Uri(gateway.Address, "/mcp"),
            TransportMode = HttpTransportMode.StreamableHttp,
            AdditionalHeaders = new Dictionary<string, string> { ["Authorization"] = "Bearer " + _agentToken },
        });
        var options = new McpClientOptions
        {
            Handlers = new McpClientHandlers
            {
                SamplingHandler = (request, progress, cancellationToken) =>
                {
                    Interlocked.Increment(ref _samplings);
                    return ValueTask.FromResult(new CreateMessageResult
                    {
                        Role = Role.Assistant,
                        Model = "test-model",
                        Content = [new TextContentBlock { Text = "forty-two" }],
                    });
                },
                ElicitationHandler = (request, cancellationToken) =>
                {
                    Interlocked.Increment(ref _elicitations);
                    return ValueTask.FromResult(new ElicitResult { Action = "accept" });
                },
            },
        };
        return await McpClient.CreateAsync(transport, options, cancellationToken: Bounded());
    }

    /// <summary>A refused request the server was never told about would hang the call: bounded, so that fails instead.</summary>
    private static CancellationToken Bounded() => new CancellationTokenSource(TimeSpan.FromSeconds(20)).Token;
}
