using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.Extensions.Caching.Hybrid;
using Microsoft.Extensions.Logging;

namespace AgentGateway.Credentials.Caching;

/// <summary>
/// Hop tokens in two levels: in process (HybridCache, which also makes concurrent misses for one
/// key within a process wait for a single fill), then the shared store (Redis) that every replica
/// reads, sealed with <see cref="TokenSealer"/>. A fill that misses both levels takes a short
/// lease in the shared store so that, across all replicas, one fetches and the others read its
/// result. Tokens are refreshed in the background ahead of their use-by time; failures are never
/// cached; and if the shared store is down or slow, fills fetch directly and keep serving.
/// </summary>
/// <remarks>
/// HybridCache's own distributed level is not used (its flags turn it off): it cannot hold a
/// lease around a double-checked read, and it would store whatever serialiser output it has —
/// here the shared level must only ever see sealed bytes.
/// </remarks>
public sealed partial class TokenCache
{
    private const HybridCacheEntryFlags LocalOnly =
        HybridCacheEntryFlags.DisableDistributedCacheRead | HybridCacheEntryFlags.DisableDistributedCacheWrite;

    /// <summary>Reads the local level only: no fill, no write.</summary>
    private static readonly HybridCacheEntryOptions LocalRead = new()
    {
        Flags = LocalOnly | HybridCacheEntryFlags.DisableLocalCacheWrite | HybridCacheEntryFlags.DisableUnderlyingData,
    };

    /// <summary>The lifetime HybridCache gives a fill before the token's real one is known; the
    /// fill then rewrites the entry with its exact use-by time.</summary>
    private static readonly HybridCacheEntryOptions ProvisionalFill = new()
    {
        Expiration = TimeSpan.FromMinutes(1),
        LocalCacheExpiration = TimeSpan.FromMinutes(1),
        Flags = LocalOnly,
    };

    /// <summary>Slack on a fetch lease beyond the fetch's own timeout.</summary>
    private static readonly TimeSpan LeaseMargin = TimeSpan.FromSeconds(2);

    private static readonly TimeSpan FirstPoll = TimeSpan.FromMilliseconds(10);
    private static readonly TimeSpan LongestPoll = TimeSpan.FromMilliseconds(100);

    private readonly HybridCache _local;
    private readonly ISharedCacheStore _shared;
    private readonly TokenSealer? _sealer;
    private readonly TimeProvider _time;
    private readonly AgentTokenIndex _agents;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, Task> _refreshing = new(StringComparer.Ordinal);

    /// <summary>When each key was last dropped for an upstream's refusal (monotonic timestamps).</summary>
    private readonly ConcurrentDictionary<string, long> _droppedAt = new(StringComparer.Ordinal);

    /// <summary>How many drop times are kept before those past their window are swept.</summary>
    private const int DropsTracked = 1024;

    private long _nextSweep;

    /// <summary>
    /// The shortest time between two drops of one entry for an upstream's 401. A token revoked or
    /// rotated at the issuer is refused once and dropped at once, so the next request fetches a
    /// fresh one. An upstream that refuses every token (hostile, or misconfigured) would otherwise
    /// turn every request into a token-endpoint call, running into the issuer's rate limit, and
    /// evict a token the issuer still honours from every route sharing the credential. A second
    /// refusal inside this window is passed on to the agent without a drop or a retry.
    /// </summary>
    public static readonly TimeSpan RefusalDropInterval = TimeSpan.FromSeconds(30);

    /// <param name="local">The in-process level.</param>
    /// <param name="shared">The shared level; used only when <paramref name="sealer"/> is given.</param>
    /// <param name="sealer">Seals entries for the shared level.</param>
    /// <param name="time">The clock every expiry is measured on.</param>
    /// <param name="agents">Where entries held for one agent alone are recorded, so a revocation
    /// finds them whichever revision's cache stored them.</param>
    /// <param name="logger">For shared entries that fail to open and refreshes that fail.</param>
    public TokenCache(HybridCache local, ISharedCacheStore shared, TokenSealer? sealer, TimeProvider time, AgentTokenIndex agents, ILogger<TokenCache> logger)
    {
        _local = local;
        _shared = shared;
        _sealer = sealer;
        _time = time;
        _agents = agents;
        _logger = logger;
    }

    private bool SharedUsable => _sealer is not null && _shared.IsAvailable;

    /// <summary>The longest any hop token is kept (<c>Gateway:Cache:MaxTokenLifetime</c>).</summary>
    public TimeSpan MaxLifetime { get; init; } = TimeSpan.FromHours(1);

    /// <summary>Gets the token for <paramref name="key"/>: from process memory, else the shared
    /// store, else fetched (once across replicas).</summary>
    /// <param name="key">Must be derived from every parameter that shapes the token.</param>
    /// <param name="agentId">The agent the token is for alone (an on-behalf-of token), so that
    /// revoking the agent purges it; null for a token every agent shares.</param>
    /// <param name="fetchTimeout">How long <paramref name="fetch"/> may take; bounds the fetch lease.</param>
    /// <param name="state">Passed to <paramref name="fetch"/>, so the hot path allocates no closure.</param>
    /// <param name="fetch">Fetches a token; throws <see cref="CredentialFetchException"/> on failure.</param>
    /// <param name="cancellationToken">The request's cancellation.</param>
    public async ValueTask<TokenLookup> GetOrFetchAsync<TState>(
        string key,
        string? agentId,
        TimeSpan fetchTimeout,
        TState state,
        Func<TState, CancellationToken, ValueTask<CachedToken>> fetch,
        CancellationToken cancellationToken)
    {
        var cached = await _local.GetOrCreateAsync<CachedToken?>(key, static _ => default, LocalRead, null, cancellationToken);
        var now = _time.GetUtcNow();
        if (cached is not null)
        {
            if (now < cached.UseUntil)
            {
                if (now >= cached.RefreshAfter)
                {
                    StartRefresh(key, agentId, fetchTimeout, state, fetch);
                }

                return new TokenLookup(cached, CredentialSource.LocalCache);
            }

            // Past its use-by time: it must go before HybridCache would hand it out again.
            await _local.RemoveAsync(key, cancellationToken);
        }

        var fill = new Fill<TState>(this, key, agentId, fetchTimeout, state, fetch);
        var token = await _local.GetOrCreateAsync(key, fill, static (f, ct) => f.RunAsync(ct), ProvisionalFill, null, cancellationToken);
        now = _time.GetUtcNow();
        if (fill.Source is { } source)
        {
            if (fill.Tracked)
            {
                await KeepLocallyAsync(key, token, cancellationToken);
            }
            else
            {
                // Could not be recorded for its agent: it serves this request only.
                await _local.RemoveAsync(key, cancellationToken);
            }

            return new TokenLookup(token, source);
        }

        // Joined a fill another request started, or one that landed since the read above.
        if (now < token.UseUntil)
        {
            return new TokenLookup(token, CredentialSource.LocalCache);
        }

        await _local.RemoveAsync(key, cancellationToken);
        throw new CredentialFetchException("the cache keeps returning an expired token");
    }

    /// <summary>Drops <paramref name="key"/> from both levels for an upstream's refusal of the token
    /// with <paramref name="fingerprint"/> — from the shared one only while it still holds that
    /// token, so a replica that already replaced it keeps its fresh token. Returns whether the next
    /// request gets another token: true when it was dropped now, or when a drop moments ago already
    /// replaced it (a request refused with the old token, in flight during that drop, may go again
    /// at no fetch); false, dropping nothing, when this cache dropped the key for a refusal less
    /// than <see cref="RefusalDropInterval"/> ago and still serves the refused token.</summary>
    public async ValueTask<bool> InvalidateAsync(string key, string fingerprint, CancellationToken cancellationToken)
    {
        if (!TryClaimDrop(key))
        {
            var current = await _local.GetOrCreateAsync<CachedToken?>(key, static _ => default, LocalRead, null, cancellationToken);
            if (current is not null && current.Fingerprint != fingerprint)
            {
                return true;
            }

            Log.RefusedAgainSoon(_logger, key, RefusalDropInterval);
            return false;
        }

        // Not cut short by the request's end: the claim above is spent either way.
        await _local.RemoveAsync(key, CancellationToken.None);
        if (SharedUsable && await ReadSharedAsync(key) is { } shared && shared.Fingerprint == fingerprint)
        {
            await _shared.RemoveAsync(key);
        }

        return true;
    }

    /// <summary>Whether a refusal may drop <paramref name="key"/> now: at most once per
    /// <see cref="RefusalDropInterval"/>, atomically, so concurrent refusals drop it once.</summary>
    private bool TryClaimDrop(string key)
    {
        var now = _time.GetTimestamp();
        // At most one sweep per interval: Count takes every lock, and a hostile upstream refuses at will.
        if (now >= Volatile.Read(ref _nextSweep) && _droppedAt.Count >= DropsTracked)
        {
            Volatile.Write(ref _nextSweep, now + (long)(RefusalDropInterval.TotalSeconds * _time.TimestampFrequency));
            // Only entries still inside their window decide anything; the rest can go.
            foreach (var (stale, at) in _droppedAt)
            {
                if (_time.GetElapsedTime(at, now) >= RefusalDropInterval)
                {
                    _droppedAt.TryRemove(KeyValuePair.Create(stale, at));
                }
            }
        }

        while (true)
        {
            if (_droppedAt.TryGetValue(key, out var last))
            {
                if (_time.GetElapsedTime(last, now) < RefusalDropInterval)
                {
                    return false;
                }

                if (_droppedAt.TryUpdate(key, now, last))
                {
                    return true;
                }
            }
            else if (_droppedAt.TryAdd(key, now))
            {
                return true;
            }
        }
    }

    /// <summary>Completes when every background refresh started so far has ended (for tests and shutdown).</summary>
    internal Task RefreshesSettledAsync() => Task.WhenAll(_refreshing.Values);

    private async ValueTask<(CachedToken Token, CredentialSource Source)> FillAsync<TState>(
        string key,
        string? agentId,
        TimeSpan fetchTimeout,
        TState state,
        Func<TState, CancellationToken, ValueTask<CachedToken>> fetch,
        CancellationToken cancellationToken)
    {
        if (!SharedUsable)
        {
            return (await FetchCheckedAsync(state, fetch, cancellationToken), CredentialSource.Fetched);
        }

        if (await ReadSharedAsync(key) is { } found && Usable(found))
        {
            return (found, CredentialSource.SharedCache);
        }

        var leaseLifetime = fetchTimeout + LeaseMargin;
        var giveUpAt = _time.GetUtcNow() + (2 * leaseLifetime);
        var poll = FirstPoll;
        while (true)
        {
            var lease = await _shared.TryAcquireLeaseAsync(key, leaseLifetime);
            switch (lease.Outcome)
            {
                case LeaseOutcome.Acquired:
                    try
                    {
                        // Double-checked: the previous holder may have stored a token just before releasing.
                        if (await ReadSharedAsync(key) is { } stored && Usable(stored))
                        {
                            return (stored, CredentialSource.SharedCache);
                        }

                        var fetched = await FetchCheckedAsync(state, fetch, cancellationToken);
                        if (Track(agentId, key, fetched))
                        {
                            await WriteSharedAsync(key, fetched);
                        }

                        return (fetched, CredentialSource.Fetched);
                    }
                    finally
                    {
                        await _shared.ReleaseLeaseAsync(lease);
                    }

                case LeaseOutcome.HeldElsewhere when _time.GetUtcNow() < giveUpAt:
                    await Task.Delay(poll, _time, cancellationToken);
                    poll = poll * 2 < LongestPoll ? poll * 2 : LongestPoll;
                    if (await ReadSharedAsync(key) is { } theirs && Usable(theirs))
                    {
                        return (theirs, CredentialSource.SharedCache);
                    }

                    break;

                default:
                    // Store unreachable, or a holder that outlived every bound: fetch without it.
                    return (await FetchCheckedAsync(state, fetch, cancellationToken), CredentialSource.Fetched);
            }
        }
    }

    private void StartRefresh<TState>(string key, string? agentId, TimeSpan fetchTimeout, TState state, Func<TState, CancellationToken, ValueTask<CachedToken>> fetch)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_refreshing.TryAdd(key, done.Task))
        {
            return;
        }

        _ = Task.Run(async () =>
        {
            try
            {
                await RefreshAsync(key, agentId, fetchTimeout, state, fetch);
            }
            catch (Exception ex) when (ex is CredentialFetchException or OperationCanceledException)
            {
                // The token in hand is still served until its use-by time; after that a request fetches.
                Log.RefreshFailed(_logger, key, ex.Message);
            }
            finally
            {
                _refreshing.TryRemove(key, out _);
                done.SetResult();
            }
        });
    }

    private async Task RefreshAsync<TState>(string key, string? agentId, TimeSpan fetchTimeout, TState state, Func<TState, CancellationToken, ValueTask<CachedToken>> fetch)
    {
        CachedToken token;
        if (!SharedUsable)
        {
            token = await FetchCheckedAsync(state, fetch, CancellationToken.None);
        }
        else if (await ReadSharedAsync(key) is { } current && _time.GetUtcNow() < current.RefreshAfter)
        {
            // Another replica refreshed already.
            token = current;
        }
        else
        {
            var lease = await _shared.TryAcquireLeaseAsync(key, fetchTimeout + LeaseMargin);
            if (lease.Outcome == LeaseOutcome.HeldElsewhere)
            {
                // Another replica is refreshing; a later request picks its token up from the store.
                return;
            }

            try
            {
                if (await ReadSharedAsync(key) is { } stored && _time.GetUtcNow() < stored.RefreshAfter)
                {
                    token = stored;
                }
                else
                {
                    token = await FetchCheckedAsync(state, fetch, CancellationToken.None);
                    if (Track(agentId, key, token))
                    {
                        await WriteSharedAsync(key, token);
                    }
                }
            }
            finally
            {
                await _shared.ReleaseLeaseAsync(lease);
            }
        }

        if (Track(agentId, key, token))
        {
            await KeepLocallyAsync(key, token, CancellationToken.None);
        }
    }

    /// <summary>Records a per-agent entry before it is stored; false when it must not be stored.</summary>
    private bool Track(string? agentId, string key, CachedToken token) =>
        agentId is null || _agents.TryRecord(agentId, key, token.UseUntil);

    private async ValueTask<CachedToken> FetchCheckedAsync<TState>(TState state, Func<TState, CancellationToken, ValueTask<CachedToken>> fetch, CancellationToken cancellationToken)
    {
        var token = await fetch(state, cancellationToken);
        var now = _time.GetUtcNow();
        if (token.ExpiresAt <= now)
        {
            throw new CredentialFetchException("the issuer returned a token that is already expired");
        }

        // Whatever the issuer grants, no hop token is kept past the configured maximum.
        if (token.UseUntil > now + MaxLifetime)
        {
            var useUntil = now + MaxLifetime;
            var refreshAfter = token.RefreshAfter < useUntil ? token.RefreshAfter : now + (MaxLifetime * 0.8);
            token = token with { UseUntil = useUntil, RefreshAfter = refreshAfter };
        }

        return token;
    }

    private bool Usable(CachedToken token) => _time.GetUtcNow() < token.UseUntil;

    private async ValueTask KeepLocallyAsync(string key, CachedToken token, CancellationToken cancellationToken)
    {
        var usable = token.UseUntil - _time.GetUtcNow();
        if (usable > TimeSpan.Zero)
        {
            var exact = new HybridCacheEntryOptions { Expiration = usable, LocalCacheExpiration = usable, Flags = LocalOnly };
            await _local.SetAsync(key, token, exact, null, cancellationToken);
        }
        else
        {
            // Too short-lived to keep; it serves this one request only.
            await _local.RemoveAsync(key, cancellationToken);
        }
    }

    private async ValueTask<CachedToken?> ReadSharedAsync(string key)
    {
        var sealedBytes = await _shared.GetAsync(key);
        if (sealedBytes is null)
        {
            return null;
        }

        var plaintext = _sealer!.TryOpen(key, sealedBytes);
        if (plaintext is null)
        {
            Log.SharedEntryRejected(_logger, key);
            return null;
        }

        try
        {
            return JsonSerializer.Deserialize(plaintext, CachedTokenJsonContext.Default.CachedToken);
        }
        catch (JsonException)
        {
            Log.SharedEntryRejected(_logger, key);
            return null;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(plaintext);
        }
    }

    private async ValueTask WriteSharedAsync(string key, CachedToken token)
    {
        var timeToLive = token.UseUntil - _time.GetUtcNow();
        if (timeToLive <= TimeSpan.Zero)
        {
            return;
        }

        var plaintext = JsonSerializer.SerializeToUtf8Bytes(token, CachedTokenJsonContext.Default.CachedToken);
        try
        {
            await _shared.SetAsync(key, _sealer!.Seal(key, plaintext), timeToLive);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(plaintext);
        }
    }

    /// <summary>One fill of the local level; HybridCache runs at most one per key at a time.</summary>
    private sealed class Fill<TState>(
        TokenCache owner,
        string key,
        string? agentId,
        TimeSpan fetchTimeout,
        TState state,
        Func<TState, CancellationToken, ValueTask<CachedToken>> fetch)
    {
        /// <summary>The span of the request that started the fill: HybridCache runs the factory
        /// detached from the caller, and the token request should still appear under it.</summary>
        private readonly System.Diagnostics.Activity? _parent = System.Diagnostics.Activity.Current;

        /// <summary>Where the token came from, when this fill ran; null when the caller joined another.</summary>
        public CredentialSource? Source { get; private set; }

        /// <summary>Whether the token may be kept: recorded for its agent, or shared by all.</summary>
        public bool Tracked { get; private set; }

        public async ValueTask<CachedToken> RunAsync(CancellationToken cancellationToken)
        {
            if (System.Diagnostics.Activity.Current is null && _parent is not null)
            {
                System.Diagnostics.Activity.Current = _parent;
            }

            var (token, source) = await owner.FillAsync(key, agentId, fetchTimeout, state, fetch, cancellationToken);
            Tracked = owner.Track(agentId, key, token);
            Source = source;
            return token;
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1203, Level = LogLevel.Warning, Message = "A shared cache entry for {CacheKey} did not open (altered, written without the key, or sealed with a retired key); treated as a miss")]
        public static partial void SharedEntryRejected(ILogger logger, string cacheKey);

        [LoggerMessage(EventId = 1209, Level = LogLevel.Warning, Message = "The upstream refused the token for {CacheKey} again within {Interval} of the last drop; kept, and the refusal passed on")]
        public static partial void RefusedAgainSoon(ILogger logger, string cacheKey, TimeSpan interval);

        [LoggerMessage(EventId = 1204, Level = LogLevel.Warning, Message = "The background refresh of {CacheKey} failed: {Reason}; the cached token is served until its use-by time")]
        public static partial void RefreshFailed(ILogger logger, string cacheKey, string reason);
    }
}

/// <summary>A token and where this request got it.</summary>
public readonly record struct TokenLookup(CachedToken Token, CredentialSource Source);

/// <summary>A credential could not be fetched. The message is safe to show the agent: it says what
/// class of failure happened, never what the issuer sent back.</summary>
public sealed class CredentialFetchException(string message, Exception? inner = null) : Exception(message, inner);
