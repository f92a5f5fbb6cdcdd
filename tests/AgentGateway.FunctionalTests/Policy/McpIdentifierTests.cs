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
/// Every MCP identifier a grant decides on — resource URIs, resource templates, prompt names — is
/// decided only with one reading, against a real MCP server (the C# SDK) that resolves resource
/// URIs the way URL-resolving servers do: a '..' that reached it would be served. With only
/// <c>demo://resource/static/document/*</c> allowed, nothing that could resolve elsewhere reaches it.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class McpIdentifierTests(GatewayFixture fx) : IAsyncLifetime
{
    private const string Documents = "demo://resource/static/document/*";

    private McpToolServer _server = null!;
    private GatewayInstance _gateway = null!;
    private string _agentToken = null!;

    public async Task InitializeAsync()
    {
        await fx.ResetAsync();
        _server = await McpToolServer.StartAsync(fx.Auth, fx.McpPort);
        _gateway = await GatewayInstance.StartAsync(Config(new JsonObject
        {
            ["Tools"] = new JsonArray("lookup_*"),
            ["Resources"] = new JsonArray(Documents),
            ["Prompts"] = new JsonArray("summarize"),
        }));
        _agentToken = await fx.AgentTokenAsync();
    }

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        await _server.DisposeAsync();
    }

    [Fact]
    public async Task The_server_resolves_dot_segments_so_an_open_grant_would_hand_out_the_secret()
    {
        // The control: through a grant that leaves resources open, the server does what the
        // attack needs — it resolves the URI and serves what it resolves to.
        await using var open = await GatewayInstance.StartAsync(Config(mcp: null));
        await using var client = await ConnectAsync(open);

        var result = await client.ReadResourceAsync("demo://resource/static/document/../../dynamic/text/1");

        Assert.Contains("SECRET", Assert.IsType<TextResourceContents>(Assert.Single(result.Contents)).Text, StringComparison.Ordinal);
        Assert.Equal([McpToolServer.Secret], _server.Served);
    }

    [Fact]
    public async Task An_allowed_document_is_read_by_the_real_client_and_the_attack_is_refused_to_it()
    {
        await using var client = await ConnectAsync(_gateway);

        var document = await client.ReadResourceAsync(McpToolServer.Document);
        var attack = await Assert.ThrowsAnyAsync<Exception>(() => client.ReadResourceAsync("demo://resource/static/document/../../dynamic/text/1").AsTask());

        Assert.Equal("a public document", Assert.IsType<TextResourceContents>(Assert.Single(document.Contents)).Text);
        Assert.Contains("400", attack.Message, StringComparison.Ordinal);
        Assert.Equal([McpToolServer.Document], _server.Served);
        _server.AssertNeverSaw(_agentToken);
    }

    public static TheoryData<string, int, string> ResourceAttacks => new()
    {
        // The report, and the same escape in every spelling a resolver decodes.
        { "demo://resource/static/document/../../dynamic/text/1", 400, "bad-request" },
        { "demo://resource/static/document/%2e%2e/%2e%2e/dynamic/text/1", 400, "bad-request" },
        { "demo://resource/static/document/%2E%2E/%2E%2E/dynamic/text/1", 400, "bad-request" },
        { "demo://resource/static/document/.%2e/.%2E/dynamic/text/1", 400, "bad-request" },
        { "demo://resource/static/document/%252e%252e/%252e%252e/dynamic/text/1", 400, "bad-request" },
        // One segment to a glob, three to a server that decodes first.
        { "demo://resource/static/document/..%2F..%2Fdynamic%2Ftext%2F1", 400, "bad-request" },
        { "demo://resource/static/document/..%2f..%2fdynamic%2ftext%2f1", 400, "bad-request" },
        { "demo://resource/static/document/..%252F..%252Fdynamic%252Ftext%252F1", 400, "bad-request" },
        { "demo://resource/static/document/..%5C..%5Cdynamic%5Ctext%5C1", 400, "bad-request" },
        { "demo://resource/static/document/..\\..\\dynamic\\text\\1", 400, "bad-request" },
        // Overlong UTF-8 and Unicode dots, raw and encoded; what Windows trims to '..'.
        { "demo://resource/static/document/%C0%AE%C0%AE/%C0%AE%C0%AE/dynamic/text/1", 400, "bad-request" },
        { "demo://resource/static/document/\uFF0E\uFF0E/\uFF0E\uFF0E/dynamic/text/1", 400, "bad-request" },
        { "demo://resource/static/document/%EF%BC%8E%EF%BC%8E/%EF%BC%8E%EF%BC%8E/dynamic/text/1", 400, "bad-request" },
        { "demo://resource/static/document/\u2025/\u2025/dynamic/text/1", 400, "bad-request" },
        { "demo://resource/static/document/..%20/..%20/dynamic/text/1", 400, "bad-request" },
        { "demo://resource/static/document/.../.../dynamic/text/1", 400, "bad-request" },
        // Through an allowed document, an empty segment, a matrix parameter.
        { "demo://resource/static/document/readme/../../../dynamic/text/1", 400, "bad-request" },
        { "demo://resource/static/document//../../dynamic/text/1", 400, "bad-request" },
        { "demo://resource/static/document/x;/../../dynamic/text/1", 400, "bad-request" },
        // Fragment, query, userinfo, case, the secret itself.
        { "demo://resource/static/document/readme#/../../../dynamic/text/1", 400, "bad-request" },
        { "demo://resource/static/document/readme?/../../../dynamic/text/1", 403, "mcp-resource-denied" },
        { "demo://x@resource/static/document/readme", 400, "bad-request" },
        { "DEMO://resource/static/document/readme", 403, "mcp-resource-denied" },
        { "demo://resource/static/document/readme/x", 403, "mcp-resource-denied" },
        { McpToolServer.Secret, 403, "mcp-resource-denied" },
    };

    [Theory]
    [MemberData(nameof(ResourceAttacks))]
    public async Task A_resource_uri_that_could_resolve_elsewhere_never_reaches_the_server(string uri, int status, string reason)
    {
        foreach (var method in new[] { "resources/read", "resources/subscribe" })
        {
            using var response = await PostAsync(new JsonObject
            {
                ["jsonrpc"] = "2.0",
                ["id"] = 1,
                ["method"] = method,
                ["params"] = new JsonObject { ["uri"] = uri },
            });

            await ProblemAssert.IsProblemAsync(response, (HttpStatusCode)status, reason);
        }

        Assert.Empty(_server.BodiesWith("resources/"));
        Assert.Empty(_server.Served);
    }

    [Fact]
    public async Task Prompts_are_decided_on_a_name_with_one_reading()
    {
        await using var client = await ConnectAsync(_gateway);

        var allowed = await client.GetPromptAsync("summarize");
        var denied = await Assert.ThrowsAnyAsync<Exception>(() => client.GetPromptAsync("internal_notes").AsTask());
        var statuses = new List<(string, HttpStatusCode)>();
        foreach (var name in new[] { "summarize/../internal_notes", "summarize/..", "summarize ", " summarize", "summarize\u200B", "summarize%2F..%2Finternal_notes", "summarize\\..\\internal_notes", "Summarize", "summarize*" })
        {
            using var response = await PostAsync(new JsonObject
            {
                ["jsonrpc"] = "2.0",
                ["id"] = 1,
                ["method"] = "prompts/get",
                ["params"] = new JsonObject { ["name"] = name },
            });
            statuses.Add((name, response.StatusCode));
        }

        Assert.NotEmpty(allowed.Messages);
        Assert.Contains("403", denied.Message, StringComparison.Ordinal);
        Assert.Contains("mcp-prompt-denied", denied.Message, StringComparison.Ordinal);
        Assert.All(statuses, s => Assert.True(s.Item2 is HttpStatusCode.BadRequest or HttpStatusCode.Forbidden, $"{s.Item1}: {s.Item2}"));
        Assert.Equal(["summarize"], _server.Prompts);
        _server.AssertNeverSaw(_agentToken);
    }

    [Fact]
    public async Task Completions_are_decided_on_the_prompt_or_resource_template_they_complete()
    {
        await using var client = await ConnectAsync(_gateway);

        await client.CompleteAsync(new PromptReference { Name = "summarize" }, "topic", "a");
        await client.CompleteAsync(new ResourceTemplateReference { Uri = "demo://resource/static/document/{+path}" }, "path", "r");
        var prompt = await Assert.ThrowsAnyAsync<Exception>(() => client.CompleteAsync(new PromptReference { Name = "internal_notes" }, "topic", "a").AsTask());
        var template = await Assert.ThrowsAnyAsync<Exception>(() => client.CompleteAsync(new ResourceTemplateReference { Uri = "demo://resource/dynamic/text/{id}" }, "id", "1").AsTask());
        var dotted = await Assert.ThrowsAnyAsync<Exception>(() => client.CompleteAsync(new ResourceTemplateReference { Uri = "demo://resource/static/document/../../dynamic/text/{id}" }, "id", "1").AsTask());

        Assert.Contains("mcp-prompt-denied", prompt.Message, StringComparison.Ordinal);
        Assert.Contains("mcp-resource-denied", template.Message, StringComparison.Ordinal);
        Assert.Contains("400", dotted.Message, StringComparison.Ordinal);
        Assert.Equal(["prompt summarize", "resource demo://resource/static/document/{+path}"], _server.Completions);
    }

    private JsonObject Config(JsonObject? mcp)
    {
        var config = fx.Config(withRedis: false).WithMcpHop(fx.Auth, fx.McpResource, _server.Url, mcp is null ? null : new JsonObject { ["Mcp"] = mcp });
        return config;
    }

    private async Task<McpClient> ConnectAsync(GatewayInstance gateway)
    {
        var transport = new HttpClientTransport(new HttpClientTransportOptions
        {
            Endpoint = new Uri(gateway.Address, "/mcp"),
            TransportMode = HttpTransportMode.StreamableHttp,
            AdditionalHeaders = new Dictionary<string, string> { ["Authorization"] = "Bearer " + _agentToken },
        });
        return await McpClient.CreateAsync(transport);
    }

    private async Task<HttpResponseMessage> PostAsync(JsonObject message)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/mcp")
        {
            Content = new StringContent(message.ToJsonString(), Encoding.UTF8, "application/json"),
        };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _agentToken);
        request.Headers.Accept.ParseAdd("application/json, text/event-stream");
        return await _gateway.Client.SendAsync(request);
    }
}
