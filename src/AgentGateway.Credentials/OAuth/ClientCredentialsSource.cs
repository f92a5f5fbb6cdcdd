using AgentGateway.Credentials.Caching;
using Duende.IdentityModel.Client;

namespace AgentGateway.Credentials.OAuth;

/// <summary>
/// OAuth 2.1 client-credentials tokens (RFC 6749 §4.4) with RFC 8707 resource indicators, one per
/// credential for every agent and replica, cached in <see cref="TokenCache"/>.
/// </summary>
internal sealed class ClientCredentialsSource(
    OAuthClientCredentialsOptions options, IClientAuthenticator authenticator, TokenEndpointClient endpoint, string cacheKey, TokenCache cache)
    : OAuthTokenSource(options.Name, options.Header, authenticator, endpoint.Timeout, cache)
{
    public override CredentialKind Kind => CredentialKind.OAuthClientCredentials;

    internal string CacheKey => cacheKey;

    public override ValueTask<CredentialResult> GetAsync(CredentialRequest request, CancellationToken cancellationToken) =>
        GetCachedAsync(cacheKey, agentId: null, this, static (s, ct) => s.FetchAsync(ct), cancellationToken);

    public override ValueTask<bool> InvalidateAsync(CredentialRequest request, HopCredential used, CancellationToken cancellationToken) =>
        InvalidateKeyAsync(cacheKey, used, cancellationToken);

    /// <summary>Everything that shapes the token.</summary>
    internal static TokenCacheKeyParts CacheKeyParts(OAuthClientCredentialsOptions o, string keyMaterial) =>
        new("client_credentials", o.Client, keyMaterial, o.Scopes, o.Resources, []);

    private ValueTask<CachedToken> FetchAsync(CancellationToken cancellationToken) =>
        endpoint.RequestAsync(this, static async (http, s, ct) => await http.RequestClientCredentialsTokenAsync(await s.BuildRequestAsync(ct), ct), notAfter: null, cancellationToken);

    private async ValueTask<ClientCredentialsTokenRequest> BuildRequestAsync(CancellationToken cancellationToken)
    {
        var request = new ClientCredentialsTokenRequest
        {
            Scope = options.Scopes.Count > 0 ? string.Join(' ', options.Scopes) : null,
        };
        foreach (var resource in options.Resources)
        {
            request.Resource.Add(resource);
        }

        return await endpoint.PrepareAsync(request, cancellationToken);
    }
}
