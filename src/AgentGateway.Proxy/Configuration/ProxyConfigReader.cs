using System.Security.Authentication;
using AgentGateway.Configuration;
using Microsoft.Extensions.Configuration;
using Yarp.ReverseProxy.Configuration;

namespace AgentGateway.Proxy.Configuration;

/// <summary>
/// Reads YARP's own <c>ReverseProxy</c> section (schema unchanged) so that the routes and the
/// <c>Gateway</c> section are read from one configuration snapshot and validated together: one
/// revision, never a new route next to an old credential.
/// </summary>
internal static class ProxyConfigReader
{
    public static (IReadOnlyList<RouteConfig> Routes, IReadOnlyList<ClusterConfig> Clusters) Read(IConfigurationSection section, ConfigProblems problems)
    {
        var routes = new List<RouteConfig>();
        foreach (var entry in section.GetSection("Routes").GetChildren())
        {
            var route = SectionReader.Read<RouteConfig>(entry, problems);
            routes.Add(route with { RouteId = entry.Key });
        }

        var clusters = new List<ClusterConfig>();
        foreach (var entry in section.GetSection("Clusters").GetChildren())
        {
            var cluster = SectionReader.Read<ClusterConfig>(entry, problems) with { ClusterId = entry.Key };
            clusters.Add(FoldSslProtocols(entry, cluster, problems));
        }

        return (routes, clusters);
    }

    /// <summary>YARP's docs write <c>SslProtocols</c> as a list; the binder cannot OR a list into
    /// a flags enum, so fold it here as YARP's own reader does.</summary>
    private static ClusterConfig FoldSslProtocols(IConfigurationSection entry, ClusterConfig cluster, ConfigProblems problems)
    {
        var list = entry.GetSection("HttpClient:SslProtocols");
        if (cluster.HttpClient is null || list.Value is not null || !list.GetChildren().Any())
        {
            return cluster;
        }

        var combined = SslProtocols.None;
        foreach (var item in list.GetChildren())
        {
            if (Enum.TryParse<SslProtocols>(item.Value, ignoreCase: true, out var protocol))
            {
                combined |= protocol;
            }
            else
            {
                problems.Add(item.Path, $"'{item.Value}' is not an SSL protocol");
            }
        }

        return cluster with { HttpClient = cluster.HttpClient with { SslProtocols = combined } };
    }
}
