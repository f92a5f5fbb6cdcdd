using System.Buffers;
using System.Collections.Frozen;
using System.Globalization;
using System.Net;
using System.Text;
using AgentGateway.Configuration;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace AgentGateway.Proxy.Identity;

/// <summary>
/// The origins (scheme, host, port) callers reach a listener at, which a DPoP proof's <c>htu</c>
/// must name (RFC 9449 §4.3): <c>Gateway:Inbound:PublicOrigins</c> for the proxy listener,
/// <c>Gateway:Admin:PublicOrigins</c> for the admin API. Never the request's own <c>Host</c>
/// header, which the caller writes. Without configured origins, the origin is the listener's own:
/// the scheme of the endpoint and the local address and port the connection arrived at (and
/// <c>localhost</c> for a loopback address) — right for agents that connect to the gateway
/// directly, and failing closed behind a load balancer or TLS terminator until the public
/// origin is configured.
/// </summary>
/// <remarks>
/// URIs are compared after the normalisation RFC 9449 asks for (RFC 3986 §6.2.2 and §6.2.3): scheme
/// and host in lower case, the default port dropped, percent-encodings of unreserved characters
/// decoded and the others in upper case, dot segments removed, an empty path as <c>/</c>; query and
/// fragment are not compared. The request's path is the one it was sent with (its raw target), not
/// the server's decoded reading of it.
/// </remarks>
public sealed class PublicOrigins
{
    private static readonly SearchValues<char> Unreserved = SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~");

    /// <summary>What may appear in a URI besides '%' (RFC 3986 §2: reserved and unreserved).</summary>
    private static readonly SearchValues<char> UriCharacters = SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$&'()*+,;=%");

    private readonly FrozenSet<string> _origins;

    private PublicOrigins(FrozenSet<string> origins)
    {
        _origins = origins;
        Hosts = [.. origins.Select(origin =>
        {
            var authority = origin[(origin.IndexOf("://", StringComparison.Ordinal) + 3)..];
            var defaultPort = origin.StartsWith("https:", StringComparison.Ordinal) ? ":443" : ":80";
            return new OriginHost(HostString.FromUriComponent(authority), authority, authority + defaultPort);
        })];
    }

    /// <summary>Each origin as a <c>Host</c> header names it, made once per revision for the
    /// request path (<see cref="Stripping.ForwardedHost"/>).</summary>
    internal IReadOnlyList<OriginHost> Hosts { get; }

    /// <summary>One origin's host: its authority, and the same with the scheme's default port written.</summary>
    internal readonly record struct OriginHost(HostString Host, string Authority, string WithDefaultPort);

    /// <summary>None configured: the listener's own origin.</summary>
    public static PublicOrigins Listener { get; } = new(FrozenSet<string>.Empty);

    /// <summary>The normalised origins, or empty for <see cref="Listener"/>.</summary>
    public IReadOnlyCollection<string> Origins => _origins;

    /// <summary>Compiles configured origins; each must be <c>http(s)://host[:port]</c>, nothing more.</summary>
    public static PublicOrigins Create(IEnumerable<string> origins) => new(origins.ToFrozenSet(StringComparer.Ordinal));

    /// <summary>Compiles a configured list (<c>Inbound:PublicOrigins</c>, <c>Admin:PublicOrigins</c>),
    /// each entry that is not an origin reported as <c>{path}:{i}</c>; none configured is <see cref="Listener"/>.</summary>
    public static PublicOrigins Compile(string path, string[] values, ConfigProblems problems)
    {
        var origins = new List<string>();
        for (var i = 0; i < values.Length; i++)
        {
            if (TryParseOrigin(values[i], out var origin, out var error))
            {
                origins.Add(origin);
            }
            else
            {
                problems.Add($"{path}:{i}", error);
            }
        }

        return origins.Count == 0 ? Listener : Create(origins);
    }

    /// <summary>Reads one configured origin into its normalised form, or says why it is not one.</summary>
    public static bool TryParseOrigin(string? value, out string origin, out string error)
    {
        origin = "";
        if (!TryNormalize(value, out var normalized, out var path, out error))
        {
            return false;
        }

        if (path != "/" || value!.Contains('?', StringComparison.Ordinal) || value.Contains('#', StringComparison.Ordinal))
        {
            error = "must be an origin only (scheme, host and port, e.g. https://gateway.example.com), without path, query or fragment";
            return false;
        }

        origin = normalized;
        return true;
    }

    /// <summary>Whether <paramref name="htu"/> names this request: one of the origins (or the
    /// listener's own) and the path the request was sent to.</summary>
    public bool Matches(string htu, HttpRequest request)
    {
        if (!TryNormalize(htu, out var origin, out var path, out _) || RequestPath(request) is not { } actualPath || path != actualPath)
        {
            return false;
        }

        return _origins.Count > 0 ? _origins.Contains(origin) : IsListener(origin, request.HttpContext);
    }

    /// <summary>The request's own path as sent (origin-form or absolute-form target), normalised.</summary>
    private static string? RequestPath(HttpRequest request)
    {
        var target = request.HttpContext.Features.Get<IHttpRequestFeature>()?.RawTarget;
        if (string.IsNullOrEmpty(target))
        {
            return null;
        }

        if (target[0] == '/')
        {
            var end = target.AsSpan().IndexOfAny('?', '#');
            return NormalizePath(end < 0 ? target : target[..end], out var path) ? path : null;
        }

        return TryNormalize(target, out _, out var absolutePath, out _) ? absolutePath : null;
    }

    private static bool IsListener(string origin, HttpContext context)
    {
        var connection = context.Connection;
        if (connection.LocalIpAddress is not { } address)
        {
            return false;
        }

        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        var scheme = context.Request.IsHttps ? "https" : "http";
        var host = address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{address}]" : address.ToString();
        if (origin == Origin(scheme, host, connection.LocalPort))
        {
            return true;
        }

        // A caller on the same machine may well name it localhost.
        return IPAddress.IsLoopback(address) && origin == Origin(scheme, "localhost", connection.LocalPort);
    }

    private static string Origin(string scheme, string host, int port) =>
        (scheme, port) is ("http", 80) or ("https", 443) ? $"{scheme}://{host}" : $"{scheme}://{host}:{port.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>An absolute http(s) URI as normalised origin and path (RFC 3986 §6.2.2, §6.2.3).</summary>
    private static bool TryNormalize(string? uri, out string origin, out string path, out string error)
    {
        origin = path = "";
        if (string.IsNullOrEmpty(uri) || uri.Length > 8 * 1024 || uri.AsSpan().ContainsAnyExcept(UriCharacters))
        {
            error = "must be an absolute http or https URI";
            return false;
        }

        var schemeEnd = uri.IndexOf("://", StringComparison.Ordinal);
        var scheme = schemeEnd < 0 ? "" : uri[..schemeEnd].ToLowerInvariant();
        if (scheme is not ("http" or "https"))
        {
            error = "must be an absolute http or https URI";
            return false;
        }

        var rest = uri.AsSpan(schemeEnd + 3);
        var authorityEnd = rest.IndexOfAny('/', '?', '#');
        var authority = authorityEnd < 0 ? rest : rest[..authorityEnd];
        var tail = authorityEnd < 0 ? "" : rest[authorityEnd..].ToString();
        if (authority.Contains('@') || authority.Contains('%'))
        {
            error = "must not carry user information or percent-encoding in its authority";
            return false;
        }

        // host, [v6], host:port, [v6]:port
        var portStart = authority.LastIndexOf(':');
        if (portStart >= 0 && authority.LastIndexOf(']') > portStart)
        {
            portStart = -1;
        }

        var host = (portStart < 0 ? authority : authority[..portStart]).ToString().ToLowerInvariant();
        var port = scheme == "https" ? 443 : 80;
        if (portStart >= 0 && portStart < authority.Length - 1
            && (!int.TryParse(authority[(portStart + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out port) || port is < 1 or > 65535))
        {
            error = "has an invalid port";
            return false;
        }

        if (host.Length == 0 || (host[0] == '[' && (host[^1] != ']' || !IPAddress.TryParse(host[1..^1], out _))))
        {
            error = "has no valid host";
            return false;
        }

        var pathEnd = tail.AsSpan().IndexOfAny('?', '#');
        if (!NormalizePath(pathEnd < 0 ? tail : tail[..pathEnd], out path))
        {
            error = "has an invalid percent-encoding";
            return false;
        }

        origin = Origin(scheme, host, port);
        error = "";
        return true;
    }

    /// <summary>Percent-encodings of unreserved characters decoded, the others upper-cased, dot
    /// segments removed (RFC 3986 §5.2.4), empty as "/". False for a malformed encoding.</summary>
    private static bool NormalizePath(string raw, out string path)
    {
        path = "/";
        var decoded = new StringBuilder(raw.Length);
        for (var i = 0; i < raw.Length; i++)
        {
            var c = raw[i];
            if (c != '%')
            {
                decoded.Append(c);
                continue;
            }

            if (i + 2 >= raw.Length || !char.IsAsciiHexDigit(raw[i + 1]) || !char.IsAsciiHexDigit(raw[i + 2]))
            {
                return false;
            }

            var value = (char)Convert.ToByte(raw.Substring(i + 1, 2), 16);
            if (Unreserved.Contains(value))
            {
                decoded.Append(value);
            }
            else
            {
                decoded.Append('%').Append(char.ToUpperInvariant(raw[i + 1])).Append(char.ToUpperInvariant(raw[i + 2]));
            }

            i += 2;
        }

        path = RemoveDotSegments(decoded.ToString());
        if (path.Length == 0)
        {
            path = "/";
        }

        return true;
    }

    private static string RemoveDotSegments(string input)
    {
        var output = new List<string>();
        var segments = input.Split('/');
        for (var i = 0; i < segments.Length; i++)
        {
            var segment = segments[i];
            var last = i == segments.Length - 1;
            if (segment == ".")
            {
                if (last)
                {
                    output.Add("");
                }
            }
            else if (segment == "..")
            {
                if (output.Count > 1)
                {
                    output.RemoveAt(output.Count - 1);
                }

                if (last)
                {
                    output.Add("");
                }
            }
            else
            {
                output.Add(segment);
            }
        }

        return string.Join('/', output);
    }
}
