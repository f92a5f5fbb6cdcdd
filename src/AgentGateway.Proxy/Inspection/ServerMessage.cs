using System.Text.Json;
using AgentGateway.Proxy.Policy;

namespace AgentGateway.Proxy.Inspection;

/// <summary>What one JSON-RPC message from an MCP server is.</summary>
public enum ServerMessageKind
{
    /// <summary>The server asks the client something (sampling, elicitation, roots, ping): it has a method and an id.</summary>
    Request,

    /// <summary>A method without an id (progress, logging, list changes): nothing is asked of the client.</summary>
    Notification,

    /// <summary>The answer to one of the client's own requests.</summary>
    Response,
}

/// <summary>
/// A message an MCP server sent on a stream, read as strictly as the gateway reads the agent's
/// bodies (the README's threat model: server-to-client traffic is traffic too): one JSON-RPC 2.0 object, strict UTF-8 JSON without duplicate keys,
/// well-typed id and method. A message that a lenient client might read differently from the
/// gateway is not classified at all, so it can never be passed on as something it is not.
/// </summary>
/// <param name="Kind">Request, notification or response.</param>
/// <param name="Method">The JSON-RPC method (requests and notifications).</param>
/// <param name="Id">The id as JSON text (requests and responses), for answering in the client's place.</param>
/// <param name="InputRequests">A response's <c>result.inputRequests</c> methods (MCP 2026-07-28 multi
/// round-trip requests: the server's questions to the client travel inside its answer).</param>
/// <param name="ListsTools">A response whose result carries <c>tools</c>: a tool list.</param>
public sealed record ServerMessage(ServerMessageKind Kind, string? Method, string? Id, IReadOnlyList<string>? InputRequests = null, bool ListsTools = false)
{
    /// <summary>The requests MCP lets a server send a client (2025-11-25): what a grant's <c>Mcp:ServerRequests</c> may list.</summary>
    public static readonly IReadOnlySet<string> KnownServerRequests = new HashSet<string>(StringComparer.Ordinal)
    {
        "ping", "sampling/createMessage", "elicitation/create", "roots/list", "tasks/get", "tasks/result", "tasks/list", "tasks/cancel",
    };

    /// <summary>The message in <paramref name="json"/>, or null and why it cannot be read one way only.</summary>
    public static (ServerMessage? Message, string? Why) Read(ReadOnlyMemory<byte> json)
    {
        using var document = BodyInspector.ParseStrict(json, secrets: null, out var notStrict, out _);
        if (document is null)
        {
            return (null, notStrict!.Replace("the body", "the message", StringComparison.Ordinal));
        }

        var root = document.RootElement;
        if (BodyInspector.CheckEnvelope(root) is { } notOneMessage)
        {
            return (null, notOneMessage);
        }

        var hasId = root.TryGetProperty("id", out var id);

        if (root.TryGetProperty("method", out var method))
        {
            if (method.ValueKind != JsonValueKind.String || method.GetString() is not { Length: > 0 } name)
            {
                return (null, "'method' is not a non-empty string");
            }

            if (root.TryGetProperty("result", out _) || root.TryGetProperty("error", out _))
            {
                return (null, "both a request and a response");
            }

            return hasId
                ? (new ServerMessage(ServerMessageKind.Request, name, id.GetRawText()), null)
                : (new ServerMessage(ServerMessageKind.Notification, name, null), null);
        }

        var hasResult = root.TryGetProperty("result", out var result);
        if (hasId && (hasResult ^ root.TryGetProperty("error", out _)))
        {
            var listsTools = hasResult && result.ValueKind == JsonValueKind.Object && result.TryGetProperty("tools", out _);
            if (hasResult && result.ValueKind == JsonValueKind.Object && result.TryGetProperty("inputRequests", out var inputs))
            {
                // Judged whatever resultType says: a client that acts on inputRequests without
                // checking it would otherwise be asked things no policy saw.
                var (methods, why) = ReadInputRequests(inputs);
                return methods is null ? (null, why) : (new ServerMessage(ServerMessageKind.Response, null, id.GetRawText(), methods, listsTools), null);
            }

            return (new ServerMessage(ServerMessageKind.Response, null, id.GetRawText(), ListsTools: listsTools), null);
        }

        return (null, "neither a request, a notification nor a response");
    }

    /// <summary>The method of the first thing this message asks of the client that
    /// <paramref name="grant"/> refuses: a server request's method, or one of a response's input requests.</summary>
    public string? FirstRefused(Grant grant)
    {
        switch (Kind)
        {
            case ServerMessageKind.Request when !grant.AllowsServerRequest(Method!):
                return Method;
            case ServerMessageKind.Response when InputRequests is not null:
                foreach (var method in InputRequests)
                {
                    if (!grant.AllowsServerRequest(method))
                    {
                        return method;
                    }
                }

                break;
        }

        return null;
    }

    private static (IReadOnlyList<string>? Methods, string? Why) ReadInputRequests(JsonElement inputs)
    {
        if (inputs.ValueKind != JsonValueKind.Object)
        {
            return (null, "'result.inputRequests' is not an object of named requests");
        }

        var methods = new List<string>();
        foreach (var input in inputs.EnumerateObject())
        {
            if (input.Value.ValueKind != JsonValueKind.Object || !input.Value.TryGetProperty("method", out var method)
                || method.ValueKind != JsonValueKind.String || method.GetString() is not { Length: > 0 } name)
            {
                return (null, $"input request '{PolicyEngine.Printable(input.Name)}' has no method");
            }

            methods.Add(name);
        }

        return (methods, null);
    }
}
