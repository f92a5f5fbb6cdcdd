using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using AgentGateway.FunctionalTests.Infrastructure;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;
using WireMock.RequestBuilders;
using WireMock.ResponseBuilders;
using WireMock.Server;

namespace AgentGateway.FunctionalTests.Credentials;

/// <summary>
/// <c>McpOAuth</c> end to end: a real MCP client, holding only its agent token, calls a tool on a
/// real MCP server through the gateway. The gateway discovers the server's authorization server
/// from its RFC 9728 metadata, gets a token bound to that server (RFC 8707), and injects it; the
/// server accepts only tokens whose audience is itself.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class McpOAuthTests(GatewayFixture fx) : IAsyncLifetime
{
    private const string ClientId = Clients.McpGateway;

    public Task InitializeAsync() => fx.ResetAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task A_real_mcp_client_calls_a_tool_through_the_gateway_with_a_token_bound_to_the_server()
    {
        await using var server = await McpToolServer.StartAsync(fx.Auth, fx.McpPort);
        await using var gateway = await GatewayInstance.StartAsync(WithMcp(fx.Config(withRedis: true), server.Resource, server.Url));
        var agentToken = await fx.AgentTokenAsync();
        var before = fx.Auth.TokenRequestsFor(ClientId);

        await using (var client = await ConnectAsync(gateway, agentToken))
        {
            var first = await client.CallToolAsync("lookup_customer", new Dictionary<string, object?> { ["id"] = "42" });
            var second = await client.CallToolAsync("lookup_customer", new Dictionary<string, object?> { ["id"] = "43" });

            Assert.NotEqual(true, first.IsError);
            Assert.Equal("customer 42: Ada Lovelace, premium", Assert.IsType<TextContentBlock>(Assert.Single(first.Content)).Text);
            Assert.NotEqual(true, second.IsError);
        }

        Assert.Equal(["lookup_customer(42)", "lookup_customer(43)"], server.ToolCalls);
        Assert.Equal(1, fx.Auth.TokenRequestsFor(ClientId) - before);
        Assert.Equal([server.Resource], fx.Auth.LastClientCredentialsRequest(ClientId)!.Resources);
        // Every MCP request the server took was authenticated as the gateway's client — never the
        // agent; the gateway's own metadata lookup is the only unauthenticated request.
        Assert.All(server.Requests.Where(r => r.PathAndQuery.StartsWith("/mcp", StringComparison.Ordinal)), r => Assert.Equal(ClientId, r.Subject));
        Assert.Contains(server.Requests, r => r.PathAndQuery == "/.well-known/oauth-protected-resource/mcp");
        server.AssertNeverSaw(agentToken);
        server.AssertNeverSaw(fx.McpSecret);
    }

    [Fact]
    public async Task The_server_itself_refuses_a_token_issued_for_another_audience()
    {
        await using var server = await McpToolServer.StartAsync(fx.Auth, fx.McpPort);
        var crmToken = await fx.Auth.GetTokenAsync(Clients.CrmHop, fx.CrmSecret, "crm.read");
        using var http = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, server.Resource) { Content = Initialize() };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", crmToken);
        request.Headers.Accept.ParseAdd("application/json, text/event-stream");

        using var response = await http.SendAsync(request);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Contains("resource_metadata", response.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Metadata_naming_an_authorization_server_that_is_not_allowed_gets_503_and_the_secret_goes_nowhere()
    {
        using var rogue = WireMockServer.Start();
        rogue.Given(Request.Create().UsingAnyMethod()).RespondWith(Response.Create().WithStatusCode(200).WithBody("{}"));
        await using var server = await McpToolServer.StartAsync(fx.Auth, fx.McpPort, advertisedAuthorizationServer: rogue.Url + "/");
        await using var gateway = await GatewayInstance.StartAsync(WithMcp(fx.Config(withRedis: false), server.Resource, server.Url));
        var agentToken = await fx.AgentTokenAsync();

        using var response = await PostInitializeAsync(gateway, agentToken);

        var problem = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.ServiceUnavailable, "credential-unavailable");
        Assert.Contains("none of them in AuthorizationServers", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Empty(rogue.LogEntries);
        Assert.Empty(server.ToolCalls);
        Assert.DoesNotContain(server.Requests, r => r.Method == "POST");
    }

    [Fact]
    public async Task Metadata_about_another_resource_is_not_believed()
    {
        using var impostor = WireMockServer.Start();
        impostor.Given(Request.Create().UsingGet()).RespondWith(Response.Create().WithStatusCode(200).WithHeader("Content-Type", "application/json")
            .WithBody($$"""{"resource":"https://elsewhere.example/mcp","authorization_servers":["{{fx.Auth.Issuer}}"]}"""));
        await using var server = await McpToolServer.StartAsync(fx.Auth, fx.McpPort);
        var config = WithMcp(fx.Config(withRedis: false), server.Resource, server.Url);
        config["Gateway"]!["Credentials"]!["mcp-tools"]!["ResourceMetadata"] = impostor.Url + "/.well-known/oauth-protected-resource";
        await using var gateway = await GatewayInstance.StartAsync(config);
        var agentToken = await fx.AgentTokenAsync();
        var before = fx.Auth.TokenRequestsFor(ClientId);

        using var response = await PostInitializeAsync(gateway, agentToken);

        var problem = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.ServiceUnavailable, "credential-unavailable");
        Assert.Contains("not about", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(0, fx.Auth.TokenRequestsFor(ClientId) - before);
        Assert.Empty(server.Requests);
    }

    private static async Task<McpClient> ConnectAsync(GatewayInstance gateway, string agentToken)
    {
        var transport = new HttpClientTransport(new HttpClientTransportOptions
        {
            Endpoint = new Uri(gateway.Address, "/mcp"),
            TransportMode = HttpTransportMode.StreamableHttp,
            AdditionalHeaders = new Dictionary<string, string> { ["Authorization"] = "Bearer " + agentToken },
        });
        return await McpClient.CreateAsync(transport);
    }

    private static async Task<HttpResponseMessage> PostInitializeAsync(GatewayInstance gateway, string agentToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/mcp") { Content = Initialize() };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", agentToken);
        request.Headers.Accept.ParseAdd("application/json, text/event-stream");
        return await gateway.Client.SendAsync(request);
    }

    private static StringContent Initialize() => new(
        """{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"test","version":"1"}}}""",
        Encoding.UTF8,
        "application/json");

    private JsonObject WithMcp(JsonObject config, string resource, string serverUrl) => config.WithMcpHop(fx.Auth, resource, serverUrl);
}
