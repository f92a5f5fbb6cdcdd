using System.Buffers;
using System.Text.RegularExpressions;
using AgentGateway.Proxy.Identity;
using Microsoft.AspNetCore.Http;

namespace AgentGateway.Proxy.Pipeline;

/// <summary>
/// The references an upstream hands the agent's client to go to next — <c>Location</c> (followed
/// on a redirect, with the agent's custom headers such as its static key, its delegation token and,
/// for 307 and 308, its body), <c>Content-Location</c> and <c>Refresh</c> — each decided once for
/// every route: a reference passes only when every client resolves it to the gateway itself.
/// <list type="bullet">
/// <item>a relative reference without an authority (<c>/x</c>, <c>x</c>, <c>?q</c>) passes as it is;</item>
/// <item>an absolute <c>http(s)</c> URL on one of the configured public origins passes too;</item>
/// <item>one on the origin the request was forwarded to is mapped back onto the route's public
/// prefix (the part of the path the route replaced), when it lies under the upstream's prefix;</item>
/// <item>anything else — another origin, a scheme-relative <c>//host</c>, another scheme, user
/// information or percent-encoding in the authority — is not the gateway's, and neither is what
/// clients could read differently: any character outside RFC 3986's (so no backslash, which
/// WHATWG URL parsing reads as a slash, no space, tab or line break, which it strips, no
/// non-ASCII host), or a colon in the first segment of a relative reference.</item>
/// </list>
/// </summary>
internal static partial class UpstreamReferences
{
    /// <summary>RFC 3986 §2, reserved and unreserved characters and '%'; nothing any client strips or reads as another.</summary>
    private static readonly SearchValues<char> UriCharacters = SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$&'()*+,;=%");

    /// <summary>The fields of an answer that name a place for the client to go. <c>Link</c> is
    /// one: paginating clients follow <c>rel="next"</c> with the session's headers.</summary>
    public static readonly string[] Fields = ["Location", "Content-Location", "Refresh", "Link"];

    /// <summary><paramref name="value"/> as a reference the agent's client resolves to the gateway
    /// (itself, or mapped back from the upstream's origin), or null when it is not one.</summary>
    public static string? OnGateway(string value, Scope scope)
    {
        if (value.AsSpan().ContainsAnyExcept(UriCharacters))
        {
            return null;
        }

        if (value.StartsWith("//", StringComparison.Ordinal))
        {
            // Scheme-relative: another authority, however it is spelt.
            return null;
        }

        var delimiter = value.AsSpan().IndexOfAny('/', '?', '#');
        var colon = value.IndexOf(':', StringComparison.Ordinal);
        if (colon < 0 || (delimiter >= 0 && delimiter < colon))
        {
            // Path-absolute, path-relative, query or fragment: resolved on the gateway's own origin.
            return value;
        }

        // A scheme (or a first segment with a colon, which RFC 3986 and WHATWG read differently).
        var scheme = value[..colon];
        if (!(scheme.Equals("http", StringComparison.OrdinalIgnoreCase) || scheme.Equals("https", StringComparison.OrdinalIgnoreCase))
            || !value.AsSpan(colon + 1).StartsWith("//")
            || !Uri.TryCreate(value, UriKind.Absolute, out var uri))
        {
            return null;
        }

        var authorityStart = colon + 3;
        var authorityEnd = value.AsSpan(authorityStart).IndexOfAny('/', '?', '#');
        var authority = authorityEnd < 0 ? value.AsSpan(authorityStart) : value.AsSpan(authorityStart, authorityEnd);
        if (authority.IsEmpty || authority.ContainsAny('@', '%'))
        {
            return null;
        }

        var origin = uri.GetLeftPart(UriPartial.Authority);
        if (scope.PublicOrigins.Contains(origin))
        {
            return value;
        }

        if (scope.Upstream is not { } upstream || origin != upstream.GetLeftPart(UriPartial.Authority))
        {
            return null;
        }

        var path = uri.AbsolutePath;
        if (!(path.StartsWith(scope.UpstreamPrefix, StringComparison.Ordinal)
            && (path.Length == scope.UpstreamPrefix.Length || path[scope.UpstreamPrefix.Length] == '/')))
        {
            return null;
        }

        var mapped = scope.GatewayPrefix + path[scope.UpstreamPrefix.Length..] + uri.Query + uri.Fragment;
        if (mapped.Length == 0)
        {
            mapped = "/";
        }

        // What was mapped is judged as any reference is (a path that became "//host" is not the gateway's).
        return mapped[0] == '/' && OnGateway(mapped, Scope.None) == mapped ? mapped : null;
    }

    /// <summary>A <c>Refresh</c> value (HTML's "shared declarative refresh steps": a delay, then
    /// optionally a URL): a bare delay reloads the same answer and passes; one with a URL passes
    /// with that URL on the gateway, or not at all.</summary>
    public static string? RefreshOnGateway(string value, Scope scope)
    {
        var refresh = RefreshPattern().Match(value);
        if (!refresh.Success)
        {
            return null;
        }

        if (!refresh.Groups["url"].Success)
        {
            return value;
        }

        return OnGateway(refresh.Groups["url"].Value, scope) is { } target ? $"{refresh.Groups["delay"].Value}; url={target}" : null;
    }

    /// <summary>
    /// A <c>Link</c> value (RFC 8288: <c>&lt;target&gt;; param=value, ...</c>) whose every target
    /// and every <c>anchor</c> is on the gateway, each mapped as <see cref="OnGateway"/> maps it;
    /// null when one is not, or when the value does not parse as RFC 8288 says — then the client's
    /// reading of it cannot be known, and the field is dropped rather than guessed at.
    /// </summary>
    /// <remarks>
    /// Stricter than RFC 8288, because clients' Link parsers are not parsers: several split the
    /// value on <c>,</c> or <c>, &lt;</c> and on <c>;</c> whatever quotes say, and strip quotes
    /// and apostrophes around the target. So a target or anchor holding <c>'</c>, <c>,</c> or
    /// <c>;</c>, a parameter value holding any of <c>&lt;&gt;,;'"\</c> (so no escapes, and nothing
    /// a splitting parser could read as a second link), and an extended parameter
    /// (<c>title*</c>, <c>anchor*</c>, RFC 8187) make the whole field go.
    /// </remarks>
    public static string? LinkOnGateway(string value, Scope scope)
    {
        var kept = new System.Text.StringBuilder(value.Length);
        var i = 0;
        while (true)
        {
            SkipSpace(value, ref i);
            if (i >= value.Length || value[i] != '<' || value.IndexOf('>', i + 1) is var close && close < 0
                || value.AsSpan(i + 1, close - i - 1).ContainsAny(LinkSplitters)
                || OnGateway(value[(i + 1)..close], scope) is not { } target)
            {
                return null;
            }

            kept.Append('<').Append(target).Append('>');
            i = close + 1;
            while (true)
            {
                SkipSpace(value, ref i);
                if (i >= value.Length)
                {
                    return kept.ToString();
                }

                if (value[i] == ',')
                {
                    kept.Append(", ");
                    i++;
                    break;
                }

                if (value[i] != ';')
                {
                    return null;
                }

                i++;
                SkipSpace(value, ref i);
                var nameStart = i;
                while (i < value.Length && IsTokenCharacter(value[i]))
                {
                    i++;
                }

                if (i == nameStart || value[i - 1] == '*')
                {
                    return null;
                }

                var name = value[nameStart..i];
                kept.Append("; ").Append(name);
                SkipSpace(value, ref i);
                if (i >= value.Length || value[i] != '=')
                {
                    continue;
                }

                i++;
                SkipSpace(value, ref i);
                var quoted = i < value.Length && value[i] == '"';
                if (ParameterValue(value, ref i) is not { } parameter || parameter.AsSpan().ContainsAny(UnsafeInParameter))
                {
                    return null;
                }

                if (name.Equals("anchor", StringComparison.OrdinalIgnoreCase))
                {
                    // The link's context: a client resolves the target against it.
                    if (OnGateway(parameter, scope) is not { } anchor)
                    {
                        return null;
                    }

                    parameter = anchor;
                }

                // Written back in the form it came in; with nothing to escape, a quoted value stays one.
                kept.Append('=').Append(quoted ? "\"" + parameter + "\"" : parameter);
            }
        }
    }

    /// <summary>What Link parsers split a value on, or strip around a target.</summary>
    private static readonly SearchValues<char> LinkSplitters = SearchValues.Create("',;");

    /// <summary>What a Link parameter value may not hold: anything a splitting parser could read as
    /// the end of the value or the start of another link, and escapes.</summary>
    private static readonly SearchValues<char> UnsafeInParameter = SearchValues.Create("<>,;'\"\\");

    private static void SkipSpace(string value, ref int i)
    {
        while (i < value.Length && value[i] is ' ' or '\t')
        {
            i++;
        }
    }

    /// <summary>RFC 9110 token characters.</summary>
    private static bool IsTokenCharacter(char c) => char.IsAsciiLetterOrDigit(c) || "!#$%&'*+-.^_`|~".Contains(c);

    /// <summary>A token or a quoted string (its escapes undone); null when neither.</summary>
    private static string? ParameterValue(string value, ref int i)
    {
        if (i < value.Length && value[i] == '"')
        {
            var text = new System.Text.StringBuilder();
            for (i++; i < value.Length; i++)
            {
                if (value[i] == '"')
                {
                    i++;
                    return text.ToString();
                }

                if (value[i] == '\\')
                {
                    // An escape: whether a client undoes it is parser by parser.
                    return null;
                }

                text.Append(value[i]);
            }

            return null;
        }

        var start = i;
        while (i < value.Length && IsTokenCharacter(value[i]))
        {
            i++;
        }

        return i > start ? value[start..i] : null;
    }

    [GeneratedRegex("""^[ \t]*(?<delay>[0-9]+(\.[0-9]*)?)[ \t]*(?:$|[;,][ \t]*(?:[Uu][Rr][Ll][ \t]*=[ \t]*)?(?:'(?<url>[^']*)'|"(?<url>[^"]*)"|(?<url>[^'" \t][^ \t]*))[ \t]*$)""", RegexOptions.CultureInvariant)]
    private static partial Regex RefreshPattern();

    /// <summary>What a reference is judged against for one answer: the gateway's configured
    /// public origins, and the upstream URL the request went to with the prefixes that map its
    /// paths back onto the gateway's.</summary>
    internal sealed record Scope(IReadOnlyCollection<string> PublicOrigins, Uri? Upstream, string GatewayPrefix, string UpstreamPrefix)
    {
        public static Scope None { get; } = new([], null, "", "");

        /// <summary>The scope of one forwarded request: the route replaced the start of the
        /// gateway path (its public prefix) by the start of the upstream path; what the two paths
        /// end with in common, from a segment boundary, is the part the route kept.</summary>
        public static Scope Of(HttpRequest request, Uri? forwarded, PublicOrigins origins)
        {
            if (forwarded is null)
            {
                return new(origins.Origins, null, "", "");
            }

            var gateway = (request.PathBase + request.Path).ToUriComponent();
            var upstream = forwarded.AbsolutePath;
            int g = gateway.Length, u = upstream.Length;
            while (g > 0 && u > 0 && gateway[g - 1] == upstream[u - 1])
            {
                g--;
                u--;
            }

            while (g < gateway.Length && gateway[g] != '/')
            {
                g++;
                u++;
            }

            return new(origins.Origins, forwarded, gateway[..g].TrimEnd('/'), upstream[..u].TrimEnd('/'));
        }
    }
}
