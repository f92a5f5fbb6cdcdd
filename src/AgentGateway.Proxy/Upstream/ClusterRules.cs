using AgentGateway.Configuration;
using AgentGateway.Credentials;
using AgentGateway.Credentials.Certificates;
using Yarp.ReverseProxy.Configuration;

namespace AgentGateway.Proxy.Upstream;

/// <summary>The gateway's rules for YARP clusters, beyond YARP's own validation.</summary>
public static class ClusterRules
{
    /// <summary>Cluster-level security: a client certificate goes only to the HTTPS destinations of
    /// the cluster that names it, and no cluster may switch off server-certificate checks (the
    /// gateway would hand hop credentials to whoever sits on the path).</summary>
    public static void Check(IReadOnlyList<ClusterConfig> clusters, IReadOnlyList<CredentialOptions> definitions, ConfigProblems problems)
    {
        foreach (var cluster in clusters)
        {
            var path = $"ReverseProxy:Clusters:{cluster.ClusterId}";
            if (cluster.HttpClient?.DangerousAcceptAnyServerCertificate == true)
            {
                problems.Add(path + ":HttpClient:DangerousAcceptAnyServerCertificate",
                    "is refused: hop credentials would go to anyone on the path; trust a private CA with an MtlsClientCertificate credential's ServerCertificateAuthority instead");
            }

            if (cluster.Metadata?.TryGetValue(ClientCertificateHttpClientFactory.ClusterMetadataKey, out var name) != true)
            {
                continue;
            }

            var metadataPath = $"{path}:Metadata:{ClientCertificateHttpClientFactory.ClusterMetadataKey}";
            var definition = definitions.FirstOrDefault(d => string.Equals(d.Name, name, StringComparison.OrdinalIgnoreCase));
            if (definition is not MtlsClientCertificateOptions)
            {
                problems.Add(metadataPath, definition is null
                    ? $"names credential '{name}', which is not configured under Gateway:Credentials"
                    : $"names credential '{name}' of kind {definition.Kind}; a cluster's client certificate must be of kind {CredentialKind.MtlsClientCertificate}");
            }

            foreach (var (id, destination) in cluster.Destinations ?? new Dictionary<string, DestinationConfig>())
            {
                if (!Uri.TryCreate(destination.Address, UriKind.Absolute, out var address) || address.Scheme != Uri.UriSchemeHttps)
                {
                    problems.Add($"{path}:Destinations:{id}:Address", "must be https: the cluster presents a client certificate, which only TLS carries");
                }
            }
        }
    }
}
