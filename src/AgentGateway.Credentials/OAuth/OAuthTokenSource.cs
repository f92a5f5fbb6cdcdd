using AgentGateway.Credentials.Caching;

namespace AgentGateway.Credentials.OAuth;

/// <summary>What every OAuth kind does the same way: serve a token from the cache (fetching it on a
/// miss), turn it into the hop's header, report a failure as a result rather than an exception,
/// and drop a token the upstream refused.</summary>
/// <param name="fetchTimeout">How long one fetch may take (it bounds the cache's fetch lease).</param>
internal abstract class OAuthTokenSource(string name, string header, IClientAuthenticator authenticator, TimeSpan fetchTimeout, TokenCache cache) : ICredentialSource
{
    private Served? _last;

    public string Name => name;

    public abstract CredentialKind Kind { get; }

    public string HeaderName => header;

    public IReadOnlyList<Secrets.SecretValue> Secrets => authenticator.Secrets;

    public virtual bool RequiresDelegation => false;

    public abstract ValueTask<CredentialResult> GetAsync(CredentialRequest request, CancellationToken cancellationToken);

    public abstract ValueTask<bool> InvalidateAsync(CredentialRequest request, HopCredential used, CancellationToken cancellationToken);

    /// <param name="key">The token's cache key.</param>
    /// <param name="agentId">The agent the token is for alone, or null when every agent shares it.</param>
    /// <param name="state">Passed to <paramref name="fetch"/>.</param>
    /// <param name="fetch">Fetches the token on a miss.</param>
    /// <param name="cancellationToken">The request's cancellation.</param>
    protected async ValueTask<CredentialResult> GetCachedAsync<TState>(
        string key,
        string? agentId,
        TState state,
        Func<TState, CancellationToken, ValueTask<CachedToken>> fetch,
        CancellationToken cancellationToken)
    {
        try
        {
            var (token, source) = await cache.GetOrFetchAsync(key, agentId, fetchTimeout, state, fetch, cancellationToken);
            // A warm route serves the same token request after request: its credential (immutable,
            // made only of the token and where it came from) is made once, not per request.
            var last = Volatile.Read(ref _last);
            if (last is null || !ReferenceEquals(last.Token, token) || last.Source != source)
            {
                last = new Served(token, source, new HopCredential(Name, Kind, HeaderName, token.BearerHeaderValue, token.Fingerprint, source, token.ExpiresAt) { Secret = token.AccessToken });
                Volatile.Write(ref _last, last);
            }

            return CredentialResult.Success(last.Credential);
        }
        catch (CredentialFetchException ex)
        {
            return CredentialResult.Failure(new CredentialError(Name, ex.Message));
        }
    }

    protected ValueTask<bool> InvalidateKeyAsync(string key, HopCredential used, CancellationToken cancellationToken) =>
        cache.InvalidateAsync(key, used.Fingerprint, cancellationToken);

    /// <summary>The credential made from the token last served, and from which cache level.</summary>
    private sealed record Served(CachedToken Token, CredentialSource Source, HopCredential Credential);
}
