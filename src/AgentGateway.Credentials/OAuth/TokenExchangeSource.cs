using AgentGateway.Credentials.Caching;
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
internal sealed class TokenExchangeSource(OAuthTokenExchangeDefinition definition, ClientAuthenticator authenticator, TokenEndpointClient endpoint, TokenCache cache)
    : OAuthTokenSource(definition.Name, definition.Header, authenticator, endpoint.Timeout, cache)
{
    /// <summary>The key of everything configured; each (agent, user) key is derived from it per request.</summary>
    private readonly string _credentialKey = CredentialKeyFor(definition, authenticator.KeyMaterial);

    public override CredentialKind Kind => CredentialKind.OAuthTokenExchange;

    public override bool RequiresDelegation => true;

    public override ValueTask<CredentialResult> GetAsync(CredentialRequest request, CancellationToken cancellationToken)
    {
        if (request.Delegation is not { } delegation)
        {
            return ValueTask.FromResult(CredentialResult.Failure(new CredentialError(Name, $"credential '{Name}' acts on behalf of a user, and the request carries no delegation")));
        }

        if (definition.SendActorToken && string.IsNullOrEmpty(request.AgentToken))
        {
            return ValueTask.FromResult(CredentialResult.Failure(new CredentialError(Name, $"credential '{Name}' needs the agent's own token as actor token")));
        }

        var key = TokenCacheKey.Within(_credentialKey, request.AgentId, delegation.IssuerName, delegation.Subject);
        // Recorded under the agent, outside this revision, so revoking the agent purges it.
        return GetCachedAsync(key, request.AgentId, (Source: this, Request: request), static (s, ct) => s.Source.FetchAsync(s.Request, ct), cancellationToken);
    }

    public override ValueTask InvalidateAsync(CredentialRequest request, HopCredential used, CancellationToken cancellationToken) =>
        request.Delegation is { } delegation
            ? InvalidateKeyAsync(TokenCacheKey.Within(_credentialKey, request.AgentId, delegation.IssuerName, delegation.Subject), used, cancellationToken)
            : ValueTask.CompletedTask;

    /// <summary>One entry per (user, agent) and every parameter of the exchange. The user is named
    /// by issuer and subject, not by token: a user's next token reuses the entry (which stays
    /// bounded by the expiry of the token it was obtained with).</summary>
    internal static string CacheKeyFor(OAuthTokenExchangeDefinition d, string keyMaterial, string agentId, Delegation delegation) =>
        TokenCacheKey.Within(CredentialKeyFor(d, keyMaterial), agentId, delegation.IssuerName, delegation.Subject);

    private static string CredentialKeyFor(OAuthTokenExchangeDefinition d, string keyMaterial) =>
        TokenCacheKey.For(OidcConstants.GrantTypes.TokenExchange, d.Client, keyMaterial, d.Scopes, d.Resources, d.Audience, d.SendActorToken ? "actor" : "no-actor");

    private ValueTask<CachedToken> FetchAsync(CredentialRequest request, CancellationToken cancellationToken) =>
        endpoint.RequestAsync(
            (Source: this, Request: request),
            static (http, s, ct) => http.RequestTokenExchangeTokenAsync(s.Source.BuildRequest(s.Request), ct),
            notAfter: request.Delegation!.ExpiresAt,
            cancellationToken);

    private TokenExchangeTokenRequest BuildRequest(CredentialRequest request)
    {
        var exchange = endpoint.Prepare(new TokenExchangeTokenRequest
        {
            SubjectToken = request.Delegation!.Token,
            SubjectTokenType = OidcConstants.TokenTypeIdentifiers.AccessToken,
            RequestedTokenType = OidcConstants.TokenTypeIdentifiers.AccessToken,
            Scope = definition.Scopes.Count > 0 ? string.Join(' ', definition.Scopes) : null,
            Audience = definition.Audience,
        });
        if (definition.SendActorToken)
        {
            exchange.ActorToken = request.AgentToken;
            exchange.ActorTokenType = OidcConstants.TokenTypeIdentifiers.AccessToken;
        }

        foreach (var resource in definition.Resources)
        {
            exchange.Parameters.Add(OidcConstants.TokenRequest.Resource, resource);
        }

        return exchange;
    }
}
