using System.Buffers;
using AgentGateway.Proxy.Policy;

namespace AgentGateway.Proxy.Inspection;

/// <summary>What an <see cref="McpServerStream"/> reports to, per stream.</summary>
internal interface IMcpServerStreamObserver
{
    /// <summary>The server asked the agent for <paramref name="method"/>, which the grant does not
    /// allow. A request was kept from the agent, and the server must be told, or it waits for an
    /// answer that never comes; an answer carrying input requests was replaced by an error.</summary>
    ValueTask RefusedAsync(ServerMessage message, string method, CancellationToken cancellationToken);

    /// <summary>The stream could not be read one way only, and ends here.</summary>
    void Broken(string why);

    /// <summary>A tool list was passed on with <paramref name="removed"/> tools the grant does not allow taken out.</summary>
    void Filtered(int removed);
}

/// <summary>
/// Sits in front of the agent's response body on an MCP server-sent event stream and lets
/// through only what policy allows (server-to-client traffic is traffic too: see the README's threat model).
/// Each event is read as a spec-following client reads it and written on in canonical form;
/// its data must be one strict JSON-RPC message. Responses to the agent's own calls and
/// notifications pass; a server request (sampling, elicitation, roots) passes only when the
/// grant lists it, else it is dropped and refused to the server; an answer whose input requests
/// (MCP 2026-07-28) ask for something the grant does not list becomes an error; a tool list loses
/// the tools the grant does not allow, when <paramref name="toolFilter"/> is given (in the same
/// pass, on the same parse). Anything that cannot be read one
/// way only — a batch, duplicate keys, an oversized event, an absolute legacy endpoint — ends the
/// stream: passing it on would let the agent act on what the gateway never judged.
/// </summary>
internal sealed class McpServerStream(Stream inner, Grant grant, int maxEventBytes, IMcpServerStreamObserver observer, IReadOnlyList<GlobPattern>? toolFilter = null)
    : ResponseFilterStream(inner)
{
    private readonly ServerSentEventReader _reader = new(maxEventBytes);
    private readonly List<ServerSentEvent> _items = [];
    private readonly ArrayBufferWriter<byte> _output = new();
    private bool _broken;

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_broken)
        {
            throw new InvalidDataException("the MCP event stream was ended by the gateway");
        }

        _items.Clear();
        _output.ResetWrittenCount();
        var within = _reader.Feed(buffer.Span, _items);
        string? why = null;
        foreach (var item in _items)
        {
            why = await JudgeAsync(item, cancellationToken);
            if (why is not null)
            {
                break;
            }
        }

        if (why is null && !within)
        {
            why = $"an event is larger than {maxEventBytes} bytes (Gateway:Policy:MaxServerEventBytes)";
        }

        // What was judged before the break still reaches the agent, in order.
        if (_output.WrittenCount > 0)
        {
            await Inner.WriteAsync(_output.WrittenMemory, cancellationToken);
        }

        if (why is not null)
        {
            _broken = true;
            observer.Broken(why);
            throw new InvalidDataException("the MCP event stream was ended by the gateway: " + why);
        }
    }

    /// <summary>Null when the item was written on or rightly dropped; else why the stream ends.</summary>
    private async ValueTask<string?> JudgeAsync(ServerSentEvent item, CancellationToken cancellationToken)
    {
        if (item.IsComment || item.Data is not { Length: > 0 } data)
        {
            // Keep-alives, and events with an id but no message (resumption priming).
            ServerSentEventReader.Write(item, _output);
            return null;
        }

        if (item.Type == "endpoint")
        {
            // The 2024-11-05 HTTP+SSE transport names where the client posts its messages. Only a
            // path on this gateway: an absolute URL would send the agent, with its own credential,
            // wherever the server chose.
            if (!IsLocalPath(data))
            {
                return "a legacy 'endpoint' event that is not a path on this gateway";
            }

            ServerSentEventReader.Write(item, _output);
            return null;
        }

        var (message, unreadable) = ServerMessage.Read(data);
        if (message is null)
        {
            return "an event that is not one strict JSON-RPC message: " + unreadable;
        }

        if (message.FirstRefused(grant) is { } asked)
        {
            // The server chose this string: only a short, plain form goes to logs, audit and answers.
            var refused = PolicyEngine.Printable(asked);
            await observer.RefusedAsync(message, refused, cancellationToken);
            if (message.Kind == ServerMessageKind.Response)
            {
                // A multi round-trip answer ends its exchange: the agent gets an error in its
                // place, and the server waits for nothing.
                ServerSentEventReader.Write(item with { Data = McpErrors.InputRefusedError(message.Id, refused) }, _output);
            }

            return null;
        }

        if (toolFilter is not null && message is { Kind: ServerMessageKind.Response, ListsTools: true })
        {
            if (ToolListFilter.Apply(data, toolFilter, out var removed) is not { } filtered)
            {
                return "a tool list whose 'tools' is not an array";
            }

            observer.Filtered(removed);
            ServerSentEventReader.Write(item with { Data = filtered }, _output);
            return null;
        }

        ServerSentEventReader.Write(item, _output);
        return null;
    }

    private static bool IsLocalPath(ReadOnlySpan<byte> data) =>
        data.Length > 0 && data[0] == (byte)'/' && (data.Length == 1 || (data[1] != (byte)'/' && data[1] != (byte)'\\'))
        && !data.ContainsAnyInRange((byte)0, (byte)0x20) && !data.Contains((byte)0x7F) && !data.Contains((byte)'\\');
}
