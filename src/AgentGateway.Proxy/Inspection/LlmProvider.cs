namespace AgentGateway.Proxy.Inspection;

/// <summary>
/// Which provider's request shapes an LLM route speaks (<c>Metadata:LlmProvider</c>, on routes with
/// <c>Metadata:Inspect = Llm</c>): where its upstream reads the model — the body, the path, or
/// both. The gateway reads it in the same places.
/// </summary>
public enum LlmProvider
{
    /// <summary>OpenAI and OpenAI-compatible servers: the body's <c>model</c>; <c>/models/{model}</c> to read or delete one.</summary>
    OpenAI,

    /// <summary>Anthropic: the body's <c>model</c> (in a batch, each request's <c>params.model</c>); <c>/models/{model}</c>.</summary>
    Anthropic,

    /// <summary>Azure OpenAI: <c>/openai/deployments/{deployment}/…</c> (the deployment is the model), or the body's <c>model</c> on <c>/openai/v1/…</c>.</summary>
    AzureOpenAI,

    /// <summary>Gemini API: <c>/models/{model}:{method}</c> and <c>/tunedModels/{model}:{method}</c>.</summary>
    Gemini,

    /// <summary>Vertex AI: <c>/publishers/{publisher}/models/{model}:{method}</c>, named <c>{publisher}/{model}</c>
    /// (as its OpenAI-compatible endpoint's body names it).</summary>
    VertexAI,

    /// <summary>Amazon Bedrock runtime: <c>/model/{modelId}/{invoke|converse|…}</c>; the body's <c>modelId</c>
    /// (<c>/async-invoke</c>). A percent-encoded ARN in the path is refused: its encoded '/' would reach
    /// Bedrock re-encoded.</summary>
    Bedrock,
}
