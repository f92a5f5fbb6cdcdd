using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using AgentGateway.Proxy.Problems;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Net.Http.Headers;

namespace AgentGateway.Proxy.Inspection;

/// <summary>
/// Reads and parses MCP and LLM request bodies so that the policy decision and the upstream can
/// never disagree about what is being called. The body is read whole, up to the
/// limit, and parsed with the strictest reading: one encoding (UTF-8, no BOM, no content coding),
/// no duplicate keys at any depth, no comments or trailing commas, bounded depth, one JSON-RPC
/// message (no batches), well-typed ids and names. Anything a lenient parser might read otherwise
/// is refused rather than interpreted. The buffered bytes then replace the request body, so the
/// bytes forwarded are exactly the bytes decided on.
/// </summary>
public static class BodyInspector
{
    private const int MaxDepth = 64;

    /// <summary>JSON-RPC methods an MCP client sends (2025-06-18, and the 2026-07-28 revision's
    /// <c>server/discover</c> and <c>subscriptions/listen</c>). Anything else is refused where a grant restricts MCP.</summary>
    public static readonly IReadOnlySet<string> KnownMcpMethods = new HashSet<string>(StringComparer.Ordinal)
    {
        "initialize", "server/discover", "ping", "tools/list", "tools/call", "prompts/list", "prompts/get", "resources/list",
        "resources/templates/list", "resources/read", "resources/subscribe", "resources/unsubscribe", "subscriptions/listen",
        "completion/complete", "logging/setLevel",
    };

    /// <summary>The known methods as UTF-8, the calls first, to take a message's method from this
    /// set instead of decoding a new string per message.</summary>
    private static readonly (byte[] Utf8, string Name)[] KnownMethodNames =
        [.. KnownMcpMethods.OrderBy(m => m is "tools/call" or "prompts/get" or "resources/read" ? 0 : 1).Select(m => (Encoding.UTF8.GetBytes(m), m))];

    /// <summary>The strictest reading: no comments, no trailing commas (the defaults), bounded depth,
    /// and no key twice in one object, compared decoded (<c>"na\u006de"</c> and <c>"name"</c> are the
    /// same key to any parser).</summary>
    private static readonly JsonDocumentOptions DocumentOptions = new()
    {
        CommentHandling = JsonCommentHandling.Disallow,
        AllowTrailingCommas = false,
        AllowDuplicateProperties = false,
        MaxDepth = MaxDepth,
    };

    /// <summary>Reads, checks and parses the body; on success the request body is the buffered copy.
    /// Whether there is a body is the server's judgement, not the headers': an HTTP/2 or HTTP/3
    /// request streams one without any length, and every body that can follow is read and decided
    /// on, whatever the method. A request with nothing after its headers (an MCP GET stream, the
    /// DELETE of a session, a model list) is bodiless and decided by method and path.</summary>
    /// <param name="secrets">What the body may not hold (the gateway's secrets): searched for in the
    /// raw text and in every decoded string and name, as the strict check reads them — the body is
    /// not parsed again for it.</param>
    public static async ValueTask<(InspectedBody? Body, Refusal Refusal)> InspectAsync(
        HttpRequest request, BodyKind kind, int limit, ISecretSearch? secrets, CancellationToken cancellationToken)
    {
        if (!CanHaveBody(request.HttpContext))
        {
            return Bodiless(request, kind);
        }

        if (request.ContentLength > limit)
        {
            return (null, Refusal.BodyTooLarge($"inspected bodies are limited to {limit} bytes"));
        }

        // Read before anything else is judged: an empty body (a stream ended with an empty frame)
        // is no body, whatever headers came with it.
        var (bytes, tooLarge) = await ReadAsync(request.Body, request.ContentLength, limit, cancellationToken);
        if (tooLarge)
        {
            return (null, Refusal.BodyTooLarge($"inspected bodies are limited to {limit} bytes"));
        }

        if (bytes.IsEmpty)
        {
            Forward(request, bytes);
            return Bodiless(request, kind);
        }

        if (HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method) || HttpMethods.IsDelete(request.Method) || HttpMethods.IsOptions(request.Method))
        {
            return Refuse($"a {request.Method} request with a body is not inspected here, so it is not forwarded");
        }

        if (request.Headers.ContentEncoding.Count > 0 && !string.Equals(request.Headers.ContentEncoding.ToString(), "identity", StringComparison.OrdinalIgnoreCase))
        {
            return Refuse("encoded (compressed) bodies are not inspected, so they are not forwarded");
        }

        if (!IsJsonUtf8(request.ContentType))
        {
            return Refuse("the body must be 'application/json' (UTF-8)");
        }

        using var document = ParseStrict(bytes, secrets, out var notStrict, out var holdsSecret);
        if (document is null)
        {
            return Refuse(notStrict!);
        }

        var (body, why) = kind == BodyKind.Mcp ? ReadMcp(document.RootElement, request, bytes) : ReadLlm(document.RootElement, bytes);
        if (body is null)
        {
            return Refuse(why!);
        }

        if (holdsSecret || (secrets is not null && RawTextHolds(bytes.Span, secrets)))
        {
            return (null, Refusal.SecretInRequest("the body"));
        }

        Forward(request, bytes);
        return (body, default);
    }

    /// <summary>The forwarder sends exactly these bytes, and no more, framed by their length.</summary>
    private static void Forward(HttpRequest request, ReadOnlyMemory<byte> bytes)
    {
        request.Body = MemoryMarshal.TryGetArray(bytes, out var array)
            ? new MemoryStream(array.Array!, array.Offset, array.Count, writable: false)
            : new MemoryStream(bytes.ToArray(), writable: false);
        request.ContentLength = bytes.Length;
        request.Headers.TransferEncoding = default;
    }

    private static (InspectedBody?, Refusal) Refuse(string detail) => (null, Refusal.BadRequest(detail));

    /// <summary>A request without a body. On MCP, a header that restates a body's method or target
    /// (<c>Mcp-Method</c>, <c>Mcp-Name</c>, in every spelling an upstream folds to them) would
    /// describe a call no policy decided on, to whatever routes or authorises on the header.</summary>
    private static (InspectedBody?, Refusal) Bodiless(HttpRequest request, BodyKind kind)
    {
        return kind == BodyKind.Mcp && RestatesACall(request)
            ? Refuse("an Mcp-Method or Mcp-Name header on a request without a body restates a call the gateway did not see")
            : (InspectedBody.Empty(kind), default);
    }

    /// <summary>Whether the request carries <c>Mcp-Method</c> or <c>Mcp-Name</c> in any spelling an
    /// upstream folds to them.</summary>
    private static bool RestatesACall(HttpRequest request)
    {
        foreach (var (name, _) in request.Headers)
        {
            if (Stripping.NamePatterns.SameName(name, "Mcp-Method") || Stripping.NamePatterns.SameName(name, "Mcp-Name"))
            {
                return true;
            }
        }

        return false;
    }

    private static bool IsJsonUtf8(string? contentType)
    {
        if (string.Equals(contentType, "application/json", StringComparison.OrdinalIgnoreCase)
            || string.Equals(contentType, "application/json; charset=utf-8", StringComparison.OrdinalIgnoreCase))
        {
            // What clients send nearly always: nothing to parse.
            return true;
        }

        if (!MediaTypeHeaderValue.TryParse(contentType, out var media) || !media.MediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        foreach (var parameter in media.Parameters)
        {
            if (!parameter.Name.Equals("charset", StringComparison.OrdinalIgnoreCase)
                || !parameter.Value.Equals("utf-8", StringComparison.OrdinalIgnoreCase))
            {
                return false;
            }
        }

        return true;
    }

    private static async ValueTask<(ReadOnlyMemory<byte> Bytes, bool TooLarge)> ReadAsync(Stream body, long? declared, int limit, CancellationToken cancellationToken)
    {
        // Sized by the declared length when there is one (plus a byte, to see a body longer than
        // declared end), else grown by doubling; one array, which then becomes the forwarded body.
        var buffer = new byte[(int)Math.Min(limit + 1L, declared is { } length ? length + 1 : 4096)];
        var count = 0;
        while (true)
        {
            if (count == buffer.Length)
            {
                Array.Resize(ref buffer, (int)Math.Min(limit + 1L, buffer.Length * 2L));
            }

            var read = await body.ReadAsync(buffer.AsMemory(count), cancellationToken);
            if (read == 0)
            {
                return (buffer.AsMemory(0, count), false);
            }

            count += read;
            if (count > limit)
            {
                return (default, true);
            }
        }
    }

    /// <summary>Whether the body's raw text holds a secret (one written across JSON's own
    /// characters, say), decoded into a pooled buffer rather than a string.</summary>
    private static bool RawTextHolds(ReadOnlySpan<byte> utf8, ISecretSearch secrets)
    {
        var chars = System.Buffers.ArrayPool<char>.Shared.Rent(Encoding.UTF8.GetMaxCharCount(utf8.Length));
        try
        {
            var count = Encoding.UTF8.GetChars(utf8, chars);
            return secrets.IsIn(chars.AsSpan(0, count));
        }
        finally
        {
            System.Buffers.ArrayPool<char>.Shared.Return(chars);
        }
    }

    /// <summary>
    /// The body parsed once, with the strictest reading, or null and <paramref name="why"/> not:
    /// no byte-order mark, valid UTF-8 throughout, one strict JSON value (<see cref="DocumentOptions"/>),
    /// every escaped string and name valid Unicode once decoded. Whether it holds one of
    /// <paramref name="secrets"/> is decided on what a parser reads: the raw text holds every string
    /// and name written without escapes as it is (the caller searches it), and those written with
    /// escapes are decoded and searched here — the body has no other reading.
    /// </summary>
    internal static JsonDocument? ParseStrict(ReadOnlyMemory<byte> json, ISecretSearch? secrets, out string? why, out bool holdsSecret)
    {
        holdsSecret = false;
        if (json.Span.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]))
        {
            why = "the body starts with a byte-order mark";
            return null;
        }

        // The parser leaves the bytes of strings undecoded until they are read; checked here for all of them.
        if (!System.Text.Unicode.Utf8.IsValid(json.Span))
        {
            why = "the body is not valid UTF-8";
            return null;
        }

        JsonDocument? document = null;
        try
        {
            document = JsonDocument.Parse(json, DocumentOptions);
            // Without a backslash there is no escape: every string and name is its raw text.
            if (json.Span.Contains((byte)'\\'))
            {
                holdsSecret = EscapedHold(document.RootElement, secrets);
            }

            why = null;
            return document;
        }
        catch (JsonException)
        {
            why = "the body is not strict JSON (no duplicate keys, comments or trailing commas; depth at most 64)";
        }
        catch (InvalidOperationException)
        {
            why = "the body has a string that is not valid Unicode";
        }

        document?.Dispose();
        return null;
    }

    /// <summary>Decodes every escaped string and name under <paramref name="element"/> (throwing
    /// <see cref="InvalidOperationException"/> for one that is not valid Unicode, a lone surrogate
    /// say), and whether one of them holds a secret. Each is decoded whatever an earlier one held,
    /// so a malformed body is refused as such.</summary>
    private static bool EscapedHold(JsonElement element, ISecretSearch? secrets)
    {
        var holds = false;
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                {
                    if (JsonMarshal.GetRawUtf8PropertyName(property).Contains((byte)'\\'))
                    {
                        var name = property.Name;
                        holds |= secrets is not null && secrets.IsIn(name);
                    }

                    holds |= EscapedHold(property.Value, secrets);
                }

                break;
            case JsonValueKind.Array:
                foreach (var item in element.EnumerateArray())
                {
                    holds |= EscapedHold(item, secrets);
                }

                break;
            case JsonValueKind.String when JsonMarshal.GetRawUtf8Value(element).Contains((byte)'\\'):
                var text = element.GetString()!;
                holds = secrets is not null && secrets.IsIn(text);
                break;
        }

        return holds;
    }

    private static (InspectedBody?, string?) ReadMcp(JsonElement root, HttpRequest request, ReadOnlyMemory<byte> bytes)
    {
        if (CheckEnvelope(root) is { } notOneMessage)
        {
            return (null, notOneMessage);
        }

        var hasId = root.TryGetProperty("id", out var id);

        if (!root.TryGetProperty("method", out var methodElement))
        {
            // A response from the client to a server request (sampling, elicitation, roots).
            var isResponse = hasId
                && (root.TryGetProperty("result", out _) ^ root.TryGetProperty("error", out _));
            if (!isResponse)
            {
                return (null, "a JSON-RPC message without 'method' must be a response with 'id' and one of 'result' or 'error'");
            }

            // A response calls nothing: a header restating a call describes one no policy saw.
            return RestatesACall(request)
                ? (null, "an Mcp-Method or Mcp-Name header on a response restates a call the gateway did not see")
                : (new InspectedBody(BodyKind.Mcp, null, null, null, bytes), null);
        }

        if (methodElement.ValueKind != JsonValueKind.String || MethodName(methodElement) is not { Length: > 0 } method)
        {
            return (null, "'method' must be a non-empty string");
        }

        string? target = null;
        (string, string)? completionRef = null;
        var hasParams = root.TryGetProperty("params", out var parameters);
        if (hasParams && parameters.ValueKind != JsonValueKind.Object)
        {
            return (null, "'params' must be an object");
        }

        switch (method)
        {
            case "tools/call" or "prompts/get":
                if (!hasParams || !parameters.TryGetProperty("name", out var name) || name.ValueKind != JsonValueKind.String)
                {
                    return (null, $"{method} needs a string 'params.name'");
                }

                target = name.GetString();
                if (method == "tools/call" && !McpNames.IsToolName(target))
                {
                    return (null, "the tool name is outside the MCP character set (A-Z, a-z, 0-9, '_', '-', '.'; 1-128)");
                }

                if (target!.Length == 0 || HasControl(target))
                {
                    return (null, "the prompt name is empty or has control characters");
                }

                break;
            case "resources/read" or "resources/subscribe" or "resources/unsubscribe":
                if (!hasParams || !parameters.TryGetProperty("uri", out var uri) || uri.ValueKind != JsonValueKind.String
                    || uri.GetString() is not { Length: > 0 } text || HasControl(text))
                {
                    return (null, $"{method} needs a non-empty 'params.uri' without control characters");
                }

                target = text;
                break;
            case "completion/complete":
                // What it completes arguments of: a prompt by name, or a resource template by URI.
                if (hasParams && parameters.TryGetProperty("ref", out var reference) && reference.ValueKind == JsonValueKind.Object
                    && reference.TryGetProperty("type", out var type) && type.ValueKind == JsonValueKind.String
                    && type.GetString() is "ref/prompt" or "ref/resource" && reference.TryGetProperty(type.GetString() == "ref/prompt" ? "name" : "uri", out var named)
                    && named.ValueKind == JsonValueKind.String && named.GetString() is { Length: > 0 } refName && !HasControl(refName))
                {
                    completionRef = (type.GetString()!, refName);
                }

                break;
        }

        // Headers that restate the body must agree with it, or the two readers of the request differ:
        // in every spelling an upstream folds to the same name (Mcp_Method is Mcp-Method to WSGI).
        foreach (var (name, value) in request.Headers)
        {
            if (Stripping.NamePatterns.SameName(name, "Mcp-Method") && value.ToString() != method)
            {
                return (null, "the Mcp-Method header disagrees with the body");
            }

            if (Stripping.NamePatterns.SameName(name, "Mcp-Name") && value.ToString() != target)
            {
                return (null, "the Mcp-Name header disagrees with the body");
            }
        }

        return (new InspectedBody(BodyKind.Mcp, method, target, null, bytes, hasId ? id.GetRawText() : null) { CompletionRef = completionRef }, null);
    }

    /// <summary>The string <paramref name="method"/> holds: a known method's own string when it is
    /// one (compared decoded, so an escaped spelling is the same method), else a new one.</summary>
    private static string MethodName(JsonElement method)
    {
        foreach (var (utf8, name) in KnownMethodNames)
        {
            if (method.ValueEquals(utf8))
            {
                return name;
            }
        }

        return method.GetString()!;
    }

    /// <summary>Whether <paramref name="text"/> has a control character (<see cref="char.IsControl(char)"/>: C0, DEL, C1).</summary>
    private static bool HasControl(string text) =>
        text.AsSpan().ContainsAnyInRange('\u0000', '\u001F') || text.AsSpan().ContainsAnyInRange('\u007F', '\u009F');

    /// <summary>Why <paramref name="root"/> is not one JSON-RPC 2.0 message, or null. The agent's
    /// messages and the server's are held to the same envelope: one object (never a batch, so
    /// each message is decided on alone), <c>"jsonrpc": "2.0"</c>, and an id, when present, that
    /// is a string or an integer.</summary>
    internal static string? CheckEnvelope(JsonElement root)
    {
        if (root.ValueKind == JsonValueKind.Array)
        {
            return "a JSON-RPC batch; each message must be decided on alone";
        }

        if (root.ValueKind != JsonValueKind.Object)
        {
            return "a JSON-RPC message is an object";
        }

        if (!root.TryGetProperty("jsonrpc", out var version) || version.ValueKind != JsonValueKind.String || version.GetString() != "2.0")
        {
            return "'jsonrpc' must be \"2.0\"";
        }

        return root.TryGetProperty("id", out var id) && !IsValidId(id) ? "'id' must be a string or an integer" : null;
    }

    private static bool IsValidId(JsonElement id) =>
        id.ValueKind == JsonValueKind.String || (id.ValueKind == JsonValueKind.Number && id.TryGetInt64(out _));

    private static (InspectedBody?, string?) ReadLlm(JsonElement root, ReadOnlyMemory<byte> bytes)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            return (null, "an LLM request body is a JSON object");
        }

        // Every place a provider reads a model from: the request's own (OpenAI, Anthropic, Azure's
        // v1 API: "model"; Bedrock: "modelId"), and each entry of a batch (Gemini's
        // batchEmbedContents: requests[].model; Anthropic's message batches: requests[].params.model).
        var models = new List<(string, string)>();
        foreach (var field in new[] { "model", "modelId" })
        {
            if (ReadModel(root, field, field, models) is { } why)
            {
                return (null, why);
            }
        }

        if (root.TryGetProperty("requests", out var requests) && requests.ValueKind == JsonValueKind.Array)
        {
            var i = 0;
            foreach (var entry in requests.EnumerateArray())
            {
                if (entry.ValueKind == JsonValueKind.Object
                    && (ReadModel(entry, "model", $"requests[{i}].model", models)
                        ?? (entry.TryGetProperty("params", out var parameters) && parameters.ValueKind == JsonValueKind.Object
                            ? ReadModel(parameters, "model", $"requests[{i}].params.model", models)
                            : null)) is { } why)
                {
                    return (null, why);
                }

                i++;
            }
        }

        var model = models is [("model", var top), ..] ? top : null;
        return (new InspectedBody(BodyKind.Llm, null, null, model, bytes) { Models = models }, null);
    }

    private static string? ReadModel(JsonElement owner, string property, string field, List<(string, string)> models)
    {
        if (!owner.TryGetProperty(property, out var element))
        {
            return null;
        }

        if (element.ValueKind != JsonValueKind.String || element.GetString() is not { Length: > 0 } text || HasControl(text))
        {
            return $"'{field}' must be a non-empty string without control characters";
        }

        models.Add((field, text));
        return null;
    }

    /// <summary>Whether a body can follow the request's headers, in the server's own judgement (HTTP/1.1:
    /// a length or chunks; HTTP/2 and 3: the stream was not ended with the headers, with or without a
    /// length). Unknown, it can: reading an empty body costs nothing, missing one costs everything.</summary>
    internal static bool CanHaveBody(HttpContext context) =>
        context.Features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody ?? true;
}

/// <summary>What a body may not hold, searched for while it is read (the gateway's secrets).</summary>
public interface ISecretSearch
{
    bool IsIn(ReadOnlySpan<char> text);
}
