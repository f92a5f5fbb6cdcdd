using AgentGateway.Proxy.Identity;
using Microsoft.AspNetCore.Http;
using Microsoft.Net.Http.Headers;

namespace AgentGateway.Proxy.Stripping;

/// <summary>
/// The <c>Host</c> (HTTP/2 <c>:authority</c>) of a request is whatever the agent wrote: routes
/// match on path, and nothing checks it. YARP's forwarders copy it as a claim of the gateway's —
/// the default <c>X-Forwarded-Host</c>, a route's <c>Forwarded: host=</c>, and the hop's own
/// <c>Host</c> under <c>RequestHeaderOriginalHost</c> — to upstreams that pick a tenant, check
/// allowed hosts or build absolute links and redirect URIs from it. So before anything is
/// forwarded the request's host becomes a fact the gateway knows: the configured public origin
/// (<c>Inbound:PublicOrigins</c>) the agent named, else the only one configured; otherwise (none,
/// or several and the agent named none of them) no host at all, and every forwarder leaves its
/// host out.
/// </summary>
internal static class ForwardedHost
{
    public static void Apply(HttpRequest request, PublicOrigins origins)
    {
        string? known = null;
        foreach (var origin in origins.Origins)
        {
            var authority = Authority(origin);
            if (Names(origin, authority, request.Host))
            {
                known = authority;
                break;
            }
        }

        if (known is null && origins.Origins.Count == 1)
        {
            known = Authority(origins.Origins.First());
        }

        if (known is null)
        {
            request.Headers.Remove(HeaderNames.Host);
        }
        else
        {
            request.Host = HostString.FromUriComponent(known);
        }
    }

    private static string Authority(string origin) => origin[(origin.IndexOf("://", StringComparison.Ordinal) + 3)..];

    /// <summary>Whether <paramref name="host"/> names <paramref name="origin"/>, its default port written or not.</summary>
    private static bool Names(string origin, string authority, HostString host)
    {
        if (!host.HasValue)
        {
            return false;
        }

        var value = host.Value;
        if (string.Equals(value, authority, StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }

        var defaultPort = origin.StartsWith("https:", StringComparison.Ordinal) ? ":443" : ":80";
        return value.EndsWith(defaultPort, StringComparison.Ordinal)
            && string.Equals(value[..^defaultPort.Length], authority, StringComparison.OrdinalIgnoreCase);
    }
}
