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
        var hosts = origins.Hosts;
        HostString? known = hosts.Count == 1 ? hosts[0].Host : null;
        if (request.Host.Value is { } named)
        {
            foreach (var origin in hosts)
            {
                if (named.Equals(origin.Authority, StringComparison.OrdinalIgnoreCase) || named.Equals(origin.WithDefaultPort, StringComparison.OrdinalIgnoreCase))
                {
                    known = origin.Host;
                    break;
                }
            }
        }

        if (known is { } host)
        {
            request.Host = host;
        }
        else
        {
            request.Headers.Remove(HeaderNames.Host);
        }
    }
}
