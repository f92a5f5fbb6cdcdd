using System.Buffers;

namespace AgentGateway.Proxy.Stripping;

/// <summary>
/// A set of header or parameter name patterns, compiled once into one multi-string search. A name
/// is compared in its folded form — lower case, every character other than an ASCII letter or digit
/// read as <c>-</c> — because that is how the servers behind an upstream may read it: CGI-style
/// frameworks turn <c>X_User</c>, <c>X.User</c> and <c>X-User</c> alike into <c>HTTP_X_USER</c>,
/// so all three are one header to them. The folded name is put between two <c>:</c> anchors (a
/// character no folded name contains), so one search answers every kind of pattern:
/// <c>:x-user</c> starts the name, <c>token</c> is anywhere in it, <c>:cookie:</c> is the whole name.
/// </summary>
internal sealed class NamePatterns
{
    private const char Anchor = ':';

    /// <summary>The characters of a folded name.</summary>
    private static readonly SearchValues<char> Folded = SearchValues.Create("abcdefghijklmnopqrstuvwxyz0123456789-");

    private readonly SearchValues<string> _patterns;

    public NamePatterns(IEnumerable<string> patterns)
    {
        string[] all = [.. patterns];
        foreach (var pattern in all)
        {
            var inner = pattern.AsSpan().Trim(Anchor);
            if (inner.IsEmpty || inner.ContainsAnyExcept(Folded))
            {
                // A pattern that no folded name can contain would silently match nothing.
                throw new ArgumentException($"'{pattern}' is not a folded name pattern (a-z, 0-9, '-', anchored by ':')", nameof(patterns));
            }
        }

        _patterns = SearchValues.Create(all, StringComparison.Ordinal);
    }

    public bool Matches(ReadOnlySpan<char> name)
    {
        // Names longer than this are folded on the heap; they are rare and still must be checked.
        Span<char> buffer = name.Length <= 254 ? stackalloc char[name.Length + 2] : new char[name.Length + 2];
        buffer[0] = Anchor;
        Fold(name, buffer[1..^1]);
        buffer[^1] = Anchor;
        return buffer.IndexOfAny(_patterns) >= 0;
    }

    /// <summary>Writes the folded form of <paramref name="name"/> to <paramref name="destination"/> (same length).</summary>
    public static void Fold(ReadOnlySpan<char> name, Span<char> destination)
    {
        for (var i = 0; i < name.Length; i++)
        {
            destination[i] = FoldChar(name[i]);
        }
    }

    /// <summary>Whether an upstream could read <paramref name="a"/> as header <paramref name="b"/>.</summary>
    public static bool SameName(ReadOnlySpan<char> a, ReadOnlySpan<char> b)
    {
        if (a.Length != b.Length)
        {
            return false;
        }

        for (var i = 0; i < a.Length; i++)
        {
            if (FoldChar(a[i]) != FoldChar(b[i]))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The folded name, as a string (for diagnostics and configuration checks).</summary>
    public static string Fold(string name) => string.Create(name.Length, name, static (span, n) => Fold(n, span));

    // ToLowerInvariant also folds the non-ASCII letters some parsers lower-case into ASCII (the
    // Kelvin sign into 'k'), so they compare as the letter they become.
    private static char FoldChar(char c)
    {
        var lower = char.ToLowerInvariant(c);
        return char.IsAsciiLetterLower(lower) || char.IsAsciiDigit(lower) ? lower : '-';
    }
}
