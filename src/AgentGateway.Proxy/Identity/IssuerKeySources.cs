using System.Collections.Concurrent;
using Microsoft.IdentityModel.Protocols;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;

namespace AgentGateway.Proxy.Identity;

/// <summary>
/// Keeps one key source (a <see cref="ConfigurationManager{T}"/>) per issuer metadata address
/// across configuration reloads, so a reload neither refetches every JWKS nor forgets the last
/// good keys of an issuer whose endpoint is down right now.
/// </summary>
public sealed class IssuerKeySources(IHttpClientFactory httpClients)
{
    /// <summary>No redirects (a redirect could swap in another party's keys), bounded time.</summary>
    public const string HttpClientName = "AgentGateway.Proxy.Identity.Metadata";

    private readonly ConcurrentDictionary<KeySourceKey, ConfigurationManager<OpenIdConnectConfiguration>> _sources = new();

    public IConfigurationManager<OpenIdConnectConfiguration> Get(Uri metadataAddress, bool discovery, string issuer, TimeSpan refreshInterval)
    {
        var key = new KeySourceKey(metadataAddress.AbsoluteUri, discovery, issuer, refreshInterval);
        return _sources.GetOrAdd(key, static (k, http) =>
        {
            var documents = new HttpDocumentRetriever(http.CreateClient(HttpClientName))
            {
                // Validation already refused plain http except on loopback.
                RequireHttps = false,
            };
            IConfigurationRetriever<OpenIdConnectConfiguration> retriever = k.Discovery
                ? new OpenIdConnectConfigurationRetriever()
                : new JwksConfigurationRetriever(k.Issuer);
            return new ConfigurationManager<OpenIdConnectConfiguration>(k.Address, retriever, documents)
            {
                RefreshInterval = k.RefreshInterval,
                AutomaticRefreshInterval = TimeSpan.FromHours(12),
            };
        }, httpClients);
    }

    private readonly record struct KeySourceKey(string Address, bool Discovery, string Issuer, TimeSpan RefreshInterval);
}
