using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using AgentGateway.FunctionalTests.Infrastructure;
using ModelContextProtocol.Client;

namespace AgentGateway.FunctionalTests.Adversarial;

/// <summary>
/// Whether a request has a body is the server's knowledge, not its headers': on a route that
/// inspects MCP bodies, a call streamed over HTTP/2 without any length is read and decided like any
/// other (a denied tool never runs on the real MCP server, an allowed one does); a body on a GET is
/// refused whatever its framing; and the bodiless requests real clients send (the MCP SDK's GET
/// stream and the DELETE of its session, a model list) are decided by method and path and forwarded
/// — none ends in a 500.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class BodyPresenceTests(GatewayFixture fx) : IAsyncLifetime
{
    private const string Initialize = """{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"attacker","version":"1"}}}""";
    private const string Initialized = """{"jsonrpc":"2.0","method":"notifications/initialized"}""";

    private readonly GatewayEndpoints _endpoints = new();
    private McpToolServer _server = null!;
    private GatewayInstance _gateway = null!;
    private string _token = null!;

    public async Task InitializeAsync()
    {
        await fx.ResetAsync();
        _server = await McpToolServer.StartAsync(fx.Auth, fx.McpPort);
        var config = _endpoints.With(fx.Config(withRedis: false).WithMcpHop(fx.Auth, fx.McpResource, _server.Url, new JsonObject
        {
            ["Mcp"] = new JsonObject { ["Tools"] = new JsonArray("lookup_*") },
        }));
        config["ReverseProxy"]!["Routes"]!["openai"]!["Metadata"]!["Inspect"] = "Llm";
        config["ReverseProxy"]!["Routes"]!["anthropic"]!["Metadata"]!["Inspect"] = "Llm";
        config["Gateway"]!["Grants"]!["llm"]!["Models"] = new JsonArray("gpt-4o*");
        try
        {
            _gateway = await GatewayInstance.StartAsync(config);
        }
        catch
        {
            // xUnit does not dispose a class whose initialisation failed; the server's port is the run's.
            await _server.DisposeAsync();
            throw;
        }

        _token = await fx.AgentTokenAsync();
    }

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        await _server.DisposeAsync();
        _endpoints.Dispose();
    }

    [Theory]
    [InlineData("h2c")]
    [InlineData("tls")]
    [InlineData("http1-chunked")]
    public async Task A_call_streamed_without_a_length_is_read_and_decided_so_a_denied_tool_never_runs(string listener)
    {
        var (client, address) = await ListenerAsync(listener);
        using var _ = client;
        var session = await OpenSessionAsync(client, address);

        using var allowed = await PostAsync(client, address, session, """{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"lookup_customer","arguments":{"id":"7"}}}""");
        using var denied = await PostAsync(client, address, session, """{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"delete_customer","arguments":{"id":"7"}}}""");

        Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
        await ProblemAssert.IsProblemAsync(denied, HttpStatusCode.Forbidden, "mcp-tool-denied");
        Assert.Equal(["lookup_customer(7)"], _server.ToolCalls);
        // The server got the call as the bytes decided on, framed by their length.
        var call = _server.Requests.Single(r => r.Body.Contains("lookup_customer", StringComparison.Ordinal));
        Assert.Equal(Encoding.UTF8.GetByteCount(call.Body).ToString(System.Globalization.CultureInfo.InvariantCulture), call.Headers["Content-Length"]);
        _server.AssertNeverSaw(_token);
    }

    [Theory]
    [InlineData("h2c", "GET")]
    [InlineData("h2c", "DELETE")]
    [InlineData("tls", "GET")]
    [InlineData("http1-chunked", "GET")]
    public async Task A_body_on_a_bodiless_method_is_refused_whatever_its_framing(string listener, string method)
    {
        var (client, address) = await ListenerAsync(listener);
        using var _ = client;
        using var request = Request(client, new HttpMethod(method), address, new UnknownLengthContent("""{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"delete_customer","arguments":{"id":"7"}}}"""));

        using var response = await client.SendAsync(request);

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.BadRequest, "bad-request");
        Assert.Empty(_server.Requests);
    }

    [Fact]
    public async Task An_empty_body_streamed_over_HTTP2_is_no_body_and_the_DELETE_of_a_session_is_forwarded()
    {
        var (client, address) = await ListenerAsync("h2c");
        using var _ = client;
        var session = await OpenSessionAsync(client, address);
        using var request = Request(client, HttpMethod.Delete, address, new UnknownLengthContent([], mediaType: null));
        request.Headers.Add("Mcp-Session-Id", session);

        using var response = await client.SendAsync(request);

        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        Assert.Contains(_server.Requests, r => r.Method == "DELETE" && r.Body.Length == 0);
    }

    [Fact]
    public async Task The_MCP_SDK_clients_GET_stream_and_DELETE_of_its_session_pass_an_inspected_route_whose_grant_restricts_tools()
    {
        var transport = new HttpClientTransport(new HttpClientTransportOptions
        {
            Endpoint = new Uri(await GatewayEndpoints.Http1Async(_gateway), "/mcp"),
            TransportMode = HttpTransportMode.StreamableHttp,
            AdditionalHeaders = new Dictionary<string, string> { ["Authorization"] = "Bearer " + _token },
        });
        await using (var client = await McpClient.CreateAsync(transport))
        {
            var result = await client.CallToolAsync("lookup_customer", new Dictionary<string, object?> { ["id"] = "9" });
            Assert.NotEqual(true, result.IsError);
            await WaitForAsync(() => _server.Requests.Any(r => r.Method == "GET"), "the SDK's GET stream never reached the server");
        }

        await WaitForAsync(() => _server.Requests.Any(r => r.Method == "DELETE"), "the SDK's DELETE of its session never reached the server");
        Assert.Equal(["lookup_customer(9)"], _server.ToolCalls);
        Assert.DoesNotContain(_gateway.Logs.Lines, l => l.Contains("unhandled", StringComparison.OrdinalIgnoreCase));
        // Every request to the MCP endpoint carried the hop credential (the gateway's own discovery
        // of the server's metadata is the only unauthenticated request).
        Assert.All(_server.Requests.Where(r => r.PathAndQuery.StartsWith("/mcp", StringComparison.Ordinal)), r => Assert.Equal(Clients.McpGateway, r.Subject));
        _server.AssertNeverSaw(_token);
    }

    [Fact]
    public async Task A_model_list_is_decided_by_method_and_path_where_the_grant_restricts_models()
    {
        using var http = _endpoints.Client(HttpVersion.Version11);
        http.BaseAddress = await GatewayEndpoints.Http1Async(_gateway);
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", _token);
        using var list = await http.GetAsync("/llm/openai/v1/models");
        using var other = await http.PostAsync("/llm/openai/v1/chat/completions", new StringContent("""{"model":"o3","messages":[]}""", Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.OK, list.StatusCode);
        await ProblemAssert.IsProblemAsync(other, HttpStatusCode.Forbidden, "model-denied");
        var received = Assert.Single(fx.Llm.Received);
        Assert.Equal("/v1/models", received.RequestMessage.Path);
        Assert.Equal("GET", received.RequestMessage.Method);
        fx.Llm.AssertNeverSaw(_token);
    }

    private async Task<(HttpClient Client, Uri Address)> ListenerAsync(string listener) => listener switch
    {
        "h2c" => (_endpoints.Client(HttpVersion.Version20), await GatewayEndpoints.H2cAsync(_gateway)),
        "tls" => (_endpoints.Client(HttpVersion.Version20), GatewayEndpoints.Tls(_gateway)),
        _ => (_endpoints.Client(HttpVersion.Version11), await GatewayEndpoints.Http1Async(_gateway)),
    };

    private async Task<string> OpenSessionAsync(HttpClient client, Uri address)
    {
        using var init = await PostAsync(client, address, null, Initialize);
        Assert.Equal(HttpStatusCode.OK, init.StatusCode);
        var session = init.Headers.GetValues("Mcp-Session-Id").Single();
        using var initialized = await PostAsync(client, address, session, Initialized);
        Assert.True(initialized.IsSuccessStatusCode, $"initialized: {(int)initialized.StatusCode}");
        return session;
    }

    private async Task<HttpResponseMessage> PostAsync(HttpClient client, Uri address, string? session, string body)
    {
        using var request = Request(client, HttpMethod.Post, address, new UnknownLengthContent(body));
        if (session is not null)
        {
            request.Headers.Add("Mcp-Session-Id", session);
            request.Headers.Add("MCP-Protocol-Version", "2025-06-18");
        }

        var response = await client.SendAsync(request);
        await response.Content.LoadIntoBufferAsync();
        return response;
    }

    private HttpRequestMessage Request(HttpClient client, HttpMethod method, Uri address, HttpContent? content)
    {
        var request = new HttpRequestMessage(method, new Uri(address, "/mcp"))
        {
            Content = content,
            Version = client.DefaultRequestVersion,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _token);
        request.Headers.Accept.ParseAdd("application/json");
        request.Headers.Accept.ParseAdd("text/event-stream");
        return request;
    }

    private static async Task WaitForAsync(Func<bool> condition, string failure)
    {
        for (var i = 0; i < 100 && !condition(); i++)
        {
            await Task.Delay(50);
        }

        Assert.True(condition(), failure);
    }
}
