using System.Runtime.CompilerServices;
using Yarp.ReverseProxy.Configuration;

namespace AgentGateway.Proxy.Configuration;

/// <summary>
/// The revision of each route configuration the gateway has handed YARP, by instance: what YARP
/// builds a route from names the revision it was built from. Apart from
/// <see cref="GatewayConfigProvider"/>, which fills it, so that what YARP builds routes with (its
/// transform providers) can read it without depending on the provider, which depends on YARP's
/// validator and through it on those transform providers.
/// </summary>
public sealed class PublishedRoutes
{
    /// <summary>Route metadata naming the revision a published route belongs to (set here, never read from configuration).</summary>
    public const string RevisionMetadataKey = "AgentGateway.Revision";

    private readonly ConditionalWeakTable<RouteConfig, GatewayRevision> _published = new();

    /// <summary>The routes of <paramref name="revision"/> as YARP is to get them: each its own
    /// instance, stamped with the revision's number. YARP keeps a route whose configuration compares
    /// equal, and with it the objects compiled from an older revision (credential, grants, secrets);
    /// stamped, every route is built again, from this revision.</summary>
    public IReadOnlyList<RouteConfig> Publish(GatewayRevision revision)
    {
        var number = revision.Number.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var routes = new List<RouteConfig>(revision.Routes.Count);
        foreach (var route in revision.Routes)
        {
            // Read as before: the comparer of the metadata as configured.
            var metadata = new Dictionary<string, string>(route.Metadata ?? new Dictionary<string, string>(), (route.Metadata as Dictionary<string, string>)?.Comparer)
            {
                [RevisionMetadataKey] = number,
            };
            var stamped = route with { Metadata = metadata };
            _published.AddOrUpdate(stamped, revision);
            routes.Add(stamped);
        }

        return routes;
    }

    /// <summary>The revision whose routes <paramref name="route"/> (as YARP was given it) is one of.</summary>
    public GatewayRevision RevisionOf(RouteConfig route) =>
        _published.TryGetValue(route, out var revision)
            ? revision
            : throw new InvalidOperationException($"Route '{route.RouteId}' was not published by the gateway's configuration; routes reach YARP only from a revision.");
}
