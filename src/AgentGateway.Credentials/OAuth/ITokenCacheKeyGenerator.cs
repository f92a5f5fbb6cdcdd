namespace AgentGateway.Credentials.OAuth;

/// <summary>
/// Cache keys for OAuth tokens. Two requests share a cached token exactly when they share a key, so
/// a key must cover every parameter that shapes the token. The default hashes them (see
/// <see cref="TokenCacheKey"/>); replace it (register your own before <c>AddCredentialBroker</c>)
/// to partition further, e.g. by tenant.
/// </summary>
public interface ITokenCacheKeyGenerator
{
    /// <summary>The key of a configured credential's token, computed once per revision.</summary>
    string ForCredential(TokenCacheKeyParts parts);

    /// <summary>The key of one user's token through one agent (on-behalf-of), under a credential
    /// whose own key is <paramref name="credentialKey"/>; computed per request.</summary>
    string ForSubject(string credentialKey, string agentId, Delegation delegation);
}

/// <summary>Everything about a configured credential that shapes its token.</summary>
/// <param name="Grant">The grant (and any variant of it): a token of one grant is never served for another.</param>
/// <param name="Client">The token endpoint, client id and authentication method.</param>
/// <param name="KeyMaterial">The client's secret or key (hashed, never stored).</param>
/// <param name="Scopes">In any order: the same set is the same token.</param>
/// <param name="Resources">In any order.</param>
/// <param name="GrantParameters">The grant's own parameters, in a fixed order.</param>
public sealed record TokenCacheKeyParts(
    string Grant,
    OAuthClient Client,
    string KeyMaterial,
    IReadOnlyCollection<string> Scopes,
    IReadOnlyCollection<string> Resources,
    IReadOnlyList<string?> GrantParameters);

/// <summary>The default keys.</summary>
internal sealed class TokenCacheKeyGenerator : ITokenCacheKeyGenerator
{
    public string ForCredential(TokenCacheKeyParts parts) =>
        TokenCacheKey.For(parts.Grant, parts.Client, parts.KeyMaterial, parts.Scopes, parts.Resources, [.. parts.GrantParameters]);

    public string ForSubject(string credentialKey, string agentId, Delegation delegation) =>
        TokenCacheKey.Within(credentialKey, agentId, delegation.IssuerName, delegation.Subject);
}
