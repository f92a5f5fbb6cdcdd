using System.Collections.Frozen;
using AgentGateway.Credentials;
using AgentGateway.Proxy.Identity;
using AgentGateway.Proxy.Inventory;
using AgentGateway.Proxy.Policy;
using AgentGateway.Proxy.Provenance;
using AgentGateway.Proxy.Routes;
using Yarp.ReverseProxy.Configuration;

namespace AgentGateway.Proxy.Configuration;

/// <summary>
/// One validated, compiled configuration: the YARP routes and clusters and everything the
/// gateway derives from the <c>Gateway</c> section. Immutable; a reload builds a new one and
/// swaps it in whole, so a request never sees half of two configurations.
/// </summary>
public sealed class GatewayRevision
{
    public required long Number { get; init; }

    public required DateTimeOffset LoadedAt { get; init; }

    public required IReadOnlyList<RouteConfig> Routes { get; init; }

    public required IReadOnlyList<ClusterConfig> Clusters { get; init; }

    /// <summary>The gateway's view of each YARP route, by route id.</summary>
    public required FrozenDictionary<string, GatewayRoute> GatewayRoutes { get; init; }

    public required InboundOptions Inbound { get; init; }

    public required AgentDirectory Agents { get; init; }

    public required CredentialSet Credentials { get; init; }

    /// <summary>Every grant, compiled, by name.</summary>
    public required FrozenDictionary<string, Grant> Grants { get; init; }

    public required PolicyOptions Policy { get; init; }

    /// <summary>The process settings this revision was read with; a reload that changes them is refused.</summary>
    public required ProcessSettings Process { get; init; }

    /// <summary>Signs provenance assertions and publishes its keys.</summary>
    public required ProvenanceSigner Provenance { get; init; }

    /// <summary>Who may call the admin API, and when an agent counts as dormant.</summary>
    public AdminOptions Admin { get; init; } = AdminOptions.None;

    /// <summary>The databases agents reach on the gateway's PostgreSQL listeners, and the grants that open them.</summary>
    public Database.DatabaseCatalog Databases { get; init; } = Database.DatabaseCatalog.Empty;
}
