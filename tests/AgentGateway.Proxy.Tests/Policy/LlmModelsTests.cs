using AgentGateway.Proxy.Inspection;
using AgentGateway.Proxy.Policy;

namespace AgentGateway.Proxy.Tests.Policy;

/// <summary>Where each provider's request names its model, read the same way by the gateway.</summary>
public sealed class LlmModelsTests
{
    [Theory]
    // The request's own model, in one place or several that agree.
    [InlineData(LlmProvider.OpenAI, "POST", "/v1/chat/completions", null, "model=gpt-4o", "gpt-4o")]
    [InlineData(LlmProvider.OpenAI, "GET", "/v1/models/ft:gpt-4o-mini:org::abc", null, null, "ft:gpt-4o-mini:org::abc")]
    [InlineData(LlmProvider.OpenAI, "GET", "/v1/realtime", "?model=gpt-4o-realtime", null, "gpt-4o-realtime")]
    [InlineData(LlmProvider.AzureOpenAI, "POST", "/openai/deployments/prod-4o/chat/completions", "?api-version=2024-10-21", "model=prod-4o", "prod-4o")]
    [InlineData(LlmProvider.AzureOpenAI, "POST", "/openai/v1/responses", null, "model=prod-4o", "prod-4o")]
    [InlineData(LlmProvider.AzureOpenAI, "GET", "/openai/realtime", "?deployment=rt", null, "rt")]
    [InlineData(LlmProvider.Gemini, "POST", "/v1beta/models/gemini-2.5-flash:countTokens", null, null, "gemini-2.5-flash")]
    [InlineData(LlmProvider.Gemini, "POST", "/v1beta/models/gemini-2.5-flash:generateContent", null, "model=models/gemini-2.5-flash", "gemini-2.5-flash")]
    [InlineData(LlmProvider.Gemini, "POST", "/v1beta/tunedModels/abc:generateContent", null, null, "tunedModels/abc")]
    [InlineData(LlmProvider.Gemini, "POST", "/v1beta/cachedContents", null, "model=models/gemini-2.5-flash", "gemini-2.5-flash")]
    [InlineData(LlmProvider.VertexAI, "POST", "/v1/projects/p/locations/l/publishers/google/models/gemini-2.5-flash:streamGenerateContent", null, null, "google/gemini-2.5-flash")]
    [InlineData(LlmProvider.VertexAI, "POST", "/v1/projects/p/locations/l/cachedContents", null, "model=projects/p/locations/l/publishers/google/models/gemini-2.5-flash", "google/gemini-2.5-flash")]
    [InlineData(LlmProvider.VertexAI, "POST", "/v1/projects/p/locations/l/endpoints/openapi/chat/completions", null, "model=google/gemini-2.5-flash", "google/gemini-2.5-flash")]
    [InlineData(LlmProvider.Bedrock, "POST", "/model/anthropic.claude-3-haiku-20240307-v1:0/invoke-with-response-stream", null, null, "anthropic.claude-3-haiku-20240307-v1:0")]
    [InlineData(LlmProvider.Bedrock, "POST", "/async-invoke", null, "modelId=amazon.nova-reel-v1:0", "amazon.nova-reel-v1:0")]
    // Nothing named at all.
    [InlineData(LlmProvider.OpenAI, "GET", "/v1/models", null, null, "")]
    [InlineData(LlmProvider.AzureOpenAI, "GET", "/openai/deployments", null, null, "")]
    [InlineData(LlmProvider.Gemini, "GET", "/v1beta/models/", null, null, "")]
    public void The_model_is_read_where_the_provider_reads_it(LlmProvider provider, string method, string path, string? query, string? body, string expected)
    {
        var reading = LlmModels.Read(provider, method, path, query, Body(body));

        Assert.Null(reading.Ambiguity);
        Assert.Equal(expected, string.Join(",", reading.Models));
    }

    [Theory]
    // The request's own model named twice, differently.
    [InlineData(LlmProvider.AzureOpenAI, "POST", "/openai/deployments/gpt-4o/chat/completions", null, "model=gpt-4o-mini", "different models")]
    [InlineData(LlmProvider.OpenAI, "POST", "/v1/chat/completions", "?model=gpt-4o", "model=gpt-4o-mini", "different models")]
    [InlineData(LlmProvider.Gemini, "POST", "/v1beta/models/gemini-2.5-flash:generateContent", null, "model=models/gemini-2.5-pro", "different models")]
    [InlineData(LlmProvider.Bedrock, "POST", "/model/a.b-v1:0/invoke", null, "modelId=c.d-v1:0", "different models")]
    [InlineData(LlmProvider.OpenAI, "POST", "/v1/chat/completions", "?model=a&MODEL=b", null, "2 times")]
    [InlineData(LlmProvider.OpenAI, "POST", "/v1/chat/completions", "?x=1;model=gpt-4o", null, "';'")]
    // Another provider's shape, or one whose model is not in the request.
    [InlineData(LlmProvider.OpenAI, "POST", "/openai/deployments/gpt-4o/chat/completions", null, "model=gpt-4o-mini", "does not read")]
    [InlineData(LlmProvider.OpenAI, "POST", "/v1/models/gpt-4o:generateContent", null, null, "does not read")]
    [InlineData(LlmProvider.Anthropic, "POST", "/model/anthropic.claude-3-opus-20240229-v1:0/invoke", null, "model=claude-3-5-haiku-latest", "does not read")]
    [InlineData(LlmProvider.Gemini, "POST", "/v1/projects/p/locations/l/publishers/google/models/gemini-2.5-pro:generateContent", null, null, "does not read")]
    [InlineData(LlmProvider.AzureOpenAI, "POST", "/openai/deployments/a/x/deployments/b/chat/completions", null, null, "twice")]
    [InlineData(LlmProvider.VertexAI, "POST", "/v1/projects/p/locations/l/endpoints/123:predict", null, null, "endpoint")]
    [InlineData(LlmProvider.Bedrock, "POST", "/model/arn:aws:bedrock:us-east-1:1:inference-profile%2Fx/converse", null, null, "ambiguous")]
    // Names and paths under the identifier rule.
    [InlineData(LlmProvider.AzureOpenAI, "POST", "/openai/deployments/gpt-4o-mini%2F..%2Fgpt-4o/chat/completions", null, null, "ambiguous")]
    [InlineData(LlmProvider.Gemini, "POST", "/v1beta/models/..:generateContent", null, null, "cannot be decided")]
    [InlineData(LlmProvider.Bedrock, "POST", "/model/a\\b/invoke", null, null, "backslash")]
    [InlineData(LlmProvider.OpenAI, "POST", "/v1/chat/completions", null, "model=gpt 4o", "cannot be decided")]
    [InlineData(LlmProvider.Gemini, "POST", "/v1beta/models/gemini-2.5-flash:generateContent", null, "model=models/../gemini-2.5-pro", "cannot be decided")]
    [InlineData(LlmProvider.OpenAI, "POST", "/v1//chat/completions", null, "model=gpt-4o", "ambiguous")]
    public void A_model_that_cannot_be_decided_is_refused(LlmProvider provider, string method, string path, string? query, string? body, string why)
    {
        var reading = LlmModels.Read(provider, method, path, query, Body(body));

        Assert.NotNull(reading.Ambiguity);
        Assert.Contains(why, reading.Ambiguity, StringComparison.Ordinal);
    }

    [Fact]
    public void Each_entry_of_a_batch_names_its_own_model()
    {
        var body = Body("model=claude-3-5-haiku-latest")! with
        {
            Models = [("model", "claude-3-5-haiku-latest"), ("requests[0].params.model", "claude-3-opus-latest"), ("requests[1].params.model", "claude-3-5-haiku-latest")],
        };

        var reading = LlmModels.Read(LlmProvider.Anthropic, "POST", "/v1/messages/batches", null, body);

        Assert.Null(reading.Ambiguity);
        Assert.Equal(["claude-3-5-haiku-latest", "claude-3-opus-latest"], reading.Models);
    }

    /// <summary>A body naming "field=model", as the inspector reports it.</summary>
    private static InspectedBody? Body(string? field)
    {
        if (field is null)
        {
            return InspectedBody.Empty(BodyKind.Llm);
        }

        var (name, model) = (field[..field.IndexOf('=')], field[(field.IndexOf('=') + 1)..]);
        return new InspectedBody(BodyKind.Llm, null, null, name == "model" ? model : null, new byte[] { (byte)'{', (byte)'}' }) { Models = [(name, model)] };
    }
}
