using System.Buffers;
using System.Text;
using System.Text.RegularExpressions;

namespace AgentGateway.Proxy.Policy;

/// <summary>
/// A wildcard pattern, compiled once per revision to an anchored, non-backtracking regular
/// expression (linear time whatever the input). For paths and every other '/'-separated identifier
/// (prompt names, model names), <c>*</c> stays within one segment and <c>**</c> crosses segments;
/// for URIs, neither crosses into the query or fragment, and in the query <c>*</c> stays within one
/// value; for plain names (tools, subjects), <c>*</c> matches anything. Everything else is literal
/// and case-sensitive: names and paths are compared exactly as the upstream will see them, to their
/// last character (a trailing line feed is not "the end").
/// <para>
/// The shapes grants mostly have — no wildcard (<c>/v1/models</c>), or one at the end
/// (<c>/crm/**</c>, <c>lookup_*</c>) — are decided without the regular expression, by the
/// comparisons it would make: equal, or the literal start and then a run without the characters the
/// wildcard stops at. That is the same decision (PatternAndWindowTests sets each against the
/// expression) at a fraction of the cost, on every request.
/// </para>
/// </summary>
public sealed class GlobPattern
{
    /// <summary>Null when the pattern has one of the shapes decided without it.</summary>
    private readonly Regex? _regex;

    /// <summary>The pattern's literal text before its one trailing wildcard, or all of it when it has none.</summary>
    private readonly string _literal;

    /// <summary>Whether a wildcard follows <see cref="_literal"/>.</summary>
    private readonly bool _wildcardAtEnd;

    /// <summary>The characters that wildcard does not cross; null when it crosses everything.</summary>
    private readonly SearchValues<char>? _stops;

    private GlobPattern(string text, string expression, Regex? regex, string literal, bool wildcardAtEnd, SearchValues<char>? stops)
    {
        Text = text;
        Expression = expression;
        _regex = regex;
        _literal = literal;
        _wildcardAtEnd = wildcardAtEnd;
        _stops = stops;
    }

    public string Text { get; }

    /// <summary>The regular expression the pattern means (the decision, whichever way it is made).</summary>
    internal string Expression { get; }

    /// <summary>Whether <see cref="Expression"/> is run, rather than the comparisons that decide as it does.</summary>
    internal bool RunsExpression => _regex is not null;

    /// <summary>The options <see cref="Expression"/> is compiled with.</summary>
    internal const RegexOptions Options = RegexOptions.CultureInvariant | RegexOptions.NonBacktracking | RegexOptions.Singleline;

    public static GlobPattern ForPath(string pattern) => Compile(pattern, segmentAware: true);

    public static GlobPattern ForName(string pattern) => Compile(pattern, segmentAware: false);

    /// <summary>A resource URI pattern: <c>*</c> is <c>[^/?#]*</c> and <c>**</c> is <c>[^?#]*</c>
    /// up to a literal '?'; after it, <c>*</c> is one query value (<c>[^&amp;=#]*</c>).</summary>
    public static GlobPattern ForUri(string pattern) => Compile(pattern, segmentAware: true, uri: true);

    public bool IsMatch(string value)
    {
        if (_regex is not null)
        {
            return _regex.IsMatch(value);
        }

        if (!_wildcardAtEnd)
        {
            return string.Equals(value, _literal, StringComparison.Ordinal);
        }

        return value.StartsWith(_literal, StringComparison.Ordinal)
            && (_stops is null || value.AsSpan(_literal.Length).IndexOfAny(_stops) < 0);
    }

    public override string ToString() => Text;

    private static GlobPattern Compile(string pattern, bool segmentAware, bool uri = false)
    {
        var regex = new StringBuilder("^");
        var inQuery = false;
        var wildcards = 0;
        var literalEnd = pattern.Length;
        string? lastStops = null;
        for (var i = 0; i < pattern.Length; i++)
        {
            var c = pattern[i];
            if (c != '*')
            {
                inQuery |= uri && c == '?';
                regex.Append(Regex.Escape(c.ToString()));
                continue;
            }

            if (wildcards++ == 0)
            {
                literalEnd = i;
            }

            // Each wildcard is a run of any characters but its stops.
            if (segmentAware && i + 1 < pattern.Length && pattern[i + 1] == '*')
            {
                lastStops = uri ? (inQuery ? "#" : "?#") : "";
                i++;
            }
            else
            {
                lastStops = !segmentAware ? "" : !uri ? "/" : inQuery ? "&=#" : "/?#";
            }

            regex.Append(lastStops.Length == 0 ? ".*" : $"[^{Regex.Escape(lastStops)}]*");
        }

        // \z, not $: $ also matches before a final line feed, which would let "/a\n" pass for "/a".
        regex.Append("\\z");
        var expression = regex.ToString();
        var wildcardAtEnd = wildcards == 1 && pattern.EndsWith('*');
        return wildcards == 0 || wildcardAtEnd
            ? new GlobPattern(pattern, expression, null, pattern[..literalEnd], wildcardAtEnd, string.IsNullOrEmpty(lastStops) ? null : SearchValues.Create(lastStops))
            : new GlobPattern(pattern, expression, new Regex(expression, Options), pattern, false, null);
    }
}
