using Microsoft.Extensions.Caching.Hybrid;

namespace AgentGateway.Credentials.Caching;

/// <summary>
/// Hop tokens in two levels through <see cref="HybridCache"/>: in process first, then the
/// distributed cache (Redis) when one is registered, so every replica reuses one token.
/// HybridCache gives single flight per key within a process and never caches a failure (the
/// factory's exception reaches every waiter and nothing is stored).
/// </summary>
/// <remarks>
/// HybridCache wants the entry's lifetime before the factory runs, but a token's lifetime is
/// known only after it is fetched. So the first write uses a short provisional lifetime and the
/// fetching caller rewrites the entry with the real one; and every read checks the token's own
/// expiry, so nothing expired is served whatever the cache layers say.
/// </remarks>
public sealed class TokenCache(HybridCache cache, TimeProvider time)
{
    private static readonly HybridCacheEntryOptions Provisional = new()
    {
        Expiration = TimeSpan.FromMinutes(1),
        LocalCacheExpiration = TimeSpan.FromMinutes(1),
    };

    /// <summary>Gets the token for <paramref name="key"/>, fetching it when absent or past its use-by time.</summary>
    /// <param name="key">Must be derived from every parameter that shapes the token.</param>
    /// <param name="state">Passed to <paramref name="fetch"/>, so the hot path allocates no closure.</param>
    /// <param name="fetch">Fetches a token; throws <see cref="CredentialFetchException"/> on failure.</param>
    /// <param name="cancellationToken">The request's cancellation.</param>
    public async ValueTask<(CachedToken Token, bool Fetched)> GetOrFetchAsync<TState>(
        string key,
        TState state,
        Func<TState, CancellationToken, ValueTask<CachedToken>> fetch,
        CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            var call = new FetchCall<TState>(state, fetch);
            var token = await cache.GetOrCreateAsync(key, call, static (c, ct) => c.RunAsync(ct), Provisional, null, cancellationToken);
            var usableFor = token.UseUntil - time.GetUtcNow();
            if (call.Ran)
            {
                if (usableFor > TimeSpan.Zero)
                {
                    var exact = new HybridCacheEntryOptions { Expiration = usableFor, LocalCacheExpiration = usableFor };
                    await cache.SetAsync(key, token, exact, null, cancellationToken);
                }
                else
                {
                    // Too short-lived to cache at all; use it for this one request only.
                    await cache.RemoveAsync(key, cancellationToken);
                }

                if (token.ExpiresAt <= time.GetUtcNow())
                {
                    throw new CredentialFetchException("the issuer returned a token that is already expired");
                }

                return (token, true);
            }

            if (usableFor > TimeSpan.Zero)
            {
                return (token, false);
            }

            // A cached token past its use-by time (the provisional lifetime outlived it, or the
            // clocks of two replicas differ): drop it and fetch once more.
            await cache.RemoveAsync(key, cancellationToken);
            if (attempt > 0)
            {
                throw new CredentialFetchException("the cache keeps returning an expired token");
            }
        }
    }

    public ValueTask RemoveAsync(string key, CancellationToken cancellationToken) => cache.RemoveAsync(key, cancellationToken);

    private sealed class FetchCall<TState>(TState state, Func<TState, CancellationToken, ValueTask<CachedToken>> fetch)
    {
        public bool Ran { get; private set; }

        public ValueTask<CachedToken> RunAsync(CancellationToken cancellationToken)
        {
            Ran = true;
            return fetch(state, cancellationToken);
        }
    }
}

/// <summary>A credential could not be fetched. The message is safe to show the agent: it says what
/// class of failure happened, never what the issuer sent back.</summary>
public sealed class CredentialFetchException(string message, Exception? inner = null) : Exception(message, inner);
