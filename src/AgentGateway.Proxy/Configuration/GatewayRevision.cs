using System.Collections.Frozen;
using AgentGateway.Credentials;
using AgentGateway.Proxy.Identity;
using AgentGateway.Proxy.Inspection;
using AgentGateway.Proxy.Policy;
using AgentGateway.Proxy.Provenance;
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

    public required InboundPolicy Inbound { get; init; }

    public required AgentDirectory Agents { get; init; }

    public required CredentialSet Credentials { get; init; }

    /// <summary>Every grant, compiled, by name.</summary>
    public required FrozenDictionary<string, Grant> Grants { get; init; }

    public required PolicyOptions Policy { get; init; }

    public required string? Redis { get; init; }

    /// <summary>Signs provenance assertions and publishes its keys.</summary>
    public required ProvenanceSigner Provenance { get; init; }

    /// <summary>Who may call the admin API, and when an agent counts as dormant.</summary>
    public AdminPolicy Admin { get; init; } = AdminPolicy.None;

    /// <summary>The audit file (fixed for the process), or null.</summary>
    public string? AuditPath { get; init; }

    /// <summary>The databases agents reach on the gateway's PostgreSQL listeners, and the grants that open them.</summary>
    public Database.DatabaseCatalog Databases { get; init; } = Database.DatabaseCatalog.Empty;
}

/// <summary>A proxied route as the gateway sees it: which credential its hop gets, which bodies it inspects.</summary>
/// <param name="RouteId">The YARP route id.</param>
/// <param name="CredentialName">The hop credential's name, or <see cref="CredentialName.None"/>.</param>
/// <param name="Credential">The source, or null when the hop needs none.</param>
/// <param name="Inspect">Which bodies are read and decided on (<c>Metadata:Inspect</c>).</param>
public sealed record GatewayRoute(string RouteId, string CredentialName, ICredentialSource? Credential, BodyKind Inspect)
{
    /// <summary>Send the upstream a signed provenance assertion (<c>Metadata:Provenance = true</c>).</summary>
    public bool Provenance { get; init; }

    /// <summary>On LLM routes: whose request shapes it speaks, so the model is read where that
    /// provider reads it (<c>Metadata:LlmProvider</c>, default OpenAI).</summary>
    public LlmProvider LlmProvider { get; init; }

    /// <summary>WebSockets may open on this route (<c>Metadata:Upgrade = WebSocket</c>); every other
    /// protocol upgrade, and WebSockets elsewhere, are refused.</summary>
    public bool WebSockets { get; init; }
}

/// <summary>The admin API's callers (an issuer and its allowed subjects) and the dormancy period.</summary>
public sealed record AdminPolicy(string? Issuer, FrozenSet<string> Subjects, TimeSpan DormantAfter)
{
    public static AdminPolicy None { get; } = new(null, FrozenSet<string>.Empty, TimeSpan.FromDays(7));

    /// <summary>Templates for just-in-time registration, by name.</summary>
    public FrozenDictionary<string, AgentTemplate> Templates { get; init; } = FrozenDictionary<string, AgentTemplate>.Empty;

    /// <summary>Operators must present DPoP-bound tokens.</summary>
    public bool RequireDpop { get; init; }

    /// <summary>Where operators reach the admin API: a DPoP proof's <c>htu</c> names one of these.</summary>
    public PublicOrigins PublicOrigins { get; init; } = PublicOrigins.Listener;
}

/// <summary>The most an ephemeral agent registered from this template may get.</summary>
public sealed record AgentTemplate(string Name, FrozenSet<string> Grants, FrozenSet<string> Issuers, TimeSpan MaxTimeToLive);
