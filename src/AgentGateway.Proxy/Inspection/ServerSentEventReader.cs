using System.Buffers;
using System.Text;

namespace AgentGateway.Proxy.Inspection;

/// <summary>One thing a server-sent event stream carries, as a client following the HTML
/// standard reads it: a comment, or an event with the fields that client would act on.</summary>
/// <param name="IsComment">A comment line (keep-alive); no fields.</param>
/// <param name="Type">The <c>event</c> field, if sent.</param>
/// <param name="Id">The <c>id</c> field, if sent and usable (no NUL).</param>
/// <param name="Retry">The <c>retry</c> field, if sent and all ASCII digits.</param>
/// <param name="Data">The data lines joined by LF; null when the event had no <c>data</c> line.</param>
public sealed record ServerSentEvent(bool IsComment, string? Type, string? Id, string? Retry, byte[]? Data)
{
    public static readonly ServerSentEvent Comment = new(true, null, null, null, null);
}

/// <summary>
/// Reads a server-sent event stream fed in arbitrary pieces, exactly as the HTML standard's
/// parser does — CR, LF and CRLF all end a line (a CRLF split across two pieces too), one leading
/// BOM is dropped, one space after the colon is dropped, unknown fields and case variants
/// (<c>Data:</c>) are ignored, an <c>id</c> with NUL is ignored, a <c>retry</c> must be digits,
/// and an event is dispatched only at a blank line (a partial event at the end is discarded).
/// Reading the way clients read is the point: an inspector that split lines differently from
/// the client (a lone CR is the classic) would judge one event while the client acts on two.
/// </summary>
public sealed class ServerSentEventReader(int maxEventBytes)
{
    private const string MessageType = "message";

    private static ReadOnlySpan<byte> Bom => [0xEF, 0xBB, 0xBF];

    private readonly ArrayBufferWriter<byte> _line = new();
    private readonly ArrayBufferWriter<byte> _data = new();
    private bool _firstLine = true;
    private bool _afterCr;
    private bool _hasData;
    private string? _type;
    private string? _id;
    private string? _retry;
    private int _eventBytes;

    /// <summary>Reads <paramref name="bytes"/>, adding what completes to <paramref name="items"/>;
    /// false when an event (or a line) outgrew the bound, after which the stream cannot be read on.</summary>
    public bool Feed(ReadOnlySpan<byte> bytes, List<ServerSentEvent> items)
    {
        while (!bytes.IsEmpty)
        {
            if (_afterCr)
            {
                _afterCr = false;
                if (bytes[0] == (byte)'\n')
                {
                    bytes = bytes[1..];
                    continue;
                }
            }

            var end = bytes.IndexOfAny((byte)'\r', (byte)'\n');
            var part = end < 0 ? bytes : bytes[..end];
            if (_eventBytes + _line.WrittenCount + part.Length > maxEventBytes)
            {
                return false;
            }

            _line.Write(part);
            if (end < 0)
            {
                return true;
            }

            _afterCr = bytes[end] == (byte)'\r';
            bytes = bytes[(end + 1)..];
            EndLine(items);
        }

        return true;
    }

    private void EndLine(List<ServerSentEvent> items)
    {
        var line = _line.WrittenSpan;
        if (_firstLine)
        {
            _firstLine = false;
            if (line.StartsWith(Bom))
            {
                line = line[Bom.Length..];
            }
        }

        if (line.IsEmpty)
        {
            Dispatch(items);
        }
        else if (line[0] == (byte)':')
        {
            // Passed on at once and not kept: keep-alives never count toward an event's size.
            items.Add(ServerSentEvent.Comment);
        }
        else
        {
            _eventBytes += line.Length + 1;
            var colon = line.IndexOf((byte)':');
            var field = colon < 0 ? line : line[..colon];
            var value = colon < 0 ? [] : line[(colon + 1)..];
            if (!value.IsEmpty && value[0] == (byte)' ')
            {
                value = value[1..];
            }

            if (field.SequenceEqual("data"u8))
            {
                if (_hasData)
                {
                    _data.Write("\n"u8);
                }

                _data.Write(value);
                _hasData = true;
            }
            else if (field.SequenceEqual("event"u8))
            {
                // The type MCP servers name every event with: one string, not one per event.
                _type = value.SequenceEqual("message"u8) ? MessageType : Encoding.UTF8.GetString(value);
            }
            else if (field.SequenceEqual("id"u8))
            {
                if (!value.Contains((byte)0))
                {
                    _id = Encoding.UTF8.GetString(value);
                }
            }
            else if (field.SequenceEqual("retry"u8))
            {
                if (!value.IsEmpty && !value.ContainsAnyExceptInRange((byte)'0', (byte)'9'))
                {
                    _retry = Encoding.UTF8.GetString(value);
                }
            }
        }

        _line.ResetWrittenCount();
    }

    private void Dispatch(List<ServerSentEvent> items)
    {
        if (_hasData || _id is not null || _retry is not null)
        {
            items.Add(new ServerSentEvent(false, _type, _id, _retry, _hasData ? _data.WrittenSpan.ToArray() : null));
        }

        _data.ResetWrittenCount();
        _hasData = false;
        _type = null;
        _id = null;
        _retry = null;
        _eventBytes = 0;
    }

    /// <summary>The event in canonical form: only the fields a client reads, LF line ends, one
    /// space after each colon. What the agent receives is then exactly what was judged.</summary>
    public static void Write(ServerSentEvent item, IBufferWriter<byte> output)
    {
        if (item.IsComment)
        {
            output.Write(":\n"u8);
            return;
        }

        Field(output, "event: "u8, item.Type);
        Field(output, "id: "u8, item.Id);
        Field(output, "retry: "u8, item.Retry);
        if (item.Data is { } data)
        {
            var rest = data.AsSpan();
            while (true)
            {
                var end = rest.IndexOf((byte)'\n');
                output.Write("data: "u8);
                output.Write(end < 0 ? rest : rest[..end]);
                output.Write("\n"u8);
                if (end < 0)
                {
                    break;
                }

                rest = rest[(end + 1)..];
            }
        }

        output.Write("\n"u8);
    }

    private static void Field(IBufferWriter<byte> output, ReadOnlySpan<byte> name, string? value)
    {
        if (value is null)
        {
            return;
        }

        output.Write(name);
        // Encoded straight into the output: no array per field.
        output.Advance(Encoding.UTF8.GetBytes(value, output.GetSpan(Encoding.UTF8.GetMaxByteCount(value.Length))));
        output.Write("\n"u8);
    }
}
