using System.Collections.Concurrent;
using AgentGateway.Credentials.Caching;
using AgentGateway.Credentials.OAuth;
using Duende.IdentityModel.Client;

namespace AgentGateway.Credentials.Mcp;

/// <summary>
/// Tokens for one MCP server (MCP authorization, 2025-06-18): client credentials at the token
/// endpoint discovered from the server's metadata, with the server as RFC 8707 <c>resource</c> so
/// the token is good for that server only and cannot be replayed at another. Shared by every agent
/// that uses the hop, cached like any OAuth token; a token the server refuses is dropped.
/// </summary>
internal sealed class McpOAuthSource : OAuthTokenSource
{
    private readonly McpOAuthOptions _options;
    private readonly AuthorizationServerDiscovery _discovery;
    private readonly Func<OAuthClient, TokenEndpointClient> _endpointFor;
    private readonly ConcurrentDictionary<Uri, TokenEndpointClient> _endpoints = new();

    public McpOAuthSource(
        McpOAuthOptions options,
        IClientAuthenticator authenticator,
        AuthorizationServerDiscovery discovery,
        Func<OAuthClient, TokenEndpointClient> endpointFor,
        string cacheKey,
        TokenCache cache)
        // Discovery and the token request share one fetch: each may take the configured timeout.
        : base(options.Name, options.Header, authenticator, options.Timeout * 2, cache)
    {
        _options = options;
        _discovery = discovery;
        _endpointFor = endpointFor;
        CacheKey = cacheKey;
    }

    public override CredentialKind Kind => CredentialKind.McpOAuth;

    internal string CacheKey { get; }

    public override ValueTask<CredentialResult> GetAsync(CredentialRequest request, CancellationToken cancellationToken) =>
        GetCachedAsync(CacheKey, agentId: null, this, static (s, ct) => s.FetchAsync(ct), cancellationToken);

    public override ValueTask<bool> InvalidateAsync(CredentialRequest request, HopCredential used, CancellationToken cancellationToken) =>
        InvalidateKeyAsync(CacheKey, used, cancellationToken);

    /// <summary>The resource and the allowed servers shape the token; the discovered endpoint is
    /// whichever allowed server the metadata names, so it is not part of the key.</summary>
    internal static TokenCacheKeyParts CacheKeyParts(McpOAuthOptions d, string keyMaterial) =>
        new(
            "mcp:client_credentials",
            d.ClientAt(d.Resource),
            keyMaterial,
            d.Scopes,
            [d.Resource.AbsoluteUri],
            [.. d.AuthorizationServers.Select(s => s.AbsoluteUri).Order(StringComparer.Ordinal)]);

    private async ValueTask<CachedToken> FetchAsync(CancellationToken cancellationToken)
    {
        var tokenEndpoint = await _discovery.GetTokenEndpointAsync(cancellationToken);
        var endpoint = _endpoints.GetOrAdd(tokenEndpoint, static (uri, s) => s._endpointFor(s._options.ClientAt(uri)), this);
        try
        {
            return await endpoint.RequestAsync(
                (Source: this, Endpoint: endpoint),
                static async (http, s, ct) => await http.RequestClientCredentialsTokenAsync(await s.Source.BuildRequestAsync(s.Endpoint, ct), ct),
                notAfter: null,
                cancellationToken);
        }
        catch (CredentialFetchException)
        {
            // The server may have moved; look again on the next fetch rather than in an hour.
            _discovery.Forget();
            throw;
        }
    }

    private async ValueTask<ClientCredentialsTokenRequest> BuildRequestAsync(TokenEndpointClient endpoint, CancellationToken cancellationToken)
    {
        var request = new ClientCredentialsTokenRequest
        {
            Scope = _options.Scopes.Count > 0 ? string.Join(' ', _options.Scopes) : null,
        };
        request.Resource.Add(_options.Resource.AbsoluteUri);
        return await endpoint.PrepareAsync(request, cancellationToken);
    }
}
