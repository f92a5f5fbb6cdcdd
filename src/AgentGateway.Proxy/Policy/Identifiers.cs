using System.Buffers;
using System.Globalization;
using System.Text;

namespace AgentGateway.Proxy.Policy;

/// <summary>
/// One rule for every identifier that names something a grant allows — the forwarded HTTP path,
/// an MCP resource URI or resource template, a prompt name, a model name: it is decided on only
/// if it has one reading. The gateway's glob and the upstream's resolver can disagree at the same
/// places whatever the identifier — dot segments (and what Windows trims to one), empty segments,
/// backslashes, matrix parameters, percent-encodings a resolver may decode, control and invisible
/// characters, characters that Unicode normalisation turns into a delimiter — so these are refused,
/// never interpreted. Outside ASCII only letters, marks and digits are read. Each method answers null when the identifier has one reading, else why not.
/// </summary>
public static class Identifiers
{
    /// <summary>Characters a URI may carry raw (RFC 3986 unreserved and reserved, and '%' to start an encoding).</summary>
    private static readonly SearchValues<char> UriCharacters = SearchValues.Create("-._~:/?#[]@!$&'()*+,;=%");

    /// <summary>ASCII characters a resource URI may carry percent-encoded: those that are no
    /// delimiter to any reader once decoded. An encoded unreserved character (<c>%2E</c>) is the
    /// character itself to an RFC 3986 normaliser; an encoded delimiter (<c>%2F</c>, <c>%3F</c>,
    /// <c>%26</c>, <c>%3D</c>, <c>%3B</c>, <c>%40</c>, <c>%3A</c>, <c>%5C</c>) is a delimiter to a
    /// resolver that decodes first; <c>%25</c> is a second layer of encoding.</summary>
    private static readonly SearchValues<char> InertEncoded = SearchValues.Create(" \"<>^`{|}!$'(),[]");

    private static readonly SearchValues<char> SchemeCharacters =
        SearchValues.Create("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-");

    private static readonly SearchValues<char> ModelCharacters =
        SearchValues.Create("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:@/+-");

    private static readonly SearchValues<char> TemplateNameCharacters =
        SearchValues.Create("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.,:*");

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The forwarded HTTP path (already percent-decoded by the server, which keeps only
    /// <c>%2F</c> encoded). A trailing '/' is the one empty segment allowed.</summary>
    public static string? AmbiguousPath(string path)
    {
        if (path.Length == 0 || path == "/")
        {
            return null;
        }

        if (path[0] != '/')
        {
            return "a path that does not start with '/'";
        }

        return AmbiguousSegments(path.AsSpan(1), trailingSlash: true);
    }

    /// <summary>
    /// An MCP resource URI (<paramref name="template"/>: an RFC 6570 resource template, whose
    /// <c>{…}</c> expressions are read as one plain segment character). Absolute (<c>scheme:</c>),
    /// no fragment, no userinfo and nothing encoded or non-ASCII in the authority; raw only the
    /// characters RFC 3986 allows (and non-ASCII text outside the authority); percent-encoded only
    /// what no reader takes for a delimiter, and valid UTF-8; then every path segment, decoded,
    /// under the path rule.
    /// </summary>
    public static string? AmbiguousUri(string uri, bool template = false)
    {
        if (uri.Length == 0)
        {
            return "an empty URI";
        }

        if (template)
        {
            var (expanded, why) = ReadTemplate(uri);
            if (why is not null)
            {
                return why;
            }

            uri = expanded!;
        }

        var colon = uri.IndexOf(':', StringComparison.Ordinal);
        if (colon < 1 || !char.IsAsciiLetter(uri[0]) || uri.AsSpan(1, colon - 1).ContainsAnyExcept(SchemeCharacters))
        {
            return "not an absolute URI (scheme:…)";
        }

        foreach (var c in uri)
        {
            if (c < 0x80 && !char.IsAsciiLetterOrDigit(c) && !UriCharacters.Contains(c))
            {
                return char.IsControl(c) ? "a control character" : $"'{(c == ' ' ? "space" : c.ToString())}' raw (a URI carries it only percent-encoded)";
            }
        }

        if (uri.Contains('#', StringComparison.Ordinal))
        {
            return "a fragment ('#')";
        }

        var rest = uri.AsSpan(colon + 1);
        var queryAt = rest.IndexOf('?');
        var hierarchy = queryAt < 0 ? rest : rest[..queryAt];
        var path = hierarchy;
        if (hierarchy.StartsWith("//", StringComparison.Ordinal))
        {
            var authority = hierarchy[2..];
            var end = authority.IndexOf('/');
            path = end < 0 ? [] : authority[end..];
            authority = end < 0 ? authority : authority[..end];
            if (authority.Contains('@'))
            {
                return "userinfo ('@' in the authority)";
            }

            if (authority.Contains('%') || !Ascii.IsValid(authority))
            {
                return "an encoded or non-ASCII authority (hosts are normalised by IDNA)";
            }
        }

        if (Decode(path, out var decodedPath) is { } badPath)
        {
            return badPath;
        }

        if (decodedPath.Length > 0 && AmbiguousSegments(decodedPath[0] == '/' ? decodedPath.AsSpan(1) : decodedPath, trailingSlash: true) is { } segment)
        {
            return segment;
        }

        if (queryAt < 0)
        {
            return null;
        }

        if (Decode(rest[(queryAt + 1)..], out var query) is { } badQuery)
        {
            return badQuery;
        }

        foreach (var rune in query.EnumerateRunes())
        {
            if (AmbiguousCharacter(rune) is { } why)
            {
                return why;
            }
        }

        return null;
    }

    /// <summary>A prompt name (or any other plain name a server may look up as a file or a URL):
    /// '/'-separated segments under the path rule, no URI delimiter, no surrounding space.</summary>
    public static string? AmbiguousName(string name)
    {
        if (name.Length == 0)
        {
            return "an empty name";
        }

        if (char.IsWhiteSpace(name[0]) || char.IsWhiteSpace(name[^1]))
        {
            return "leading or trailing space (a server that trims reads another name)";
        }

        if (name.AsSpan().IndexOfAny('?', '#') >= 0)
        {
            return "a URI delimiter ('?' or '#')";
        }

        return AmbiguousSegments(name, trailingSlash: false);
    }

    /// <summary>A model name, from a body, a path or a query: 1–256 of A–Z, a–z, 0–9 and
    /// <c>. _ : @ / + -</c>, in '/'-separated segments none of which is empty or only dots.</summary>
    public static string? AmbiguousModel(string model)
    {
        if (model.Length is 0 or > 256 || model.AsSpan().ContainsAnyExcept(ModelCharacters))
        {
            return "a model name outside 1-256 of A-Z, a-z, 0-9 and . _ : @ / + -";
        }

        return AmbiguousSegments(model, trailingSlash: false);
    }

    /// <summary>'/'-separated segments, each decoded: none empty (except a trailing one when
    /// <paramref name="trailingSlash"/>), none under <see cref="AmbiguousSegment"/>.</summary>
    private static string? AmbiguousSegments(ReadOnlySpan<char> segments, bool trailingSlash)
    {
        while (true)
        {
            var slash = segments.IndexOf('/');
            var segment = slash < 0 ? segments : segments[..slash];
            if (segment.IsEmpty)
            {
                if (slash < 0 && trailingSlash)
                {
                    return null;
                }

                return "an empty segment";
            }

            if (AmbiguousSegment(segment) is { } why)
            {
                return why;
            }

            if (slash < 0)
            {
                return null;
            }

            segments = segments[(slash + 1)..];
        }
    }

    /// <summary>One decoded segment.</summary>
    private static string? AmbiguousSegment(ReadOnlySpan<char> segment)
    {
        if (segment.Contains('\\'))
        {
            return "a backslash";
        }

        if (segment.Contains(';'))
        {
            return "a matrix parameter (';')";
        }

        // Decoded text with a '%' left is an encoded slash or a second layer of encoding: %2500
        // reaches the upstream as %00, which a C-based server reads as the end of the path.
        if (segment.Contains('%'))
        {
            return "percent-encoding left after decoding (an encoded slash, or double encoding)";
        }

        // "..", and what Windows trims to "..": trailing dots and spaces ("...", ".. ").
        if (segment.TrimEnd(" .").IsEmpty)
        {
            return "a dot segment (or one a server trims to it)";
        }

        foreach (var rune in segment.EnumerateRunes())
        {
            if (AmbiguousCharacter(rune) is { } why)
            {
                return why;
            }
        }

        return null;
    }

    /// <summary>Outside ASCII, only letters, combining marks and decimal digits: none of them
    /// normalises (NFKC, IDNA) into a delimiter, while punctuation and symbols do (a fullwidth
    /// '／' or '．', '‥', and the slashes and yen sign Windows' best-fit code pages turn into '/'
    /// and '\'), and invisible, space, private-use and unassigned characters read differently.</summary>
    private static string? AmbiguousCharacter(Rune rune)
    {
        if (rune.IsAscii)
        {
            return Rune.IsControl(rune) ? "a control character" : null;
        }

        return Rune.GetUnicodeCategory(rune) switch
        {
            UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter or UnicodeCategory.ModifierLetter
                or UnicodeCategory.OtherLetter or UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark
                or UnicodeCategory.EnclosingMark or UnicodeCategory.DecimalDigitNumber => null,
            _ => "a non-ASCII character other than a letter, mark or digit (punctuation and symbols can normalise into delimiters, e.g. a fullwidth '/' or '.'; invisible and space characters read differently)",
        };
    }

    /// <summary>Decodes a URI component's percent-encodings (only <see cref="InertEncoded"/> ASCII,
    /// and valid UTF-8); null when it could, else why not.</summary>
    private static string? Decode(ReadOnlySpan<char> component, out string decoded)
    {
        decoded = string.Empty;
        if (!component.Contains('%'))
        {
            decoded = component.ToString();
            return null;
        }

        var bytes = new List<byte>(component.Length);
        while (!component.IsEmpty)
        {
            var percent = component.IndexOf('%');
            var raw = percent < 0 ? component : component[..percent];
            try
            {
                bytes.AddRange(StrictUtf8.GetBytes(raw.ToString()));
            }
            catch (EncoderFallbackException)
            {
                return "a lone surrogate";
            }

            if (percent < 0)
            {
                break;
            }

            component = component[percent..];
            if (component.Length < 3 || !char.IsAsciiHexDigit(component[1]) || !char.IsAsciiHexDigit(component[2]))
            {
                return "a '%' that starts no percent-encoding";
            }

            var b = (byte)((HexValue(component[1]) << 4) | HexValue(component[2]));
            if (b < 0x80 && !InertEncoded.Contains((char)b))
            {
                return "a percent-encoded delimiter, unreserved character, '%' or control character, which a resolver may decode";
            }

            bytes.Add(b);
            component = component[3..];
        }

        try
        {
            decoded = StrictUtf8.GetString([.. bytes]);
            return null;
        }
        catch (DecoderFallbackException)
        {
            return "percent-encoded bytes that are not valid UTF-8 (overlong forms decode to '.' and '/' in lenient decoders)";
        }
    }

    private static int HexValue(char c) => c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;

    /// <summary>A resource template with each <c>{…}</c> expression read as one plain character.</summary>
    private static (string? Expanded, string? Why) ReadTemplate(string template)
    {
        var result = new StringBuilder(template.Length);
        for (var i = 0; i < template.Length; i++)
        {
            if (template[i] == '}')
            {
                return (null, "a '}' outside a template expression");
            }

            if (template[i] != '{')
            {
                result.Append(template[i]);
                continue;
            }

            var end = template.IndexOf('}', i + 1);
            var expression = end < 0 ? default : template.AsSpan(i + 1, end - i - 1);
            if (end < 0 || expression.IsEmpty || !IsTemplateExpression(expression))
            {
                return (null, "a URI template expression that is not '{' [operator] names '}'");
            }

            result.Append('x');
            i = end;
        }

        return (result.ToString(), null);
    }

    private static bool IsTemplateExpression(ReadOnlySpan<char> expression)
    {
        if (expression[0] is '+' or '#' or '.' or '/' or ';' or '?' or '&')
        {
            expression = expression[1..];
        }

        return !expression.IsEmpty && !expression.ContainsAnyExcept(TemplateNameCharacters);
    }
}
