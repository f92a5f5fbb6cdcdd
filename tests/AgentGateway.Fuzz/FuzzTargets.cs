using System.Collections.Frozen;
using System.Net.ServerSentEvents;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using AgentGateway.Proxy.Inspection;
using AgentGateway.Proxy.Policy;
using AgentGateway.Proxy.Stripping;
using Microsoft.AspNetCore.Http;

namespace AgentGateway.Fuzz;

/// <summary>
/// The request-inspection code under fuzzing. Each target takes arbitrary bytes and throws
/// <see cref="FuzzFindingException"/> when an invariant breaks; any other exception escaping is a finding
/// too (a crash). The invariants are differential: what the gateway decided on must be what a
/// second, independent reader sees in the same bytes.
/// </summary>
public static class FuzzTargets
{
    public const int InspectionLimit = 64 * 1024;

    public static readonly IReadOnlyDictionary<string, Action<byte[]>> All = new Dictionary<string, Action<byte[]>>(StringComparer.Ordinal)
    {
        ["mcp"] = McpBody,
        ["llm"] = LlmBody,
        ["header"] = HeaderName,
        ["path"] = PathRule,
        ["uri"] = ResourceUri,
        ["sse"] = ServerStream,
    };

    /// <summary>A JSON-RPC body on an MCP route: if the inspector accepts it, the method and target
    /// it decided on are exactly what System.Text.Json.Nodes reads, and the message has no
    /// duplicate member anywhere (a duplicate is two answers to one question).</summary>
    public static void McpBody(byte[] input)
    {
        if (Inspect(input, BodyKind.Mcp) is { } body)
        {
            CheckMcp(body, input);
        }
    }

    /// <summary>The MCP oracle alone: what was decided against what a second reader sees.</summary>
    public static void CheckMcp(InspectedBody body, byte[] input)
    {
        var root = SecondReader(input);
        if (root is not JsonObject message)
        {
            throw new FuzzFindingException("an accepted MCP body is not a JSON object to a second reader");
        }

        var method = message["method"]?.GetValue<string>();
        Same("method", body.Method, method);
        var parameters = message["params"] as JsonObject;
        var expectedTarget = method switch
        {
            "tools/call" or "prompts/get" => parameters?["name"]?.GetValue<string>(),
            "resources/read" or "resources/subscribe" or "resources/unsubscribe" => parameters?["uri"]?.GetValue<string>(),
            _ => null,
        };
        Same("target", body.Target, expectedTarget);
        if (method == "tools/call" && !McpNames.IsToolName(body.Target))
        {
            throw new FuzzFindingException("an accepted tools/call names a tool outside the MCP character set");
        }
    }

    /// <summary>A body on an LLM route: the model decided on is the model a second reader sees.</summary>
    public static void LlmBody(byte[] input)
    {
        if (Inspect(input, BodyKind.Llm) is { } body)
        {
            CheckLlm(body, input);
        }
    }

    /// <summary>The LLM oracle alone.</summary>
    public static void CheckLlm(InspectedBody body, byte[] input)
    {
        if (SecondReader(input) is not JsonObject request)
        {
            throw new FuzzFindingException("an accepted LLM body is not a JSON object to a second reader");
        }

        Same("model", body.Model, request["model"]?.GetValue<string>());
    }

    /// <summary>A header name: whether it is stripped — as a credential or as an untrusted identity,
    /// forwarding or method-override claim — cannot depend on case or on which punctuation separates
    /// its words (servers behind CGI-style gateways read <c>X_User</c>, <c>X.User</c> and <c>X-User</c>
    /// as one), and a name the gateway would inject must be recognised in every such spelling. A name
    /// that is a method-override query parameter is one in every spelling too.</summary>
    public static void HeaderName(byte[] input)
    {
        var name = Encoding.Latin1.GetString(input);
        // Only names HTTP allows (RFC 9110 token characters): Kestrel refuses any other name
        // before the gateway sees it, and only ASCII has one upper and one lower case.
        if (name.Length is 0 or > 256 || !name.All(IsTokenChar))
        {
            return;
        }

        var credential = InboundCredentials.IsCredentialHeader(name);
        var untrusted = UntrustedHeaders.IsUntrusted(name);
        var query = InboundCredentials.IsCredentialQueryParameter(name);
        var methodOverride = UntrustedHeaders.IsMethodOverrideParameter(name);
        var variants = new[]
        {
            name.ToUpperInvariant(), name.ToLowerInvariant(), name.Replace('-', '_'), name.Replace('_', '-'), name.Replace('-', '.'),
            new string([.. name.Select(c => char.IsAsciiLetterOrDigit(c) ? c : '~')]),
        };
        foreach (var variant in variants)
        {
            if (InboundCredentials.IsCredentialHeader(variant) != credential || UntrustedHeaders.IsUntrusted(variant) != untrusted)
            {
                throw new FuzzFindingException($"'{Printable(name)}' and '{Printable(variant)}' are stripped differently");
            }

            if (InboundCredentials.IsCredentialQueryParameter(variant) != query || UntrustedHeaders.IsMethodOverrideParameter(variant) != methodOverride)
            {
                throw new FuzzFindingException($"query parameters '{Printable(name)}' and '{Printable(variant)}' are stripped differently");
            }

            if (!InboundCredentials.SameHeader(variant, name) && variant.Length == name.Length)
            {
                throw new FuzzFindingException($"'{Printable(variant)}' is not recognised as the same header as '{Printable(name)}'");
            }
        }
    }

    private static bool IsTokenChar(char c) => char.IsAsciiLetterOrDigit(c) || "!#$%&'*+-.^_`|~".Contains(c, StringComparison.Ordinal);

    // Built on first use, not in the static constructor: under AFL the instrumented proxy code
    // must not run before SharpFuzz has set up the coverage map (it crashes the fork server).
    private static GlobPattern? _models;

    private static GlobPattern Models => _models ??= GlobPattern.ForPath("/v1/models/*");

    /// <summary>A forwarded path: if policy decides on it at all (it is not ambiguous) and a path
    /// rule matches it, then what a lenient upstream makes of it matches the rule too.</summary>
    public static void PathRule(byte[] input)
    {
        var path = "/v1/models/" + Encoding.UTF8.GetString(input);
        if (PolicyEngine.AmbiguousPath(path) is not null || !Models.IsMatch(path))
        {
            return;
        }

        var lenient = LenientPath.Normalise(path);
        if (!Models.IsMatch(lenient) && lenient != "/v1/models")
        {
            throw new FuzzFindingException($"'{Printable(path)}' matched /v1/models/* but a lenient upstream reads '{Printable(lenient)}'");
        }
    }

    private static GlobPattern? _documents;

    private static GlobPattern Documents => _documents ??= GlobPattern.ForUri("demo://resource/static/document/*");

    /// <summary>An MCP resource URI: if the gateway decides on it at all (it has one reading) and
    /// the resource pattern matches it, then what a lenient resolving server makes of it (decoded
    /// however many times, query and fragment cut, backslashes, dot segments and Windows-trimmed
    /// segments resolved) is still one document under the pattern's folder.</summary>
    public static void ResourceUri(byte[] input)
    {
        var uri = "demo://resource/static/document/" + Encoding.UTF8.GetString(input);
        if (Identifiers.AmbiguousUri(uri) is not null || !Documents.IsMatch(uri))
        {
            return;
        }

        var path = uri["demo://resource".Length..];
        var lenient = LenientPath.Normalise(path.Split('?', '#')[0]);
        if (lenient != "/static/document" && !(lenient.StartsWith("/static/document/", StringComparison.Ordinal) && lenient.Count(c => c == '/') == 3))
        {
            throw new FuzzFindingException($"'{Printable(uri)}' matched {Documents} but a lenient server reads '{Printable(lenient)}'");
        }
    }

    /// <summary>A grant that restricts MCP and lets the server ask for sampling only.</summary>
    private static Grant? _samplingOnly;

    private static Grant SamplingOnly => _samplingOnly ??= new(
        "fuzz", FrozenSet<string>.Empty, null, null, [GlobPattern.ForName("*")], null, null, true,
        FrozenSet.ToFrozenSet(["sampling/createMessage"], StringComparer.Ordinal), null, null, false, null, false, FrozenSet<string>.Empty);

    /// <summary>The tools the fuzzed grant lets the agent see in a tool list.</summary>
    private static IReadOnlyList<GlobPattern>? _lookupTools;

    private static IReadOnlyList<GlobPattern> LookupTools => _lookupTools ??= [GlobPattern.ForName("lookup_*")];

    /// <summary>An event stream from a hostile MCP server, under <see cref="SamplingOnly"/> with the
    /// tool list filtered to <c>lookup_*</c>: whatever the guard passes on, a real client parser
    /// (System.Net.ServerSentEvents, which the MCP C# SDK uses) with a second JSON reader finds in
    /// it no server request and no input request other than sampling and ping, no batch, no legacy
    /// endpoint off this gateway, and no tool list naming another tool. The stream is fed in three
    /// pieces, so lines and CRLFs are cut across writes.</summary>
    public static void ServerStream(byte[] input)
    {
        using var sink = new MemoryStream();
        var guard = new McpServerStream(sink, SamplingOnly, InspectionLimit, new IgnoringObserver(), LookupTools);
        try
        {
            var third = input.Length / 3;
            guard.Write(input, 0, third);
            guard.Write(input, third, third);
            guard.Write(input, 2 * third, input.Length - (2 * third));
        }
        catch (InvalidDataException)
        {
            // The guard ended the stream; what it wrote before is still judged below.
        }

        sink.Position = 0;
        foreach (var item in SseParser.Create(sink).Enumerate())
        {
            CheckServerEvent(item.EventType, item.Data);
        }
    }

    /// <summary>The server-stream oracle alone: one event as the client reads it.</summary>
    public static void CheckServerEvent(string type, string data)
    {
        if (data.Length == 0)
        {
            return;
        }

        if (type == "endpoint" && !data.StartsWith('{') && !data.StartsWith('['))
        {
            if (!data.StartsWith('/') || data.StartsWith("//", StringComparison.Ordinal) || data.Contains('\\'))
            {
                throw new FuzzFindingException($"a legacy endpoint off this gateway reached the agent: '{Printable(data)}'");
            }

            return;
        }

        var node = SecondReader(Encoding.UTF8.GetBytes(data));
        if (node is not JsonObject message)
        {
            throw new FuzzFindingException("an event that is not one JSON-RPC object reached the agent");
        }

        var method = message["method"] is JsonValue m && m.TryGetValue<string>(out var text) ? text : null;
        if (method is not null && message.ContainsKey("id") && method is not ("ping" or "sampling/createMessage"))
        {
            throw new FuzzFindingException($"a server request for '{Printable(method)}' reached the agent");
        }

        if (message["result"] is JsonObject result && result.ContainsKey("tools"))
        {
            if (result["tools"] is not JsonArray tools)
            {
                throw new FuzzFindingException("a tool list that is not an array reached the agent");
            }

            foreach (var tool in tools)
            {
                var name = tool?["name"] is JsonValue v && v.TryGetValue<string>(out var toolName) ? toolName : null;
                if (name is null || !name.StartsWith("lookup_", StringComparison.Ordinal))
                {
                    throw new FuzzFindingException($"a tool list naming '{Printable(name)}' reached the agent");
                }
            }
        }

        if (message["result"]?["inputRequests"] is JsonObject inputs)
        {
            foreach (var (_, request) in inputs)
            {
                var asked = request?["method"] is JsonValue v && v.TryGetValue<string>(out var name) ? name : null;
                if (asked is not ("ping" or "sampling/createMessage"))
                {
                    throw new FuzzFindingException($"an input request for '{Printable(asked)}' reached the agent");
                }
            }
        }
    }

    private sealed class IgnoringObserver : IMcpServerStreamObserver
    {
        public ValueTask RefusedAsync(ServerMessage message, string method, CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public void Broken(string why)
        {
        }

        public void Filtered(int removed)
        {
        }
    }

    private static InspectedBody? Inspect(byte[] input, BodyKind kind)
    {
        if (input.Length == 0)
        {
            // No body at all: nothing to decide on, and nothing forwarded but the headers.
            return null;
        }

        var context = new DefaultHttpContext();
        context.Request.Method = HttpMethods.Post;
        context.Request.ContentType = "application/json";
        context.Request.ContentLength = input.Length;
        context.Request.Body = new MemoryStream(input, writable: false);
        var (body, _) = BodyInspector.InspectAsync(context.Request, kind, InspectionLimit, secrets: null, CancellationToken.None).AsTask().GetAwaiter().GetResult();
        return body;
    }

    /// <summary>System.Text.Json.Nodes with duplicate members made an error: the second opinion.</summary>
    private static JsonNode? SecondReader(byte[] input)
    {
        try
        {
            var node = JsonNode.Parse(input, documentOptions: new JsonDocumentOptions { MaxDepth = 256 });
            CheckNoDuplicates(node);
            return node;
        }
        catch (Exception ex) when (ex is JsonException or ArgumentException or InvalidOperationException)
        {
            throw new FuzzFindingException($"the inspector accepted a body a second reader refuses: {ex.GetType().Name}");
        }
    }

    private static void CheckNoDuplicates(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject obj:
                // Enumerating materialises the object; JsonObject throws on a repeated name.
                foreach (var (_, value) in obj)
                {
                    CheckNoDuplicates(value);
                }

                break;
            case JsonArray array:
                foreach (var item in array)
                {
                    CheckNoDuplicates(item);
                }

                break;
        }
    }

    private static void Same(string what, string? decided, string? seen)
    {
        if (!string.Equals(decided, seen, StringComparison.Ordinal))
        {
            throw new FuzzFindingException($"the {what} decided on ('{Printable(decided)}') is not the {what} a second reader sees ('{Printable(seen)}')");
        }
    }

    private static string Printable(string? text) =>
        text is null ? "<none>" : new([.. text.Take(80).Select(c => char.IsControl(c) ? '?' : c)]);
}

/// <summary>An invariant of the inspection code broke on this input.</summary>
public sealed class FuzzFindingException(string message) : Exception(message);

/// <summary>What a lenient upstream might make of a path: percent-decoded until stable,
/// backslashes as slashes, matrix parameters and NULs cut, trailing dots and spaces trimmed from a
/// segment (Windows), empty and dot segments resolved.</summary>
public static class LenientPath
{
    public static string Normalise(string path)
    {
        var decoded = path;
        for (var i = 0; i < 5; i++)
        {
            // Overlong UTF-8 for '.' (%c0%ae): invalid, but old servers decode it as a dot.
            var next = Uri.UnescapeDataString(decoded.Replace("%c0%ae", ".", StringComparison.OrdinalIgnoreCase));
            if (next == decoded)
            {
                break;
            }

            decoded = next;
        }

        decoded = decoded.Replace('\\', '/');
        var segments = new List<string>();
        foreach (var raw in decoded.Split('/'))
        {
            var segment = raw.Split(';')[0].Split('\0')[0];
            if (segment.Length > 0 && segment.TrimEnd('.', ' ').Length == 0)
            {
                segment = segment.Contains("..", StringComparison.Ordinal) ? ".." : ".";
            }

            if (segment is "" or ".")
            {
                continue;
            }

            if (segment == "..")
            {
                if (segments.Count > 0)
                {
                    segments.RemoveAt(segments.Count - 1);
                }

                continue;
            }

            segments.Add(segment);
        }

        return "/" + string.Join('/', segments);
    }
}
