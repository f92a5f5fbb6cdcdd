namespace AgentGateway.Proxy.Inspection;

/// <summary>Which bodies a route's requests carry, so the gateway can decide on them
/// (<c>Metadata:Inspect</c> on the route).</summary>
public enum BodyKind
{
    /// <summary>Bodies are streamed through uninspected.</summary>
    None,

    /// <summary>MCP over Streamable HTTP: JSON-RPC 2.0 messages.</summary>
    Mcp,

    /// <summary>OpenAI- or Anthropic-style LLM requests, with a <c>model</c>.</summary>
    Llm,
}

/// <summary>
/// What a strictly parsed body says, as the upstream will read it: the decoded JSON-RPC method and
/// the tool, prompt or resource it targets, or the LLM model. Only facts from bodies that parsed
/// without any ambiguity exist; the bytes forwarded are the bytes these were read from.
/// </summary>
/// <param name="Kind">The route's body kind.</param>
/// <param name="Method">The JSON-RPC method; null for a JSON-RPC response or a request without a body.</param>
/// <param name="Target">tools/call and prompts/get: <c>params.name</c>; resources/*: <c>params.uri</c>.</param>
/// <param name="Model">LLM requests: <c>model</c>, if present.</param>
/// <param name="Bytes">The body exactly as forwarded.</param>
/// <param name="Id">The JSON-RPC id as JSON text (a string or an integer), so the gateway can answer in its place.</param>
public sealed record InspectedBody(BodyKind Kind, string? Method, string? Target, string? Model, ReadOnlyMemory<byte> Bytes, string? Id = null)
{
    public static InspectedBody Empty(BodyKind kind) => new(kind, null, null, null, ReadOnlyMemory<byte>.Empty);

    /// <summary>LLM requests: every place the body names a model, as (where, name): <c>model</c>
    /// and <c>modelId</c> for the request itself, <c>requests[i].model</c> and
    /// <c>requests[i].params.model</c> for the entries of a batch.</summary>
    public IReadOnlyList<(string Field, string Model)> Models { get; init; } = [];

    /// <summary><c>completion/complete</c>: what its <c>params.ref</c> names, as (<c>ref/prompt</c>,
    /// name) or (<c>ref/resource</c>, URI template); null when it names neither.</summary>
    public (string Type, string Name)? CompletionRef { get; init; }

    /// <summary>Nothing followed the headers (an MCP GET stream, a DELETE, a model list): there is
    /// no call, tool or model to decide on, so method and path decide.</summary>
    public bool IsBodiless => Bytes.IsEmpty;
}

/// <summary>The MCP name rules the gateway holds bodies and patterns to.</summary>
public static class McpNames
{
    private static readonly System.Buffers.SearchValues<char> ToolNameChars =
        System.Buffers.SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.");

    /// <summary>MCP tool names: 1–128 of A–Z, a–z, 0–9, '_', '-', '.'. Anything else (spaces,
    /// look-alike letters, control characters) could be read differently by the server.</summary>
    public static bool IsToolName(string? name) =>
        name is { Length: > 0 and <= 128 } && !name.AsSpan().ContainsAnyExcept(ToolNameChars);

    /// <summary>Null when <paramref name="pattern"/> is a tool name with optional '*' wildcards, else why not.</summary>
    public static string? CheckToolPattern(string pattern) =>
        IsToolName(pattern.Replace("*", "x", StringComparison.Ordinal))
            ? null
            : "a tool pattern is a tool name (A-Z, a-z, 0-9, '_', '-', '.') with optional '*'";
}
