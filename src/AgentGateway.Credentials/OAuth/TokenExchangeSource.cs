using AgentGateway.Credentials.Caching;
using AgentGateway.Credentials.Secrets;
using Duende.IdentityModel;
using Duende.IdentityModel.Client;

namespace AgentGateway.Credentials.OAuth;

/// <summary>
/// On-behalf-of tokens through RFC 8693 token exchange. The delegating user's token is the
/// subject token and, unless configured otherwise, the agent's own token is the actor token, so
/// the issued token names both the user and the agent. Every other parameter (scopes, resources,
/// audience, client) comes from configuration, never from the request. Tokens are cached per
/// (user, agent, credential parameters) and never served past the user token's expiry.
/// </summary>
internal sealed class TokenExchangeSource : ICredentialSource
{
    private readonly OAuthTokenExchangeDefinition _definition;
    private readonly TokenEndpointClient _endpoint;
    private readonly TokenCache _cache;
    private readonly SecretValue _clientSecret;

    public TokenExchangeSource(OAuthTokenExchangeDefinition definition, SecretValue clientSecret, TokenEndpointClient endpoint, TokenCache cache)
    {
        _definition = definition;
        _clientSecret = clientSecret;
        _endpoint = endpoint;
        _cache = cache;
    }

    public string Name => _definition.Name;

    public CredentialKind Kind => CredentialKind.OAuthTokenExchange;

    public string HeaderName => _definition.Header;

    public bool RequiresDelegation => true;

    public async ValueTask<CredentialResult> GetAsync(CredentialRequest request, CancellationToken cancellationToken)
    {
        if (request.Delegation is null)
        {
            return CredentialResult.Failure(new CredentialError(Name, $"credential '{Name}' acts on behalf of a user, and the request carries no delegation"));
        }

        if (_definition.SendActorToken && string.IsNullOrEmpty(request.AgentToken))
        {
            return CredentialResult.Failure(new CredentialError(Name, $"credential '{Name}' needs the agent's own token as actor token"));
        }

        try
        {
            var key = CacheKeyFor(_definition, _clientSecret, request.AgentId, request.Delegation);
            var (token, source) = await _cache.GetOrFetchAsync(key, _endpoint.Timeout, (Source: this, Request: request), static (s, ct) => s.Source.FetchAsync(s.Request, ct), cancellationToken);
            return CredentialResult.Success(new HopCredential(Name, Kind, HeaderName, token.BearerHeaderValue, token.Fingerprint, source, token.ExpiresAt));
        }
        catch (CredentialFetchException ex)
        {
            return CredentialResult.Failure(new CredentialError(Name, ex.Message));
        }
    }

    public ValueTask InvalidateAsync(CredentialRequest request, HopCredential used, CancellationToken cancellationToken) =>
        request.Delegation is { } delegation
            ? _cache.InvalidateAsync(CacheKeyFor(_definition, _clientSecret, request.AgentId, delegation), used.Fingerprint, cancellationToken)
            : ValueTask.CompletedTask;

    /// <summary>One entry per (user, agent) and every parameter of the exchange. The user is named
    /// by issuer and subject, not by token: a user's next token reuses the entry (which stays
    /// bounded by the expiry of the token it was obtained with).</summary>
    internal static string CacheKeyFor(OAuthTokenExchangeDefinition d, SecretValue secret, string agentId, Delegation delegation) =>
        TokenCacheKey.For(
            OidcConstants.GrantTypes.TokenExchange,
            d.Client,
            secret,
            d.Scopes,
            d.Resources,
            d.Audience,
            d.SendActorToken ? "actor" : "no-actor",
            agentId,
            delegation.IssuerName,
            delegation.Subject);

    private ValueTask<CachedToken> FetchAsync(CredentialRequest request, CancellationToken cancellationToken) =>
        _endpoint.RequestAsync(
            (Source: this, Request: request),
            static (http, s, ct) => http.RequestTokenExchangeTokenAsync(s.Source.BuildRequest(s.Request), ct),
            notAfter: request.Delegation!.ExpiresAt,
            cancellationToken);

    private TokenExchangeTokenRequest BuildRequest(CredentialRequest request)
    {
        var exchange = _endpoint.Prepare(new TokenExchangeTokenRequest
        {
            SubjectToken = request.Delegation!.Token,
            SubjectTokenType = OidcConstants.TokenTypeIdentifiers.AccessToken,
            RequestedTokenType = OidcConstants.TokenTypeIdentifiers.AccessToken,
            Scope = _definition.Scopes.Count > 0 ? string.Join(' ', _definition.Scopes) : null,
            Audience = _definition.Audience,
        });
        if (_definition.SendActorToken)
        {
            exchange.ActorToken = request.AgentToken;
            exchange.ActorTokenType = OidcConstants.TokenTypeIdentifiers.AccessToken;
        }

        foreach (var resource in _definition.Resources)
        {
            exchange.Parameters.Add(OidcConstants.TokenRequest.Resource, resource);
        }

        return exchange;
    }
}
