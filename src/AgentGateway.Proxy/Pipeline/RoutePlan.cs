using System.Runtime.CompilerServices;
using AgentGateway.Proxy.Configuration;
using AgentGateway.Proxy.Inspection;
using AgentGateway.Proxy.Policy;
using AgentGateway.Proxy.Routes;
using AgentGateway.Proxy.Stripping;
using Yarp.ReverseProxy.Configuration;

namespace AgentGateway.Proxy.Pipeline;

/// <summary>
/// One route as one revision compiled it: everything the gateway decides a request of that route
/// with that does not depend on the request. Made once, when YARP builds the route from the
/// revision (<see cref="CredentialTransformProvider.Apply"/>), and reached from the route YARP
/// matched — so a request is always decided by the revision its route was built from, whichever
/// revision is current by then, and a route and its revision can never disagree.
/// </summary>
internal sealed class RoutePlan
{
    public RoutePlan(GatewayRevision revision, GatewayRoute route, RevisionPlan shared)
    {
        Revision = revision;
        Route = route;
        Shared = shared;
        Strip = StripNames(revision, route);
    }

    public GatewayRevision Revision { get; }

    public GatewayRoute Route { get; }

    /// <summary>What every route of the revision shares: its configured secrets and policy plan.</summary>
    public RevisionPlan Shared { get; }

    /// <summary>The configured secrets of the revision, as one search.</summary>
    public ConfiguredSecrets Secrets => Shared.Secrets;

    /// <summary>
    /// The header names removed from the hop, as one search: every credential and untrusted header
    /// pattern, the headers addressed to the gateway itself (the delegation, the task, the static
    /// key, the provenance assertion, which the agent can neither supply nor influence), the
    /// header about to be injected, the trace context (the hop carries the gateway's trace, never
    /// the agent's: <see cref="HopTraceParent"/>) and <c>Accept-Encoding</c> (how the upstream codes
    /// its answer is not the agent's choice: the answer guard must read it), each in every spelling
    /// an upstream could read as it. One pass over the outgoing headers removes them all.
    /// </summary>
    public NamePatterns Strip { get; }

    private static NamePatterns StripNames(GatewayRevision revision, GatewayRoute route)
    {
        string?[] own = [
            revision.Inbound.Delegation.Header, revision.Policy.TaskHeader, revision.Inbound.StaticKeyHeader, revision.Provenance.Options.Header, route.Credential?.HeaderName,
            .. HopTraceParent.PropagationFields, "Accept-Encoding"];
        return new NamePatterns([
            .. InboundCredentials.HeaderPatterns,
            .. UntrustedHeaders.HeaderPatterns,
            .. own.Where(name => !string.IsNullOrEmpty(name)).Select(name => $":{NamePatterns.Fold(name!)}:")]);
    }
}

/// <summary>What the routes of one revision share, compiled once for all of them.</summary>
internal sealed class RevisionPlan(GatewayRevision revision, SecretIndex index) : ISecretSearch
{
    public ConfiguredSecrets Secrets { get; } = ConfiguredSecrets.Of(revision.Credentials);

    public PolicyPlan Policy { get; } = new(revision.Policy, revision.Grants);

    /// <summary>Whether <paramref name="text"/> holds one of the gateway's secrets: this revision's
    /// configured ones, or a hop token injected lately.</summary>
    public bool IsIn(ReadOnlySpan<char> text) => index.Contains(Secrets, text);
}

/// <summary>
/// The plans of the routes YARP has built, by the <see cref="RouteConfig"/> instance it built them
/// from. Each revision publishes route configurations of its own (<see cref="PublishedRoutes"/>
/// stamps them with its number, so YARP rebuilds every route on every revision instead of keeping a
/// route whose text did not change with the compiled objects of an older revision). A plan lives as
/// long as YARP keeps its route.
/// </summary>
internal sealed class RoutePlans(PublishedRoutes published, SecretIndex secrets)
{
    private readonly ConditionalWeakTable<RouteConfig, RoutePlan> _routes = new();
    private readonly ConditionalWeakTable<GatewayRevision, RevisionPlan> _revisions = new();

    /// <summary>The plan of <paramref name="route"/>, made on first sight (when YARP builds the route).</summary>
    public RoutePlan For(RouteConfig route) =>
        _routes.TryGetValue(route, out var plan) ? plan : _routes.GetValue(route, Build);

    private RoutePlan Build(RouteConfig route)
    {
        var revision = published.RevisionOf(route);
        if (!revision.GatewayRoutes.TryGetValue(route.RouteId, out var gatewayRoute))
        {
            // The loader makes one for every route of the revision; nothing else publishes routes.
            throw new InvalidOperationException($"Route '{route.RouteId}' has no compiled form in configuration revision {revision.Number}.");
        }

        return new RoutePlan(revision, gatewayRoute, _revisions.GetValue(revision, r => new RevisionPlan(r, secrets)));
    }
}
