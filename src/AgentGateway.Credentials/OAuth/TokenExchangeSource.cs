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
/// <param name="credentialKey">The key of everything configured; each (agent, user) key is derived from it per request.</param>
internal sealed class TokenExchangeSource(
    OAuthTokenExchangeOptions options, IClientAuthenticator authenticator, TokenEndpointClient endpoint, ITokenCacheKeyGenerator keys, string credentialKey, TokenCache cache)
    : OAuthTokenSource(options.Name, options.Header, authenticator, endpoint.Timeout, cache)
{
    public override CredentialKind Kind => CredentialKind.OAuthTokenExchange;

    public override bool RequiresDelegation => true;

    public override ValueTask<CredentialResult> GetAsync(CredentialRequest request, CancellationToken cancellationToken)
    {
        if (request.Delegation is not { } delegation)
        {
            return ValueTask.FromResult(CredentialResult.Failure(new CredentialError(Name, $"credential '{Name}' acts on behalf of a user, and the request carries no delegation")));
        }

        if (options.SendActorToken && string.IsNullOrEmpty(request.AgentToken))
        {
            return ValueTask.FromResult(CredentialResult.Failure(new CredentialError(Name, $"credential '{Name}' needs the agent's own token as actor token")));
        }

        var key = keys.ForSubject(credentialKey, request.AgentId, delegation);
        // Recorded under the agent, outside this revision, so revoking the agent purges it.
        return GetCachedAsync(key, request.AgentId, (Source: this, Request: request), static (s, ct) => s.Source.FetchAsync(s.Request, ct), cancellationToken);
    }

    public override ValueTask<bool> InvalidateAsync(CredentialRequest request, HopCredential used, CancellationToken cancellationToken) =>
        request.Delegation is { } delegation
            ? InvalidateKeyAsync(keys.ForSubject(credentialKey, request.AgentId, delegation), used, cancellationToken)
            : ValueTask.FromResult(false);

    /// <summary>Every parameter of the exchange. Each (user, agent) gets its own entry under it; the
    /// user is named by issuer and subject, not by token: a user's next token reuses the entry
    /// (which stays bounded by the expiry of the token it was obtained with).</summary>
    internal static TokenCacheKeyParts CacheKeyParts(OAuthTokenExchangeOptions d, string keyMaterial) =>
        new(OidcConstants.GrantTypes.TokenExchange, d.Client, keyMaterial, d.Scopes, d.Resources, [d.Audience, d.SendActorToken ? "actor" : "no-actor"]);

    private ValueTask<CachedToken> FetchAsync(CredentialRequest request, CancellationToken cancellationToken) =>
        endpoint.RequestAsync(
            (Source: this, Request: request),
            static async (http, s, ct) => await http.RequestTokenExchangeTokenAsync(await s.Source.BuildRequestAsync(s.Request, ct), ct),
            notAfter: request.Delegation!.ExpiresAt,
            cancellationToken);

    private async ValueTask<TokenExchangeTokenRequest> BuildRequestAsync(CredentialRequest request, CancellationToken cancellationToken)
    {
        var exchange = new TokenExchangeTokenRequest
        {
            SubjectToken = request.Delegation!.Token,
            SubjectTokenType = OidcConstants.TokenTypeIdentifiers.AccessToken,
            RequestedTokenType = OidcConstants.TokenTypeIdentifiers.AccessToken,
            Scope = options.Scopes.Count > 0 ? string.Join(' ', options.Scopes) : null,
            Audience = options.Audience,
        };
        if (options.SendActorToken)
        {
            exchange.ActorToken = request.AgentToken;
            exchange.ActorTokenType = OidcConstants.TokenTypeIdentifiers.AccessToken;
        }

        foreach (var resource in options.Resources)
        {
            exchange.Parameters.Add(OidcConstants.TokenRequest.Resource, resource);
        }

        return await endpoint.PrepareAsync(exchange, cancellationToken);
    }
}
