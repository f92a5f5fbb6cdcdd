using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.Protocols;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;

namespace AgentGateway.Proxy.Identity;

/// <summary>
/// Keeps one <see cref="IssuerKeySource"/> per issuer metadata address
/// across configuration reloads, so a reload neither refetches every JWKS nor forgets the last
/// good keys of an issuer whose endpoint is down right now.
/// </summary>
public sealed class IssuerKeySources(IHttpClientFactory httpClients, TimeProvider time, ILoggerFactory loggers)
{
    /// <summary>No redirects (a redirect could swap in another party's keys), bounded time.</summary>
    public const string HttpClientName = "AgentGateway.Proxy.Identity.Metadata";

    private readonly ConcurrentDictionary<KeySourceKey, IssuerKeySource> _sources = new();

    public IConfigurationManager<OpenIdConnectConfiguration> Get(Uri metadataAddress, bool discovery, string issuer, TimeSpan refreshInterval)
    {
        var key = new KeySourceKey(metadataAddress.AbsoluteUri, discovery, issuer, refreshInterval);
        return _sources.GetOrAdd(key, k =>
        {
            var documents = new HttpDocumentRetriever(httpClients.CreateClient(HttpClientName))
            {
                // Validation already refused plain http except on loopback.
                RequireHttps = false,
            };
            IConfigurationRetriever<OpenIdConnectConfiguration> retriever = k.Discovery
                ? new OpenIdConnectConfigurationRetriever()
                : new JwksConfigurationRetriever(k.Issuer);
            return new IssuerKeySource(k.Address, retriever, documents, k.RefreshInterval, time, loggers.CreateLogger<IssuerKeySource>());
        });
    }

    private readonly record struct KeySourceKey(string Address, bool Discovery, string Issuer, TimeSpan RefreshInterval);
}
