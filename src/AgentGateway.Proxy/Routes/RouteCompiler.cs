using System.Collections.Frozen;
using AgentGateway.Configuration;
using AgentGateway.Credentials;
using AgentGateway.Proxy.Identity;
using AgentGateway.Proxy.Inspection;
using AgentGateway.Proxy.Upstream;
using Yarp.ReverseProxy.Configuration;

namespace AgentGateway.Proxy.Routes;

/// <summary>
/// Compiles the gateway's metadata on each YARP route into its <see cref="GatewayRoute"/>: the hop
/// credential (which must exist, act for users only where delegation is trusted, and travel on the
/// connection for client certificates), the bodies inspected, the LLM provider, provenance and
/// tunnels. A route whose credential is missing or failed still compiles, credential-less, so
/// grants naming it are not reported as well.
/// </summary>
public static class RouteCompiler
{
    public static FrozenDictionary<string, GatewayRoute> Compile(
        IReadOnlyList<RouteConfig> routes,
        IReadOnlyList<ClusterConfig> clusters,
        IReadOnlyList<CredentialOptions> definitions,
        CredentialSet credentialSet,
        DelegationOptions delegation,
        ConfigProblems problems)
    {
        var defined = definitions.Select(d => d.Name).ToHashSet(StringComparer.OrdinalIgnoreCase);
        var result = new Dictionary<string, GatewayRoute>(StringComparer.OrdinalIgnoreCase);
        foreach (var route in routes)
        {
            var inspect = BodyKind.None;
            if (route.Metadata?.TryGetValue(RouteMetadata.Inspect, out var kind) == true
                && (!Enum.TryParse(kind, ignoreCase: false, out inspect) || !Enum.IsDefined(inspect)))
            {
                problems.Add($"ReverseProxy:Routes:{route.RouteId}:Metadata:{RouteMetadata.Inspect}", $"'{kind}' is not one of: {string.Join(", ", Enum.GetNames<BodyKind>())}");
            }

            // Every route says what it injects, if only that it injects nothing: a forgotten key must
            // not silently forward with no credential. The route is still known, so grants naming it
            // are not reported as well.
            if (route.Metadata?.TryGetValue(RouteMetadata.Credential, out var name) != true || string.IsNullOrWhiteSpace(name))
            {
                problems.Add(
                    $"ReverseProxy:Routes:{route.RouteId}",
                    $"route '{route.RouteId}' names no hop credential: set Metadata:{RouteMetadata.Credential} to a credential, or to '{CredentialName.None}'");
                result[route.RouteId] = new GatewayRoute(route.RouteId, CredentialName.None, null, inspect);
                continue;
            }

            if (string.Equals(name, CredentialName.None, StringComparison.OrdinalIgnoreCase))
            {
                result[route.RouteId] = new GatewayRoute(route.RouteId, CredentialName.None, null, inspect);
            }
            else if (!defined.Contains(name))
            {
                result[route.RouteId] = new GatewayRoute(route.RouteId, CredentialName.None, null, inspect);
                problems.Add($"ReverseProxy:Routes:{route.RouteId}:Metadata:{RouteMetadata.Credential}", $"names credential '{name}', which is not configured under Gateway:Credentials");
            }
            else if (credentialSet.TryGet(name, out var source))
            {
                if (source!.RequiresDelegation && !delegation.Enabled)
                {
                    problems.Add(
                        $"ReverseProxy:Routes:{route.RouteId}:Metadata:{RouteMetadata.Credential}",
                        $"credential '{name}' acts on behalf of users, but no issuer is trusted for delegation (Gateway:Inbound:Delegation:Issuers)");
                }

                if (source.Kind == CredentialKind.MtlsClientCertificate && !ClusterPresents(clusters, route.ClusterId, source.Name))
                {
                    problems.Add(
                        $"ReverseProxy:Routes:{route.RouteId}:Metadata:{RouteMetadata.Credential}",
                        $"credential '{name}' is a client certificate, which travels on the connection: cluster '{route.ClusterId}' must name it in Metadata:{ClientCertificateHttpClientFactory.ClusterMetadataKey}");
                }

                result[route.RouteId] = new GatewayRoute(route.RouteId, source.Name, source, inspect);
            }
            else
            {
                // The credential failed to build (already reported); the route still exists for the grants that name it.
                result[route.RouteId] = new GatewayRoute(route.RouteId, CredentialName.None, null, inspect);
            }
        }

        // Which provider's shapes an LLM route speaks: where the gateway reads the model.
        foreach (var route in routes)
        {
            if (route.Metadata?.TryGetValue(RouteMetadata.LlmProvider, out var provider) != true || !result.TryGetValue(route.RouteId, out var compiled))
            {
                continue;
            }

            var at = $"ReverseProxy:Routes:{route.RouteId}:Metadata:{RouteMetadata.LlmProvider}";
            if (!Enum.TryParse<LlmProvider>(provider, ignoreCase: false, out var parsed) || !Enum.IsDefined(parsed) || !char.IsAsciiLetter(provider![0]))
            {
                problems.Add(at, $"'{provider}' is not one of: {string.Join(", ", Enum.GetNames<LlmProvider>())}");
            }
            else if (compiled.Inspect != BodyKind.Llm)
            {
                problems.Add(at, $"names the provider of LLM requests, and the route does not inspect them; set its Metadata:{RouteMetadata.Inspect} to Llm");
            }
            else
            {
                result[route.RouteId] = compiled with { LlmProvider = parsed };
            }
        }

        // Provenance is a per-route switch, whatever the route's credential.
        foreach (var route in routes)
        {
            if (route.Metadata?.TryGetValue(RouteMetadata.Provenance, out var flag) == true && result.TryGetValue(route.RouteId, out var compiled))
            {
                if (bool.TryParse(flag, out var on))
                {
                    result[route.RouteId] = compiled with { Provenance = on };
                }
                else
                {
                    problems.Add($"ReverseProxy:Routes:{route.RouteId}:Metadata:{RouteMetadata.Provenance}", "must be true or false");
                }
            }
        }

        // Tunnels are opt-in per route, and WebSocket is the only kind: its messages are framed, so
        // the gateway can count them and read what comes back to the agent. A route that inspects
        // bodies never opens one: the messages would pass uninspected.
        foreach (var route in routes)
        {
            if (route.Metadata?.TryGetValue(RouteMetadata.Upgrade, out var upgrade) != true || !result.TryGetValue(route.RouteId, out var compiled))
            {
                continue;
            }

            var path = $"ReverseProxy:Routes:{route.RouteId}:Metadata:{RouteMetadata.Upgrade}";
            if (!string.Equals(upgrade, "WebSocket", StringComparison.Ordinal))
            {
                problems.Add(path, "must be WebSocket, the only protocol upgrade the gateway lets through (leave it out for none)");
            }
            else if (compiled.Inspect != BodyKind.None)
            {
                problems.Add(path, $"a route that inspects bodies (Metadata:{RouteMetadata.Inspect}) never opens tunnels: their messages would not be inspected");
            }
            else
            {
                result[route.RouteId] = compiled with { WebSockets = true };
            }
        }

        return result.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase);
    }

    private static bool ClusterPresents(IReadOnlyList<ClusterConfig> clusters, string? clusterId, string credential) =>
        clusters.FirstOrDefault(c => string.Equals(c.ClusterId, clusterId, StringComparison.OrdinalIgnoreCase)) is { Metadata: { } metadata }
        && metadata.TryGetValue(ClientCertificateHttpClientFactory.ClusterMetadataKey, out var named)
        && string.Equals(named, credential, StringComparison.OrdinalIgnoreCase);
}
