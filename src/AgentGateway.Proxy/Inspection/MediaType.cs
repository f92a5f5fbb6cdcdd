using System.Net.Http.Headers;

namespace AgentGateway.Proxy.Inspection;

/// <summary>A media type (RFC 9110 §8.3.1): type and subtype lower-cased, parameters with their
/// names lower-cased and their values unquoted.</summary>
public sealed record MediaType(string Type, string Subtype, IReadOnlyDictionary<string, string> Parameters)
{
    /// <summary>The media type in <paramref name="text"/>, or null when it is not exactly one
    /// media type: <c>type/subtype</c>, each a token, then any number of <c>; name=value</c>
    /// (value a token or a quoted string), optional whitespace around the semicolons, empty
    /// parameters allowed (<c>text/event-stream;</c>), a parameter named twice not (two readers
    /// could each take a different one).</summary>
    public static MediaType? Parse(ReadOnlySpan<char> text)
    {
        var rest = text.Trim(" \t");
        if (!Token(ref rest, out var type) || rest.IsEmpty || rest[0] != '/')
        {
            return null;
        }

        rest = rest[1..];
        if (!Token(ref rest, out var subtype))
        {
            return null;
        }

        var parameters = new Dictionary<string, string>(StringComparer.Ordinal);
        while (true)
        {
            rest = rest.TrimStart(" \t");
            if (rest.IsEmpty)
            {
                return new MediaType(type.ToLowerInvariant(), subtype.ToLowerInvariant(), parameters);
            }

            if (rest[0] != ';')
            {
                return null;
            }

            rest = rest[1..].TrimStart(" \t");
            if (rest.IsEmpty || rest[0] == ';')
            {
                continue;
            }

            if (!Token(ref rest, out var name) || rest.IsEmpty || rest[0] != '=')
            {
                return null;
            }

            rest = rest[1..];
            string? value;
            if (!rest.IsEmpty && rest[0] == '"')
            {
                value = Quoted(ref rest);
            }
            else
            {
                value = Token(ref rest, out var token) ? token : null;
            }

            if (value is null || !parameters.TryAdd(name.ToLowerInvariant(), value))
            {
                return null;
            }
        }
    }

    /// <summary>A token (RFC 9110 §5.6.2), taken from the front of <paramref name="rest"/>.</summary>
    private static bool Token(ref ReadOnlySpan<char> rest, out string token)
    {
        var length = 0;
        while (length < rest.Length && IsTokenChar(rest[length]))
        {
            length++;
        }

        token = rest[..length].ToString();
        rest = rest[length..];
        return length > 0;
    }

    /// <summary>A quoted string (RFC 9110 §5.6.4) without its quotes and escapes, or null.</summary>
    private static string? Quoted(ref ReadOnlySpan<char> rest)
    {
        var value = new System.Text.StringBuilder();
        for (var i = 1; i < rest.Length; i++)
        {
            var c = rest[i];
            if (c == '"')
            {
                rest = rest[(i + 1)..];
                return value.ToString();
            }

            if (c == '\\')
            {
                if (++i == rest.Length || !IsQuotedText(rest[i], escaped: true))
                {
                    return null;
                }

                c = rest[i];
            }
            else if (!IsQuotedText(c, escaped: false))
            {
                return null;
            }

            value.Append(c);
        }

        return null;
    }

    private static bool IsTokenChar(char c) => char.IsAsciiLetterOrDigit(c) || c is '!' or '#' or '$' or '%' or '&' or '\'' or '*' or '+' or '-' or '.' or '^' or '_' or '`' or '|' or '~';

    private static bool IsQuotedText(char c, bool escaped) =>
        c is '\t' or ' ' || (c is > ' ' and < (char)0x7F && (escaped || c is not ('"' or '\\'))) || c is >= (char)0x80 and <= (char)0xFF;
}

/// <summary>What an upstream's answer is, for everything that reads MCP answers on their way to the agent.</summary>
public enum AnswerKind
{
    /// <summary>No <c>Content-Type</c> at all.</summary>
    Absent,

    /// <summary><c>application/json</c> or <c>application/*+json</c>, UTF-8: one JSON-RPC message.</summary>
    Json,

    /// <summary><c>text/event-stream</c>, UTF-8: server-sent events.</summary>
    EventStream,

    /// <summary>A well-formed media type that is neither.</summary>
    Other,

    /// <summary>Not one well-formed media type (several headers, a list, a syntax error, a charset other than UTF-8).</summary>
    Unreadable,
}

/// <summary>
/// The one decision on what an upstream's answer is, made on the header as it arrived (not on
/// HttpClient's parse of it, which yields nothing for two headers or a bad one — a
/// <c>null</c> that once let every spelling the gateway did not expect through unjudged). Clients
/// read types loosely: the MCP TypeScript client looks for the substrings
/// <c>text/event-stream</c> and <c>application/json</c> in the header, case-sensitively, in that
/// order, and the Python client lower-cases it and compares prefixes; both the C# and TypeScript
/// clients read any successful answer to their <c>GET</c> as an event stream, whatever its type. So
/// the gateway parses strictly, judges what it can name, refuses what it cannot, and sends on a
/// judged answer with the canonical type, so that no client can take it for something else.
/// </summary>
public static class AnswerMediaType
{
    public const string Json = "application/json";

    public const string EventStream = "text/event-stream";

    /// <summary>The kind of answer <paramref name="headers"/> declare, and for
    /// <see cref="AnswerKind.Unreadable"/> why.</summary>
    public static (AnswerKind Kind, string? Why) Of(HttpContentHeaders? headers)
    {
        if (headers is null || !headers.NonValidated.TryGetValues("Content-Type", out var values) || values.Count == 0)
        {
            return (AnswerKind.Absent, null);
        }

        if (values.Count > 1)
        {
            return (AnswerKind.Unreadable, "more than one Content-Type header");
        }

        return Of(values.ToString());
    }

    /// <summary>The kind of answer one <c>Content-Type</c> value declares.</summary>
    public static (AnswerKind Kind, string? Why) Of(string value) =>
        // What MCP servers send nearly always, spelled exactly so: the kind the parse below gives
        // these exact strings, without building a media type for each answer.
        value switch
        {
            Json or "application/json; charset=utf-8" => (AnswerKind.Json, null),
            EventStream => (AnswerKind.EventStream, null),
            _ => Parsed(value),
        };

    /// <summary>The kind of answer <paramref name="value"/> declares, from its parse.</summary>
    internal static (AnswerKind Kind, string? Why) Parsed(string value)
    {
        if (MediaType.Parse(value) is not { } type)
        {
            return (AnswerKind.Unreadable, "a Content-Type that is not one media type");
        }

        var kind = type switch
        {
            { Type: "application", Subtype: "json" } => AnswerKind.Json,
            { Type: "application" } when type.Subtype.EndsWith("+json", StringComparison.Ordinal) => AnswerKind.Json,
            { Type: "text", Subtype: "event-stream" } => AnswerKind.EventStream,
            _ => AnswerKind.Other,
        };

        // A client that honours a charset (HttpContent.ReadAsStringAsync does) would decode bytes
        // the gateway read as UTF-8 some other way.
        if (kind != AnswerKind.Other && type.Parameters.TryGetValue("charset", out var charset)
            && !charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase) && !charset.Equals("utf8", StringComparison.OrdinalIgnoreCase))
        {
            return (AnswerKind.Unreadable, "a charset other than UTF-8");
        }

        return (kind, null);
    }
}
