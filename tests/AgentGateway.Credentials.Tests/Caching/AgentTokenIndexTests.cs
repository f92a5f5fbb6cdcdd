using System.Collections.Concurrent;
using System.Security.Cryptography;
using AgentGateway.Credentials.Caching;
using Microsoft.Extensions.Caching.Hybrid;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace AgentGateway.Credentials.Tests.Caching;

/// <summary>The per-agent index outlives revisions: a revoked agent's tokens are found and purged
/// from both levels whichever revision's cache stored them; it shrinks as tokens expire and is
/// bounded, never leaving a cached token out of its reach.</summary>
public sealed class AgentTokenIndexTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 22, 12, 0, 0, TimeSpan.Zero));
    private readonly MemoryStore _shared = new();
    private readonly HybridCache _local;
    private readonly TokenSealer _sealer = new(RandomNumberGenerator.GetBytes(TokenSealer.KeyBytes), []);

    public AgentTokenIndexTests()
    {
        var services = new ServiceCollection();
        services.AddHybridCache();
        services.AddSingleton<TimeProvider>(_time);
        _local = services.BuildServiceProvider().GetRequiredService<HybridCache>();
    }

    [Fact]
    public async Task Forgetting_an_agent_purges_its_tokens_from_both_levels_whichever_revision_cached_them()
    {
        var index = NewIndex();
        var before = NewCache(index);
        var after = NewCache(index); // the next configuration revision: a new cache, the same index
        await before.GetOrFetchAsync("obo-alice", "bot", Timeout, "t1", Fetch, CancellationToken.None);
        await before.GetOrFetchAsync("shared", null, Timeout, "t2", Fetch, CancellationToken.None);
        await after.GetOrFetchAsync("obo-bob", "bot", Timeout, "t3", Fetch, CancellationToken.None);
        await after.GetOrFetchAsync("obo-other", "other-bot", Timeout, "t4", Fetch, CancellationToken.None);
        Assert.All(["obo-alice", "obo-bob", "shared", "obo-other"], k => Assert.True(_shared.Contains(k), k));

        await index.ForgetAgentAsync("BOT", CancellationToken.None);

        foreach (var purged in new[] { "obo-alice", "obo-bob" })
        {
            Assert.False(_shared.Contains(purged), purged);
            Assert.Null(await LocalAsync(purged));
        }

        foreach (var kept in new[] { "shared", "obo-other" })
        {
            Assert.True(_shared.Contains(kept), kept);
            Assert.NotNull(await LocalAsync(kept));
        }

        Assert.Equal(1, index.Count);
    }

    [Fact]
    public async Task A_token_another_replica_stored_is_recorded_when_read_back_and_purged_here_too()
    {
        var writer = NewCache(NewIndex());
        await writer.GetOrFetchAsync("obo-alice", "bot", Timeout, "t1", Fetch, CancellationToken.None);
        var otherIndex = new AgentTokenIndex(Hybrid(), _shared, _time, NullLogger<AgentTokenIndex>.Instance);
        var other = new TokenCache(Hybrid(), _shared, _sealer, _time, otherIndex, NullLogger<TokenCache>.Instance);

        var read = await other.GetOrFetchAsync("obo-alice", "bot", Timeout, "never", Fetch, CancellationToken.None);
        await otherIndex.ForgetAgentAsync("bot", CancellationToken.None);

        Assert.Equal(("t1", CredentialSource.SharedCache), (read.Token.AccessToken, read.Source));
        Assert.False(_shared.Contains("obo-alice"));
    }

    [Fact]
    public async Task Entries_leave_the_index_once_their_token_is_past_use()
    {
        var index = NewIndex();
        var cache = NewCache(index);
        await cache.GetOrFetchAsync("obo-alice", "bot", Timeout, "t1", Fetch, CancellationToken.None);
        await cache.GetOrFetchAsync("obo-bob", "bot", Timeout, "t2", Fetch, CancellationToken.None);
        Assert.Equal(2, index.Count);

        _time.Advance(TimeSpan.FromMinutes(11)); // the tokens live ten minutes
        await cache.GetOrFetchAsync("obo-carol", "bot", Timeout, "t3", Fetch, CancellationToken.None);

        Assert.Equal(1, index.Count);
    }

    [Fact]
    public async Task A_full_index_serves_the_token_to_its_request_but_keeps_it_in_neither_level()
    {
        var index = new AgentTokenIndex(_local, _shared, _time, NullLogger<AgentTokenIndex>.Instance, capacity: 1);
        var cache = NewCache(index);
        var fetches = 0;
        ValueTask<CachedToken> Counting(string token, CancellationToken ct)
        {
            fetches++;
            return Fetch(token, ct);
        }

        await cache.GetOrFetchAsync("obo-alice", "bot", Timeout, "t1", Counting, CancellationToken.None);
        var first = await cache.GetOrFetchAsync("obo-bob", "bot", Timeout, "t2", Counting, CancellationToken.None);
        var second = await cache.GetOrFetchAsync("obo-bob", "bot", Timeout, "t2", Counting, CancellationToken.None);
        var shared = await cache.GetOrFetchAsync("shared", null, Timeout, "t3", Counting, CancellationToken.None);

        Assert.Equal(("t2", CredentialSource.Fetched), (first.Token.AccessToken, first.Source));
        Assert.Equal(CredentialSource.Fetched, second.Source);
        Assert.Equal(4, fetches);
        Assert.False(_shared.Contains("obo-bob"));
        Assert.Null(await LocalAsync("obo-bob"));
        Assert.True(_shared.Contains("shared"), "tokens every agent shares are not limited by the index");
    }

    private ValueTask<CachedToken> Fetch(string token, CancellationToken cancellationToken) =>
        ValueTask.FromResult(CachedToken.Create(token, _time.GetUtcNow(), TimeSpan.FromMinutes(10), TimeSpan.FromMinutes(1), "fp:" + token, jitter: 0.5));

    private AgentTokenIndex NewIndex() => new(_local, _shared, _time, NullLogger<AgentTokenIndex>.Instance);

    private TokenCache NewCache(AgentTokenIndex index) => new(_local, _shared, _sealer, _time, index, NullLogger<TokenCache>.Instance);

    private HybridCache Hybrid()
    {
        var services = new ServiceCollection();
        services.AddHybridCache();
        services.AddSingleton<TimeProvider>(_time);
        return services.BuildServiceProvider().GetRequiredService<HybridCache>();
    }

    private async Task<CachedToken?> LocalAsync(string key) =>
        await _local.GetOrCreateAsync<CachedToken?>(key, static _ => default, new HybridCacheEntryOptions
        {
            Flags = HybridCacheEntryFlags.DisableDistributedCache | HybridCacheEntryFlags.DisableLocalCacheWrite | HybridCacheEntryFlags.DisableUnderlyingData,
        });

    /// <summary>A shared level in memory: what Redis would hold, minus the network.</summary>
    private sealed class MemoryStore : ISharedCacheStore
    {
        private readonly ConcurrentDictionary<string, byte[]> _entries = new(StringComparer.Ordinal);

        public bool IsAvailable => true;

        public bool Contains(string key) => _entries.ContainsKey(key);

        public ValueTask<byte[]?> GetAsync(string key) => ValueTask.FromResult(_entries.TryGetValue(key, out var value) ? value : null);

        public ValueTask SetAsync(string key, byte[] value, TimeSpan timeToLive)
        {
            _entries[key] = value;
            return ValueTask.CompletedTask;
        }

        public ValueTask RemoveAsync(string key)
        {
            _entries.TryRemove(key, out _);
            return ValueTask.CompletedTask;
        }

        public ValueTask<SharedLease> TryAcquireLeaseAsync(string key, TimeSpan timeToLive) =>
            ValueTask.FromResult(new SharedLease(LeaseOutcome.Acquired, key, "me"));

        public ValueTask ReleaseLeaseAsync(SharedLease lease) => ValueTask.CompletedTask;
    }
}
