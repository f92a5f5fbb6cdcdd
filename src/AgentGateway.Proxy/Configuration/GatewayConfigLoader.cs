using AgentGateway.Configuration;
using AgentGateway.Credentials;
using AgentGateway.Credentials.Caching;
using AgentGateway.Proxy.Audit;
using AgentGateway.Proxy.Database;
using AgentGateway.Proxy.Identity;
using AgentGateway.Proxy.Inventory;
using AgentGateway.Proxy.Policy;
using AgentGateway.Proxy.Provenance;
using AgentGateway.Proxy.Routes;
using AgentGateway.Proxy.Stripping;
using AgentGateway.Proxy.Upstream;
using Microsoft.Extensions.Configuration;
using Yarp.ReverseProxy.Configuration;

namespace AgentGateway.Proxy.Configuration;

/// <summary>The outcome of a load: a revision, or every problem found.</summary>
public sealed record ConfigLoadResult(GatewayRevision? Revision, IReadOnlyList<ConfigProblem> Problems)
{
    public bool Succeeded => Revision is not null;
}

/// <summary>
/// Turns a configuration snapshot into a <see cref="GatewayRevision"/>, collecting every problem
/// — YARP's own route and cluster validation included — with the configuration path of each.
/// Each section is read, validated and compiled by the feature that owns it; this class only
/// calls them in the order their references need (issuers before agents, credentials before
/// routes, routes before grants) and assembles the revision when none found a problem.
/// Makes no network call: keys and tokens are fetched when first used.
/// </summary>
public sealed class GatewayConfigLoader(
    IConfigValidator proxyValidator,
    IssuerKeySources issuerKeys,
    CredentialSetFactory credentials,
    CredentialFingerprint fingerprint,
    TimeProvider time)
{
    /// <summary>The sections of <c>Gateway</c>; any other key there is a problem.</summary>
    public static IReadOnlyList<string> GatewaySections { get; } = ["Redis", "Cache", "Inbound", "Agents", "Grants", "Credentials", "Policy", "Audit", "Admin", "Provenance", "Databases"];

    public async Task<ConfigLoadResult> LoadAsync(IConfiguration configuration, long number, CancellationToken cancellationToken)
    {
        var problems = new ConfigProblems();

        var proxy = configuration.GetSection("ReverseProxy");
        if (!proxy.Exists())
        {
            problems.Add("ReverseProxy", "is missing: routes and clusters are configured here (YARP's schema)");
        }

        var (routes, clusters) = ProxyConfigReader.Read(proxy, problems);
        await ValidateProxyAsync(routes, clusters, problems);

        var gateway = configuration.GetSection("Gateway");
        foreach (var child in gateway.GetChildren().Where(c => !GatewaySections.Contains(c.Key, StringComparer.OrdinalIgnoreCase)))
        {
            problems.Add(child.Path, $"unknown setting '{child.Key}'; expected one of: {string.Join(", ", GatewaySections)}");
        }

        var inbound = InboundCompiler.Compile(gateway.GetSection("Inbound"), issuerKeys, problems);
        var definitions = credentials.Read(gateway.GetSection("Credentials"), problems);
        var process = ProcessSettings.Read(configuration);
        var cache = CacheConfigReader.Read(gateway.GetSection("Cache"), shared: process.Redis is not null, problems);
        var credentialSet = credentials.Build(definitions, cache, "Gateway:Credentials", problems);
        ClusterRules.Check(clusters, definitions, problems);
        var gatewayRoutes = RouteCompiler.Compile(routes, clusters, definitions, credentialSet, inbound.Policy.Delegation, problems);
        var grants = GrantCompiler.Compile(gateway.GetSection("Grants"), gatewayRoutes, problems);
        var policy = PolicyCompiler.Compile(gateway.GetSection("Policy"), grants, problems);
        AuditCompiler.Check(gateway.GetSection("Audit"), problems);
        var admin = AdminCompiler.Compile(gateway.GetSection("Admin"), inbound.IssuerNames, grants, problems);
        var provenance = ProvenanceCompiler.Compile(gateway.GetSection("Provenance"), time, problems);
        var agents = AgentDirectoryCompiler.Compile(gateway.GetSection("Agents"), inbound.IssuerNames, grants, problems);
        ForwardHeaders.Check(
            routes,
            [inbound.Policy.Delegation.Header, policy.TaskHeader, inbound.Policy.StaticKeyHeader ?? policy.TaskHeader, provenance?.Options.Header ?? policy.TaskHeader],
            problems);
        var databases = DatabaseCompiler.Compile(gateway.GetSection("Databases"), gateway.GetSection("Grants"), grants, credentialSet, fingerprint, time, problems);

        if (problems.Any)
        {
            return new ConfigLoadResult(null, problems.Items);
        }

        return new ConfigLoadResult(
            new GatewayRevision
            {
                Number = number,
                LoadedAt = time.GetUtcNow(),
                Routes = routes,
                Clusters = clusters,
                GatewayRoutes = gatewayRoutes,
                Inbound = inbound.Policy,
                Agents = agents,
                Credentials = credentialSet,
                Grants = grants,
                Policy = policy,
                Process = process,
                Admin = admin,
                Provenance = provenance!,
                Databases = databases,
            },
            []);
    }

    private async Task ValidateProxyAsync(IReadOnlyList<RouteConfig> routes, IReadOnlyList<ClusterConfig> clusters, ConfigProblems problems)
    {
        var clusterIds = clusters.Select(c => c.ClusterId).ToHashSet(StringComparer.OrdinalIgnoreCase);
        foreach (var route in routes)
        {
            foreach (var error in await proxyValidator.ValidateRouteAsync(route))
            {
                problems.Add($"ReverseProxy:Routes:{route.RouteId}", error.Message);
            }

            if (route.AuthorizationPolicy is not null)
            {
                // The gateway decides who may use a route by its grants; ASP.NET Core authorization
                // is not part of its pipeline (AddAgentGateway), so a policy here would decide nothing.
                problems.Add($"ReverseProxy:Routes:{route.RouteId}:AuthorizationPolicy", "is not used by the gateway, which authorizes every request by its grants (Gateway:Grants); remove it");
            }

            if (route.ClusterId is { } clusterId && !clusterIds.Contains(clusterId))
            {
                problems.Add($"ReverseProxy:Routes:{route.RouteId}:ClusterId", $"names cluster '{clusterId}', which is not configured");
            }
        }

        foreach (var cluster in clusters)
        {
            foreach (var error in await proxyValidator.ValidateClusterAsync(cluster))
            {
                problems.Add($"ReverseProxy:Clusters:{cluster.ClusterId}", error.Message);
            }
        }
    }
}
