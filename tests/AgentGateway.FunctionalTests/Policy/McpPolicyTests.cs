using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using AgentGateway.FunctionalTests.Infrastructure;
using ModelContextProtocol;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace AgentGateway.FunctionalTests.Policy;

/// <summary>
/// MCP policy with a real MCP client and a real MCP server through the gateway: each call is
/// decided on its own body, never on an earlier <c>tools/list</c>; a denied call never reaches
/// the server; and every way two JSON readers could disagree about a call is refused.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class McpPolicyTests(GatewayFixture fx) : IAsyncLifetime
{
    private McpToolServer _server = null!;
    private GatewayInstance _gateway = null!;
    private string _agentToken = null!;

    public async Task InitializeAsync()
    {
        await fx.ResetAsync();
        _server = await McpToolServer.StartAsync(fx.Auth, fx.McpPort);
        var config = fx.Config(withRedis: false).WithMcpHop(fx.Auth, fx.McpResource, _server.Url, new JsonObject
        {
            ["Mcp"] = new JsonObject { ["Tools"] = new JsonArray("lookup_*") },
        });
        config["Gateway"]!["Policy"] = new JsonObject { ["MaxInspectedBodyBytes"] = 4096 };
        _gateway = await GatewayInstance.StartAsync(config);
        _agentToken = await fx.AgentTokenAsync();
    }

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        await _server.DisposeAsync();
    }

    [Fact]
    public async Task A_tool_allowed_by_pattern_runs_and_a_denied_tool_never_reaches_the_server()
    {
        await using var client = await ConnectAsync();

        var allowed = await client.CallToolAsync("lookup_customer", new Dictionary<string, object?> { ["id"] = "7" });
        var denied = await Assert.ThrowsAnyAsync<Exception>(() =>
            client.CallToolAsync("delete_customer", new Dictionary<string, object?> { ["id"] = "7" }).AsTask());

        Assert.NotEqual(true, allowed.IsError);
        Assert.Contains("403", denied.Message, StringComparison.Ordinal);
        Assert.Contains("mcp-tool-denied", denied.Message, StringComparison.Ordinal);
        Assert.Equal(["lookup_customer(7)"], _server.ToolCalls);
        _server.AssertNeverSaw(_agentToken);
    }

    [Fact]
    public async Task Tools_list_shows_only_what_the_grant_allows_and_calls_are_still_decided_one_by_one()
    {
        await using var client = await ConnectAsync();

        var tools = await client.ListToolsAsync();

        Assert.Equal(["lookup_customer"], tools.Select(t => t.Name));
        // Knowing a tool's name from elsewhere does not help: the call itself is decided.
        await Assert.ThrowsAnyAsync<Exception>(() => client.CallToolAsync("delete_customer", new Dictionary<string, object?> { ["id"] = "1" }).AsTask());
        Assert.Empty(_server.ToolCalls);
    }

    public static TheoryData<string, string, int, string> Disagreements => new()
    {
        { "duplicate tool name", """{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"lookup_customer","name":"delete_customer"}}""", 400, "bad-request" },
        { "duplicate name, one escaped", """{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"lookup_customer","na\u006de":"delete_customer"}}""", 400, "bad-request" },
        { "duplicate method", """{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call","params":{"name":"delete_customer"}}""", 400, "bad-request" },
        { "batch", """[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_customer"}}]""", 400, "bad-request" },
        { "byte-order mark", "\uFEFF" + """{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_customer"}}""", 400, "bad-request" },
        { "comment", """{"jsonrpc":"2.0","id":1,"method":"tools/call",/* x */"params":{"name":"delete_customer"}}""", 400, "bad-request" },
        { "trailing comma", """{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_customer",}}""", 400, "bad-request" },
        { "escaped name decoding to a denied tool", """{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"\u0064elete_customer"}}""", 403, "mcp-tool-denied" },
        { "invisible character in the name", """{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"lookup_customer\u200b"}}""", 400, "bad-request" },
        { "NUL in the name", """{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"lookup_customer\u0000delete"}}""", 400, "bad-request" },
        { "null id", """{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"lookup_customer"}}""", 400, "bad-request" },
        { "fractional id", """{"jsonrpc":"2.0","id":1.5,"method":"tools/call","params":{"name":"lookup_customer"}}""", 400, "bad-request" },
        { "object id", """{"jsonrpc":"2.0","id":{},"method":"tools/call","params":{"name":"lookup_customer"}}""", 400, "bad-request" },
        { "params as array", """{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["delete_customer"]}""", 400, "bad-request" },
        { "name not a string", """{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":["delete_customer"]}}""", 400, "bad-request" },
        { "wrong jsonrpc version", """{"jsonrpc":"1.0","id":1,"method":"tools/call","params":{"name":"delete_customer"}}""", 400, "bad-request" },
        { "method outside MCP", """{"jsonrpc":"2.0","id":1,"method":"tools/execute","params":{"name":"delete_customer"}}""", 403, "mcp-method-denied" },
        { "lone surrogate", """{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"lookup_customer","arguments":{"x":"\ud800"}}}""", 400, "bad-request" },
    };

    [Theory]
    [MemberData(nameof(Disagreements))]
    public async Task Bodies_two_parsers_could_read_differently_are_refused_and_never_reach_the_server(string _, string body, int status, string reason)
    {
        using var response = await PostAsync(Encoding.UTF8.GetBytes(body));

        await ProblemAssert.IsProblemAsync(response, (HttpStatusCode)status, reason);
        Assert.DoesNotContain(_server.Requests, r => r.Method == "POST");
        Assert.Empty(_server.ToolCalls);
    }

    public static TheoryData<string, string, string?> Framings => new()
    {
        { "text/plain", "text/plain", null },
        { "UTF-16 charset", "application/json; charset=utf-16", null },
        { "compressed", "application/json", "gzip" },
    };

    [Theory]
    [MemberData(nameof(Framings))]
    public async Task Bodies_in_another_type_or_encoding_are_refused(string _, string contentType, string? encoding)
    {
        var content = new ByteArrayContent(Encoding.UTF8.GetBytes("""{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_customer"}}"""));
        content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        if (encoding is not null)
        {
            content.Headers.ContentEncoding.Add(encoding);
        }

        using var response = await PostAsync(content);

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.BadRequest, "bad-request");
        Assert.DoesNotContain(_server.Requests, r => r.Method == "POST");
    }

    [Fact]
    public async Task Invalid_utf8_is_refused()
    {
        byte[] body = [.. Encoding.UTF8.GetBytes("""{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"lookup_customer","arguments":{"x":" """), 0xC3, 0x28, .. Encoding.UTF8.GetBytes("\"}}}")];

        using var response = await PostAsync(body);

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.BadRequest, "bad-request");
        Assert.DoesNotContain(_server.Requests, r => r.Method == "POST");
    }

    [Fact]
    public async Task A_body_over_the_inspection_limit_is_refused_413_never_forwarded_uninspected()
    {
        var padding = new string('a', 5000);
        var body = """{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"lookup_customer","arguments":{"pad":"PAD"}}}""".Replace("PAD", padding, StringComparison.Ordinal);

        using var declared = await PostAsync(Encoding.UTF8.GetBytes(body));
        var chunkedContent = new ChunkedContent(Encoding.UTF8.GetBytes(body));
        chunkedContent.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var chunked = await PostAsync(chunkedContent);

        await ProblemAssert.IsProblemAsync(declared, HttpStatusCode.RequestEntityTooLarge, "body-too-large");
        await ProblemAssert.IsProblemAsync(chunked, HttpStatusCode.RequestEntityTooLarge, "body-too-large");
        Assert.DoesNotContain(_server.Requests, r => r.Method == "POST");
    }

    /// <summary>In every spelling an upstream (WSGI, CGI) folds to the same name.</summary>
    [Theory]
    [InlineData("Mcp-Method", "tools/list")]
    [InlineData("Mcp_Method", "tools/list")]
    [InlineData("mcp.method", "tools/list")]
    [InlineData("MCP_METHOD", "tools/list")]
    [InlineData("Mcp-Name", "safe_tool")]
    [InlineData("Mcp_Name", "safe_tool")]
    public async Task A_header_restating_the_method_must_agree_with_the_body(string header, string value)
    {
        var content = new ByteArrayContent(Encoding.UTF8.GetBytes("""{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_customer"}}"""));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var request = Request(content);
        request.Headers.TryAddWithoutValidation(header, value);

        using var response = await _gateway.Client.SendAsync(request);

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.BadRequest, "bad-request");
    }

    /// <summary>Without a body there is nothing for such a header to agree with.</summary>
    [Theory]
    [InlineData("GET", "Mcp-Method", "tools/call")]
    [InlineData("DELETE", "Mcp_Name", "delete_customer")]
    [InlineData("POST", "mcp.method", "tools/call")]
    public async Task A_header_restating_a_call_on_a_request_without_a_body_is_refused(string method, string header, string value)
    {
        using var request = new HttpRequestMessage(new HttpMethod(method), "/mcp");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _agentToken);
        request.Headers.Accept.ParseAdd("application/json, text/event-stream");
        request.Headers.TryAddWithoutValidation("Mcp-Session-Id", "s-1");
        request.Headers.TryAddWithoutValidation(header, value);
        if (method == "POST")
        {
            request.Content = new ByteArrayContent([]);
        }

        using var response = await _gateway.Client.SendAsync(request);

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.BadRequest, "bad-request");
        Assert.DoesNotContain(_server.Requests, r => r.Method == method);
        _server.AssertNeverSaw(_agentToken);
    }

    [Fact]
    public async Task A_header_restating_a_call_on_a_response_message_is_refused()
    {
        var content = new ByteArrayContent(Encoding.UTF8.GetBytes("""{"jsonrpc":"2.0","id":1,"result":{}}"""));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var request = Request(content);
        request.Headers.TryAddWithoutValidation("Mcp_Method", "tools/call");
        request.Headers.TryAddWithoutValidation("Mcp-Name", "delete_customer");

        using var response = await _gateway.Client.SendAsync(request);

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.BadRequest, "bad-request");
        Assert.DoesNotContain(_server.Requests, r => r.Method == "POST");
        _server.AssertNeverSaw(_agentToken);
    }

    private async Task<McpClient> ConnectAsync()
    {
        var transport = new HttpClientTransport(new HttpClientTransportOptions
        {
            Endpoint = new Uri(_gateway.Address, "/mcp"),
            TransportMode = HttpTransportMode.StreamableHttp,
            AdditionalHeaders = new Dictionary<string, string> { ["Authorization"] = "Bearer " + _agentToken },
        });
        return await McpClient.CreateAsync(transport);
    }

    private Task<HttpResponseMessage> PostAsync(byte[] body)
    {
        var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        return PostAsync(content);
    }

    private async Task<HttpResponseMessage> PostAsync(HttpContent content)
    {
        using var request = Request(content);
        return await _gateway.Client.SendAsync(request);
    }

    private HttpRequestMessage Request(HttpContent content)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/mcp") { Content = content };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _agentToken);
        request.Headers.Accept.ParseAdd("application/json, text/event-stream");
        return request;
    }

    /// <summary>A body sent without Content-Length, so the gateway must count as it reads.</summary>
    private sealed class ChunkedContent(byte[] body) : HttpContent
    {
        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => stream.WriteAsync(body).AsTask();

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }
}
