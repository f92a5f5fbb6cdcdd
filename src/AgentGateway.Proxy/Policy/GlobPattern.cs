using System.Text;
using System.Text.RegularExpressions;

namespace AgentGateway.Proxy.Policy;

/// <summary>
/// A wildcard pattern, compiled once per revision to an anchored, non-backtracking regular
/// expression (linear time whatever the input). For paths and every other '/'-separated identifier
/// (prompt names, model names), <c>*</c> stays within one segment and <c>**</c> crosses segments;
/// for URIs, neither crosses into the query or fragment, and in the query <c>*</c> stays within one
/// value; for plain names (tools, subjects), <c>*</c> matches anything. Everything else is literal
/// and case-sensitive: names and paths are compared exactly as the upstream will see them.
/// </summary>
public sealed class GlobPattern
{
    private readonly Regex _regex;

    private GlobPattern(string text, Regex regex)
    {
        Text = text;
        _regex = regex;
    }

    public string Text { get; }

    public static GlobPattern ForPath(string pattern) => Compile(pattern, segmentAware: true);

    public static GlobPattern ForName(string pattern) => Compile(pattern, segmentAware: false);

    /// <summary>A resource URI pattern: <c>*</c> is <c>[^/?#]*</c> and <c>**</c> is <c>[^?#]*</c>
    /// up to a literal '?'; after it, <c>*</c> is one query value (<c>[^&amp;=#]*</c>).</summary>
    public static GlobPattern ForUri(string pattern) => Compile(pattern, segmentAware: true, uri: true);

    public bool IsMatch(string value) => _regex.IsMatch(value);

    public override string ToString() => Text;

    private static GlobPattern Compile(string pattern, bool segmentAware, bool uri = false)
    {
        var regex = new StringBuilder("^");
        var inQuery = false;
        for (var i = 0; i < pattern.Length; i++)
        {
            var c = pattern[i];
            if (c != '*')
            {
                inQuery |= uri && c == '?';
                regex.Append(Regex.Escape(c.ToString()));
            }
            else if (segmentAware && i + 1 < pattern.Length && pattern[i + 1] == '*')
            {
                regex.Append(uri ? (inQuery ? "[^#]*" : "[^?#]*") : ".*");
                i++;
            }
            else
            {
                regex.Append(!segmentAware ? ".*" : !uri ? "[^/]*" : inQuery ? "[^&=#]*" : "[^/?#]*");
            }
        }

        regex.Append('$');
        return new GlobPattern(pattern, new Regex(regex.ToString(), RegexOptions.CultureInvariant | RegexOptions.NonBacktracking | RegexOptions.Singleline));
    }
}
