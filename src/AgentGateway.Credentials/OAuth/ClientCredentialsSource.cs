using AgentGateway.Credentials.Caching;
using Duende.IdentityModel.Client;

namespace AgentGateway.Credentials.OAuth;

/// <summary>
/// OAuth 2.1 client-credentials tokens (RFC 6749 §4.4) with RFC 8707 resource indicators, one per
/// credential for every agent and replica, cached in <see cref="TokenCache"/>.
/// </summary>
internal sealed class ClientCredentialsSource(OAuthClientCredentialsDefinition definition, ClientAuthenticator authenticator, TokenEndpointClient endpoint, TokenCache cache)
    : OAuthTokenSource(definition.Name, definition.Header, authenticator, endpoint.Timeout, cache)
{
    public override CredentialKind Kind => CredentialKind.OAuthClientCredentials;

    internal string CacheKey { get; } = CacheKeyFor(definition, authenticator.KeyMaterial);

    public override ValueTask<CredentialResult> GetAsync(CredentialRequest request, CancellationToken cancellationToken) =>
        GetCachedAsync(CacheKey, agentId: null, this, static (s, ct) => s.FetchAsync(ct), cancellationToken);

    public override ValueTask InvalidateAsync(CredentialRequest request, HopCredential used, CancellationToken cancellationToken) =>
        InvalidateKeyAsync(CacheKey, used, cancellationToken);

    internal static string CacheKeyFor(OAuthClientCredentialsDefinition d, string keyMaterial) =>
        TokenCacheKey.For("client_credentials", d.Client, keyMaterial, d.Scopes, d.Resources);

    private ValueTask<CachedToken> FetchAsync(CancellationToken cancellationToken) =>
        endpoint.RequestAsync(this, static (http, s, ct) => http.RequestClientCredentialsTokenAsync(s.BuildRequest(), ct), notAfter: null, cancellationToken);

    private ClientCredentialsTokenRequest BuildRequest()
    {
        var request = endpoint.Prepare(new ClientCredentialsTokenRequest
        {
            Scope = definition.Scopes.Count > 0 ? string.Join(' ', definition.Scopes) : null,
        });
        foreach (var resource in definition.Resources)
        {
            request.Resource.Add(resource);
        }

        return request;
    }
}
