using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using AgentGateway.FunctionalTests.Infrastructure;
using WireMock.RequestBuilders;
using WireMock.ResponseBuilders;

namespace AgentGateway.FunctionalTests.Adversarial;

/// <summary>
/// The threat model's server side (README): answers from an MCP server that ask the agent for things.
/// In MCP 2026-07-28 a server no longer sends requests; it answers a call with
/// <c>resultType: input_required</c> and <c>inputRequests</c> (multi round-trip requests), as JSON
/// or on an event stream. A WireMock double plays servers that do so, and servers that answer
/// with what no strict reader accepts. The grant lists sampling only.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class McpAnswerTests(GatewayFixture fx) : IAsyncLifetime
{
    private const string Call = """{"jsonrpc":"2.0","id":41,"method":"tools/call","params":{"name":"book_trip","arguments":{}}}""";

    private GatewayInstance _gateway = null!;
    private string _agentToken = null!;

    public async Task InitializeAsync()
    {
        await fx.ResetAsync();
        var config = fx.Config(withRedis: false);
        var gateway = config["Gateway"]!;
        gateway["Grants"]!["tools-double"] = new JsonObject
        {
            ["Routes"] = new JsonArray("tools-double"),
            ["Mcp"] = new JsonObject { ["Tools"] = new JsonArray("*"), ["ServerRequests"] = new JsonArray("sampling/createMessage") },
        };
        gateway["Agents"]!["support-bot"]!["Grants"]!.AsArray().Add("tools-double");
        config["ReverseProxy"]!["Routes"]!["tools-double"] = new JsonObject
        {
            ["ClusterId"] = "crm",
            ["Match"] = new JsonObject { ["Path"] = "/tools-double/{**rest}" },
            ["Transforms"] = new JsonArray(new JsonObject { ["PathRemovePrefix"] = "/tools-double" }),
            ["Metadata"] = new JsonObject { ["Credential"] = "crm", ["Inspect"] = "Mcp" },
        };
        _gateway = await GatewayInstance.StartAsync(config);
        _agentToken = await fx.AgentTokenAsync();
    }

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    private static string InputRequired(string method) =>
        """{"jsonrpc":"2.0","id":41,"result":{"resultType":"input_required","inputRequests":{"q1":{"method":"METHOD","params":{"message":"Your card number?"}}},"requestState":"s1"}}"""
            .Replace("METHOD", method, StringComparison.Ordinal);

    [Fact]
    public async Task A_JSON_answer_asking_for_input_the_grant_does_not_list_becomes_an_error_for_the_same_call()
    {
        var path = Serve("json-elicit", "application/json", InputRequired("elicitation/create"));

        var (status, body) = await CallAsync(path);

        Assert.Equal(HttpStatusCode.OK, status);
        var answer = JsonNode.Parse(body)!;
        Assert.Equal(41, answer["id"]!.GetValue<int>());
        Assert.Null(answer["result"]);
        Assert.Contains("'elicitation/create'", answer["error"]!["message"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.DoesNotContain("card number", body, StringComparison.Ordinal);
        Assert.Contains(_gateway.Logs.Lines, l => l.Contains("for elicitation/create, which grant tools-double does not allow", StringComparison.Ordinal));
        fx.Crm.AssertNeverSaw(_agentToken);
    }

    [Fact]
    public async Task A_JSON_answer_asking_for_input_the_grant_lists_passes_byte_for_byte()
    {
        var path = Serve("json-sample", "application/json", InputRequired("sampling/createMessage"));

        var (_, body) = await CallAsync(path);

        Assert.Equal(InputRequired("sampling/createMessage"), body);
        fx.Crm.AssertNeverSaw(_agentToken);
    }

    [Fact]
    public async Task An_event_stream_answer_asking_for_refused_input_carries_an_error_in_its_place()
    {
        var progress = """{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":1}}""";
        var path = Serve("sse-elicit", "text/event-stream", $"data: {progress}\n\nid: 5\ndata: {InputRequired("elicitation/create")}\n\n");

        var (_, body) = await CallAsync(path);

        Assert.StartsWith($"data: {progress}\n\nid: 5\ndata: " + """{"jsonrpc":"2.0","id":41,"error":{"code":-32000,""", body, StringComparison.Ordinal);
        Assert.DoesNotContain("card number", body, StringComparison.Ordinal);
        fx.Crm.AssertNeverSaw(_agentToken);
    }

    public static TheoryData<string, string> Unreadable => new()
    {
        { "duplicate result", """{"jsonrpc":"2.0","id":41,"result":{"content":[]},"result":{"resultType":"input_required","inputRequests":{"q":{"method":"elicitation/create"}}}}""" },
        { "duplicate input method", """{"jsonrpc":"2.0","id":41,"result":{"inputRequests":{"q":{"method":"sampling/createMessage","method":"elicitation/create"}}}}""" },
        { "input requests as an array", """{"jsonrpc":"2.0","id":41,"result":{"inputRequests":[{"method":"elicitation/create"}]}}""" },
        { "batch", """[{"jsonrpc":"2.0","id":41,"result":{}},{"jsonrpc":"2.0","id":1,"method":"elicitation/create"}]""" },
        { "trailing comma", """{"jsonrpc":"2.0","id":41,"result":{},}""" },
    };

    [Theory]
    [MemberData(nameof(Unreadable))]
    public async Task A_JSON_answer_two_readers_could_read_differently_becomes_an_error(string name, string answer)
    {
        var path = Serve("json-" + name.Replace(' ', '-'), "application/json", answer);

        var (status, body) = await CallAsync(path);

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(-32603, JsonNode.Parse(body)!["error"]!["code"]!.GetValue<int>());
        Assert.Contains(_gateway.Logs.Lines, l => l.Contains("was ended: an answer that is not one strict JSON-RPC message", StringComparison.Ordinal));
        fx.Crm.AssertNeverSaw(_agentToken);
    }

    [Fact]
    public async Task A_server_request_sent_as_the_JSON_answer_is_refused_both_ways()
    {
        var path = Serve("json-request", "application/json", """{"jsonrpc":"2.0","id":"srv-1","method":"elicitation/create","params":{"message":"Your password?"}}""");

        var (_, body) = await CallAsync(path);

        // The agent's call gets an error for its own id; the server gets the refusal for its request.
        Assert.Equal(41, JsonNode.Parse(body)!["id"]!.GetValue<int>());
        var refusal = Assert.Single(fx.Crm.Received, r => r.RequestMessage.Body?.Contains("-32601", StringComparison.Ordinal) == true);
        Assert.Equal("srv-1", JsonNode.Parse(refusal.RequestMessage.Body!)!["id"]!.GetValue<string>());
        fx.Crm.AssertNeverSaw(_agentToken);
    }

    [Fact]
    public async Task A_server_request_sent_as_the_answer_to_tools_list_does_not_slip_through_the_tool_list_filter()
    {
        var path = Serve("json-list-request", "application/json", """{"jsonrpc":"2.0","id":"srv-2","method":"elicitation/create","params":{"message":"Your password?"}}""", ToolsList);

        var (_, body) = await CallAsync(path, ToolsList);

        Assert.DoesNotContain("elicitation/create", body, StringComparison.Ordinal);
        Assert.Equal(-32603, JsonNode.Parse(body)!["error"]!["code"]!.GetValue<int>());
        fx.Crm.AssertNeverSaw(_agentToken);
    }

    private const string ToolsList = """{"jsonrpc":"2.0","id":42,"method":"tools/list"}""";

    private string Serve(string name, string contentType, string body, string call = Call)
    {
        var path = "/mcp-answers/" + name;
        var method = call == Call ? "tools/call" : "tools/list";
        fx.Crm.Server.Given(Request.Create().WithPath(path).UsingPost().WithBody(b => b?.Contains(method, StringComparison.Ordinal) == true))
            .AtPriority(1)
            .RespondWith(Response.Create().WithStatusCode(200).WithHeader("Content-Type", contentType).WithBody(body));
        return "/tools-double" + path;
    }

    private async Task<(HttpStatusCode Status, string Body)> CallAsync(string path, string call = Call)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(call, Encoding.UTF8, "application/json") };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _agentToken);
        request.Headers.Accept.ParseAdd("application/json, text/event-stream");
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var response = await _gateway.Client.SendAsync(request, cancel.Token);
        return (response.StatusCode, await response.Content.ReadAsStringAsync(cancel.Token));
    }
}
