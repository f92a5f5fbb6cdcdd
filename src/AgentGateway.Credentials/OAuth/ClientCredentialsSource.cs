using AgentGateway.Credentials.Caching;
using AgentGateway.Credentials.Secrets;
using Duende.IdentityModel.Client;

namespace AgentGateway.Credentials.OAuth;

/// <summary>
/// OAuth 2.1 client-credentials tokens (RFC 6749 §4.4) with RFC 8707 resource indicators, one per
/// credential for every agent and replica, cached in <see cref="TokenCache"/>.
/// </summary>
internal sealed class ClientCredentialsSource : ICredentialSource
{
    private readonly OAuthClientCredentialsDefinition _definition;
    private readonly TokenEndpointClient _endpoint;
    private readonly TokenCache _cache;

    public ClientCredentialsSource(OAuthClientCredentialsDefinition definition, SecretValue clientSecret, TokenEndpointClient endpoint, TokenCache cache)
    {
        _definition = definition;
        _endpoint = endpoint;
        _cache = cache;
        CacheKey = CacheKeyFor(definition, clientSecret);
    }

    public string Name => _definition.Name;

    public CredentialKind Kind => CredentialKind.OAuthClientCredentials;

    public string HeaderName => _definition.Header;

    internal string CacheKey { get; }

    public async ValueTask<CredentialResult> GetAsync(CredentialRequest request, CancellationToken cancellationToken)
    {
        try
        {
            var (token, source) = await _cache.GetOrFetchAsync(CacheKey, _endpoint.Timeout, this, static (s, ct) => s.FetchAsync(ct), cancellationToken);
            return CredentialResult.Success(new HopCredential(Name, Kind, HeaderName, token.BearerHeaderValue, token.Fingerprint, source, token.ExpiresAt));
        }
        catch (CredentialFetchException ex)
        {
            return CredentialResult.Failure(new CredentialError(Name, ex.Message));
        }
    }

    public ValueTask InvalidateAsync(CredentialRequest request, HopCredential used, CancellationToken cancellationToken) =>
        _cache.InvalidateAsync(CacheKey, used.Fingerprint, cancellationToken);

    internal static string CacheKeyFor(OAuthClientCredentialsDefinition d, SecretValue secret) =>
        TokenCacheKey.For("client_credentials", d.Client, secret, d.Scopes, d.Resources);

    private ValueTask<CachedToken> FetchAsync(CancellationToken cancellationToken) =>
        _endpoint.RequestAsync(this, static (http, s, ct) => http.RequestClientCredentialsTokenAsync(s.BuildRequest(), ct), notAfter: null, cancellationToken);

    private ClientCredentialsTokenRequest BuildRequest()
    {
        var request = _endpoint.Prepare(new ClientCredentialsTokenRequest
        {
            Scope = _definition.Scopes.Count > 0 ? string.Join(' ', _definition.Scopes) : null,
        });
        foreach (var resource in _definition.Resources)
        {
            request.Resource.Add(resource);
        }

        return request;
    }
}
