using System.Buffers;

namespace AgentGateway.Configuration;

/// <summary>
/// A configured HTTP header name: an RFC 9110 §5.1 field name, that is a token (§5.6.2) of
/// letters, digits and <c>!#$%&amp;'*+-.^_`|~</c>. The one rule for every header the
/// configuration names — headers a credential is injected into, headers the gateway reads from
/// agents (static key, delegation, task) or adds (provenance), headers a route forwards —
/// since anything else (space, ':', a control character) could split or smuggle a header.
/// </summary>
public readonly record struct HeaderName
{
    private static readonly SearchValues<char> TokenCharacters =
        SearchValues.Create("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");

    private HeaderName(string value) => Value = value;

    /// <summary>The name as configured (header names compare case-insensitively).</summary>
    public string Value { get; }

    /// <summary>Whether <paramref name="text"/> is a token: non-empty, token characters only.</summary>
    public static bool IsToken(ReadOnlySpan<char> text) => !text.IsEmpty && !text.ContainsAnyExcept(TokenCharacters);

    public static bool TryParse(string? text, out HeaderName name)
    {
        name = default;
        if (text is null || !IsToken(text))
        {
            return false;
        }

        name = new HeaderName(text);
        return true;
    }

    /// <summary>Parses a configured header name; a problem at <paramref name="path"/> when it is not one.</summary>
    public static bool TryRead(string path, string? text, ConfigProblems problems, out HeaderName name)
    {
        if (TryParse(text, out name))
        {
            return true;
        }

        problems.Add(path, "must be an HTTP header name: letters, digits and !#$%&'*+-.^_`|~ (an RFC 9110 token)");
        return false;
    }

    public override string ToString() => Value ?? string.Empty;
}
