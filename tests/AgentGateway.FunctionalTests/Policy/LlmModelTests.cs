using System.Text;
using System.Text.Json.Nodes;
using AgentGateway.FunctionalTests.Infrastructure;

namespace AgentGateway.FunctionalTests.Policy;

/// <summary>
/// The model allow-list decided where each provider reads the model — the body, the path, the
/// query — on the path and query exactly as forwarded, against every provider shape the gateway
/// knows: OpenAI, Azure OpenAI (deployment paths and the v1 API), Anthropic, Gemini, Vertex AI and
/// Bedrock. Requests are written byte for byte (HttpClient would normalise encoded paths); the
/// upstream keeps what it received, byte for byte.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class LlmModelTests(GatewayFixture fx) : IAsyncLifetime
{
    private const string Arn = "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-3-haiku-20240307-v1%3A0";

    private readonly RawUpstream _upstream = RawUpstream.Start();
    private GatewayInstance _gateway = null!;
    private string _token = "";

    public async Task InitializeAsync()
    {
        await fx.ResetAsync();
        _token = await fx.AgentTokenAsync();
        _gateway = await GatewayInstance.StartAsync(Config());
    }

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        await _upstream.DisposeAsync();
    }

    public static TheoryData<string, string, string?, string> Allowed => new()
    {
        { "POST", "/llm/openai/v1/chat/completions", """{"model":"gpt-4o-mini","messages":[]}""", "/v1/chat/completions" },
        { "POST", "/llm/anthropic/v1/messages", """{"model":"claude-3-5-haiku-latest","max_tokens":5,"messages":[]}""", "/v1/messages" },
        { "POST", "/llm/azure/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21", """{"messages":[]}""", "/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21" },
        { "POST", "/llm/azure/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21", """{"model":"gpt-4o-mini","messages":[]}""", "/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21" },
        { "POST", "/llm/azure/openai/v1/chat/completions", """{"model":"gpt-4o-mini","messages":[]}""", "/openai/v1/chat/completions" },
        { "POST", "/llm/gemini/v1beta/models/gemini-2.5-flash:generateContent", """{"contents":[]}""", "/v1beta/models/gemini-2.5-flash:generateContent" },
        { "POST", "/llm/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", """{"contents":[]}""", "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse" },
        { "POST", "/llm/vertex/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-flash:generateContent", """{"contents":[]}""", "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-flash:generateContent" },
        { "POST", "/llm/vertex/v1/projects/p/locations/us-central1/endpoints/openapi/chat/completions", """{"model":"google/gemini-2.5-flash","messages":[]}""", "/v1/projects/p/locations/us-central1/endpoints/openapi/chat/completions" },
        { "POST", "/llm/bedrock/model/anthropic.claude-3-haiku-20240307-v1:0/invoke", """{"anthropic_version":"bedrock-2023-05-31","messages":[]}""", "/model/anthropic.claude-3-haiku-20240307-v1:0/invoke" },
        { "POST", "/llm/bedrock/model/anthropic.claude-3-haiku-20240307-v1:0/converse-stream", """{"messages":[]}""", "/model/anthropic.claude-3-haiku-20240307-v1:0/converse-stream" },
        // The AWS SDKs percent-encode the model id: ':' arrives decoded.
        { "POST", "/llm/bedrock/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse", """{"messages":[]}""", "/model/anthropic.claude-3-haiku-20240307-v1:0/converse" },
        { "POST", "/llm/bedrock/async-invoke", """{"modelId":"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0","modelInput":{}}""", "/async-invoke" },
    };

    [Theory]
    [MemberData(nameof(Allowed))]
    public async Task A_model_the_grant_allows_reaches_the_upstream_as_decided(string method, string target, string? body, string forwarded)
    {
        var response = await SendAsync(method, target, body);

        Assert.StartsWith("HTTP/1.1 200", response, StringComparison.Ordinal);
        var received = Assert.Single(_upstream.Received);
        Assert.Equal(forwarded, received.Target);
        Assert.Equal(["Bearer " + fx.OpenAiKey], received.Headers("Authorization"));
        _upstream.AssertNeverSaw(_token);
    }

    public static TheoryData<string, string, string?, string> Refused => new()
    {
        // The report: Azure reads the deployment, not the body.
        { "POST", "/llm/azure/openai/deployments/gpt-4o/chat/completions", """{"model":"gpt-4o-mini","messages":[]}""", "bad-request" },
        { "POST", "/llm/azure/openai/deployments/gpt-4o/chat/completions", """{"messages":[]}""", "model-denied" },
        { "POST", "/llm/azure/openai/Deployments/gpt-4o/chat/completions", """{"messages":[]}""", "model-denied" },
        { "POST", "/llm/azure/openai/deployments/gpt-4o-mini%2F..%2Fgpt-4o/chat/completions", """{"messages":[]}""", "bad-request" },
        { "POST", "/llm/azure/openai/deployments/gpt-4o-mini;x=1/chat/completions", """{"messages":[]}""", "bad-request" },
        { "POST", "/llm/azure/openai/realtime?api-version=2025-04-01&deployment=gpt-4o-realtime", """{"messages":[]}""", "model-denied" },
        // The report: Gemini reads the path.
        { "POST", "/llm/gemini/v1beta/models/gemini-2.5-pro:generateContent", """{"contents":[]}""", "model-denied" },
        { "POST", "/llm/gemini/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse", """{"contents":[]}""", "model-denied" },
        { "POST", "/llm/gemini/v1beta/Models/gemini-2.5-pro:generateContent", """{"contents":[]}""", "model-denied" },
        { "POST", "/llm/gemini/v1beta/tunedModels/gemini-2.5-flash:generateContent", """{"contents":[]}""", "model-denied" },
        { "POST", "/llm/gemini/v1beta/models/gemini-2.5-flash%2F..%2Fgemini-2.5-pro:generateContent", """{"contents":[]}""", "bad-request" },
        { "POST", "/llm/gemini/v1beta/models/gemini-2.5-flash:generateContent", """{"model":"models/gemini-2.5-pro","contents":[]}""", "bad-request" },
        { "POST", "/llm/gemini/v1beta/models/gemini-2.5-flash:batchEmbedContents", """{"requests":[{"model":"models/gemini-2.5-pro","content":{}}]}""", "model-denied" },
        // Vertex: by publisher and model; an endpoint's model is not in the request.
        { "POST", "/llm/vertex/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-pro:generateContent", """{"contents":[]}""", "model-denied" },
        { "POST", "/llm/vertex/v1/projects/p/locations/us-central1/publishers/anthropic/models/claude-opus-4@20250514:rawPredict", """{"messages":[]}""", "model-denied" },
        { "POST", "/llm/vertex/v1/projects/p/locations/us-central1/endpoints/1234567890:predict", """{"instances":[]}""", "bad-request" },
        // Bedrock: the model id in the path, raw or an encoded ARN; the body's modelId.
        { "POST", "/llm/bedrock/model/anthropic.claude-3-opus-20240229-v1:0/invoke", """{"messages":[]}""", "model-denied" },
        { "POST", "/llm/bedrock/model/anthropic.claude-3-haiku-20240307-v1:0%2F..%2F..%2Fmodel%2Fanthropic.claude-3-opus-20240229-v1:0/invoke", """{"messages":[]}""", "bad-request" },
        { "POST", "/llm/bedrock/model/anthropic.claude-3-haiku-20240307-v1:0%252F..%252Fx/invoke", """{"messages":[]}""", "bad-request" },
        // An ARN's encoded '/' would reach Bedrock re-encoded (%252F), a model id it does not read as sent.
        { "POST", $"/llm/bedrock/model/{Arn}/converse", """{"messages":[]}""", "bad-request" },
        { "POST", "/llm/bedrock/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-3-opus-20240229-v1%3A0/converse", """{"messages":[]}""", "bad-request" },
        { "POST", "/llm/bedrock/model/anthropic.claude-3-opus-20240229-v1%3A0/invoke", """{"messages":[]}""", "model-denied" },
        { "POST", "/llm/bedrock/async-invoke", """{"modelId":"anthropic.claude-3-opus-20240229-v1:0","modelInput":{}}""", "model-denied" },
        // Another provider's shape on an OpenAI route is not guessed at.
        { "POST", "/llm/openai/openai/deployments/gpt-4o/chat/completions", """{"model":"gpt-4o-mini","messages":[]}""", "bad-request" },
        { "POST", "/llm/openai/v1beta/models/gemini-2.5-pro:generateContent", """{"model":"gpt-4o-mini"}""", "bad-request" },
        { "POST", "/llm/openai/model/anthropic.claude-3-opus-20240229-v1:0/invoke", """{"model":"gpt-4o-mini"}""", "bad-request" },
        // The query, and the body's batch entries.
        { "POST", "/llm/openai/v1/chat/completions?model=gpt-4o", """{"model":"gpt-4o-mini","messages":[]}""", "bad-request" },
        { "POST", "/llm/openai/v1/chat/completions?MODEL=gpt-4o", """{"messages":[]}""", "model-denied" },
        { "POST", "/llm/openai/v1/chat/completions?model=gpt-4o-mini&model=gpt-4o", """{"messages":[]}""", "bad-request" },
        { "POST", "/llm/anthropic/v1/messages/batches", """{"requests":[{"custom_id":"a","params":{"model":"claude-3-opus-latest","max_tokens":5,"messages":[]}}]}""", "model-denied" },
        { "POST", "/llm/anthropic/v1/messages/batches", """{"model":"claude-3-5-haiku-latest","requests":[{"custom_id":"a","params":{"model":"claude-3-opus-latest","messages":[]}}]}""", "model-denied" },
        // A body that names no model may get the upstream's default.
        { "POST", "/llm/openai/v1/chat/completions", """{"messages":[]}""", "model-denied" },
        // Ambiguous paths on a model-restricted route.
        { "POST", "/llm/openai/v1/chat/completions;model=gpt-4o", """{"model":"gpt-4o-mini"}""", "bad-request" },
        { "POST", "/llm/openai/v1//chat/completions", """{"model":"gpt-4o-mini"}""", "bad-request" },
    };

    [Theory]
    [MemberData(nameof(Refused))]
    public async Task A_model_the_grant_does_not_allow_never_reaches_the_upstream_in_any_shape(string method, string target, string? body, string reason)
    {
        var response = await SendAsync(method, target, body);

        var status = reason == "bad-request" ? 400 : 403;
        Assert.StartsWith($"HTTP/1.1 {status} ", response, StringComparison.Ordinal);
        Assert.Contains("application/problem+json", response, StringComparison.Ordinal);
        Assert.Contains($"\"reason\":\"{reason}\"", response, StringComparison.Ordinal);
        Assert.Empty(_upstream.Received);
    }

    [Fact]
    public async Task A_route_naming_a_provider_it_does_not_inspect_or_one_that_does_not_exist_is_refused_at_load()
    {
        var config = Config();
        config["ReverseProxy"]!["Routes"]!["azure"]!["Metadata"]!["LlmProvider"] = "Azure";
        config["ReverseProxy"]!["Routes"]!["crm"]!["Metadata"]!["LlmProvider"] = "OpenAI";
        config["Gateway"]!["Grants"]!["llm"]!["Models"]!.AsArray().Add("gpt-4o/../gpt-5");
        var file = Path.Combine(Path.GetTempPath(), $"agentgateway-llm-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(file, config.ToJsonString());
        try
        {
            using var output = new StringWriter();
            var code = await AgentGateway.Host.GatewayCommand.RunAsync(["validate", file], output, output);

            Assert.Equal(AgentGateway.Host.GatewayCommand.ConfigInvalid, code);
            var text = output.ToString();
            Assert.Contains("ReverseProxy:Routes:azure:Metadata:LlmProvider", text, StringComparison.Ordinal);
            Assert.Contains("ReverseProxy:Routes:crm:Metadata:LlmProvider", text, StringComparison.Ordinal);
            Assert.Contains("Gateway:Grants:llm:Models:6", text, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(file);
        }
    }

    private async Task<string> SendAsync(string method, string target, string? body)
    {
        var bytes = body is null ? 0 : Encoding.UTF8.GetByteCount(body);
        var request = $"{method} {target} HTTP/1.1\r\nHost: gateway.test\r\nAuthorization: Bearer {_token}\r\n"
            + (body is null ? "" : $"Content-Type: application/json\r\nContent-Length: {bytes}\r\n")
            + $"Connection: close\r\n\r\n{body}";
        return await RawHttp.SendAsync(_gateway, request);
    }

    private JsonObject Config()
    {
        var config = fx.Config(withRedis: false).WithUpstream("llm", _upstream.Url);
        var routes = config["ReverseProxy"]!["Routes"]!.AsObject();
        routes["openai"]!["Metadata"]!["Inspect"] = "Llm";
        routes["anthropic"]!["Metadata"]!["Inspect"] = "Llm";
        routes["anthropic"]!["Metadata"]!["LlmProvider"] = "Anthropic";
        routes["anthropic"]!["Metadata"]!["Credential"] = "openai";
        // Each provider's route to the same upstream, with the OpenAI key (the upstream only records).
        foreach (var (name, provider) in new[] { ("azure", "AzureOpenAI"), ("gemini", "Gemini"), ("vertex", "VertexAI"), ("bedrock", "Bedrock") })
        {
            routes[name] = new JsonObject
            {
                ["ClusterId"] = "llm",
                ["Match"] = new JsonObject { ["Path"] = $"/llm/{name}/{{**rest}}" },
                ["Transforms"] = new JsonArray(new JsonObject { ["PathRemovePrefix"] = $"/llm/{name}" }),
                ["Metadata"] = new JsonObject { ["Credential"] = "openai", ["Inspect"] = "Llm", ["LlmProvider"] = provider },
            };
        }

        config["Gateway"]!["Grants"]!["llm"] = new JsonObject
        {
            ["Routes"] = new JsonArray("openai", "anthropic", "azure", "gemini", "vertex", "bedrock"),
            ["Models"] = new JsonArray(
                "gpt-4o-mini",
                "claude-3-5-haiku-*",
                "gemini-2.5-flash",
                "google/gemini-2.5-flash",
                "anthropic.claude-3-haiku-*"),
        };
        config["Gateway"]!["Grants"]!["llm"]!["Models"]!.AsArray().Add("arn:aws:bedrock:us-east-1:*:inference-profile/us.anthropic.claude-3-haiku-*");
        return config;
    }
}
