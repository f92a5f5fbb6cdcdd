using AgentGateway.Credentials.Caching;
using Microsoft.Extensions.Caching.Hybrid;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace AgentGateway.Credentials.Tests.Caching;

public sealed class TokenCacheTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 22, 12, 0, 0, TimeSpan.Zero));

    [Fact]
    public async Task A_cached_token_is_served_until_its_use_by_time_then_fetched_again()
    {
        var cache = NewCache();
        var fetches = 0;
        ValueTask<CachedToken> Fetch(int _, CancellationToken __) =>
            // Refresh-ahead at ~90 % of the usable time, so minute 8 is still before it.
            ValueTask.FromResult(CachedToken.Create($"token-{++fetches}", _time.GetUtcNow(), TimeSpan.FromMinutes(10), TimeSpan.FromMinutes(1), "fp", jitter: 0.99));

        var first = await cache.GetOrFetchAsync("k", agentId: null, Timeout, 0, (s, ct) => Fetch(s, ct), CancellationToken.None);
        _time.Advance(TimeSpan.FromMinutes(8));
        var second = await cache.GetOrFetchAsync("k", agentId: null, Timeout, 0, (s, ct) => Fetch(s, ct), CancellationToken.None);
        _time.Advance(TimeSpan.FromMinutes(1) + TimeSpan.FromSeconds(1));
        var third = await cache.GetOrFetchAsync("k", agentId: null, Timeout, 0, (s, ct) => Fetch(s, ct), CancellationToken.None);

        Assert.Equal(CredentialSource.Fetched, first.Source);
        Assert.Equal(("token-1", CredentialSource.LocalCache), (second.Token.AccessToken, second.Source));
        Assert.Equal(("token-2", CredentialSource.Fetched), (third.Token.AccessToken, third.Source));
    }

    [Fact]
    public async Task Past_the_refresh_point_the_cached_token_is_served_while_a_background_refresh_replaces_it()
    {
        var cache = NewCache();
        var fetches = 0;
        ValueTask<CachedToken> Fetch(int _, CancellationToken __) =>
            ValueTask.FromResult(CachedToken.Create($"token-{++fetches}", _time.GetUtcNow(), TimeSpan.FromMinutes(10), TimeSpan.FromMinutes(1), "fp", jitter: 0));

        await cache.GetOrFetchAsync("k", agentId: null, Timeout, 0, (s, ct) => Fetch(s, ct), CancellationToken.None);
        _time.Advance(TimeSpan.FromMinutes(7)); // refresh point: 75 % of 9 usable minutes = 6 min 45 s
        var during = await cache.GetOrFetchAsync("k", agentId: null, Timeout, 0, (s, ct) => Fetch(s, ct), CancellationToken.None);
        await cache.RefreshesSettledAsync();
        var after = await cache.GetOrFetchAsync("k", agentId: null, Timeout, 0, (s, ct) => Fetch(s, ct), CancellationToken.None);

        Assert.Equal(("token-1", CredentialSource.LocalCache), (during.Token.AccessToken, during.Source));
        Assert.Equal(("token-2", CredentialSource.LocalCache), (after.Token.AccessToken, after.Source));
        Assert.Equal(2, fetches);
    }

    [Fact]
    public async Task A_failed_background_refresh_keeps_serving_the_token_until_its_use_by_time()
    {
        var cache = NewCache();
        var fail = false;
        ValueTask<CachedToken> Fetch(int _, CancellationToken __) => fail
            ? throw new CredentialFetchException("down")
            : ValueTask.FromResult(CachedToken.Create("token-1", _time.GetUtcNow(), TimeSpan.FromMinutes(10), TimeSpan.FromMinutes(1), "fp", jitter: 0));

        await cache.GetOrFetchAsync("k", agentId: null, Timeout, 0, (s, ct) => Fetch(s, ct), CancellationToken.None);
        fail = true;
        _time.Advance(TimeSpan.FromMinutes(7));
        await cache.GetOrFetchAsync("k", agentId: null, Timeout, 0, (s, ct) => Fetch(s, ct), CancellationToken.None);
        await cache.RefreshesSettledAsync();
        _time.Advance(TimeSpan.FromMinutes(1));
        var stillServed = await cache.GetOrFetchAsync("k", agentId: null, Timeout, 0, (s, ct) => Fetch(s, ct), CancellationToken.None);
        await cache.RefreshesSettledAsync();
        _time.Advance(TimeSpan.FromMinutes(1) + TimeSpan.FromSeconds(1));

        Assert.Equal("token-1", stillServed.Token.AccessToken);
        await Assert.ThrowsAsync<CredentialFetchException>(async () =>
            await cache.GetOrFetchAsync("k", agentId: null, Timeout, 0, (s, ct) => Fetch(s, ct), CancellationToken.None));
    }

    [Fact]
    public void A_token_exchanged_for_a_user_token_is_never_served_past_that_token()
    {
        var now = _time.GetUtcNow();
        var userTokenExpires = now + TimeSpan.FromMinutes(3);

        var token = CachedToken.Create("t", now, TimeSpan.FromHours(1), TimeSpan.FromMinutes(1), "fp", notAfter: userTokenExpires);

        Assert.Equal(userTokenExpires, token.UseUntil);
        Assert.True(token.RefreshAfter < token.UseUntil);
    }

    [Fact]
    public async Task A_failed_fetch_is_not_cached()
    {
        var cache = NewCache();
        await Assert.ThrowsAsync<CredentialFetchException>(async () =>
            await cache.GetOrFetchAsync<int>("k", agentId: null, Timeout, 0, static (_, _) => throw new CredentialFetchException("down"), CancellationToken.None));

        var result = await cache.GetOrFetchAsync("k", agentId: null, Timeout, 0, (_, _) =>
            ValueTask.FromResult(CachedToken.Create("fresh", _time.GetUtcNow(), TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(1), "fp")), CancellationToken.None);

        Assert.Equal(("fresh", CredentialSource.Fetched), (result.Token.AccessToken, result.Source));
    }

    [Fact]
    public async Task Concurrent_misses_for_one_key_fetch_once()
    {
        var cache = NewCache();
        var fetches = 0;
        var gate = new TaskCompletionSource();
        var calls = Enumerable.Range(0, 20).Select(_ => cache.GetOrFetchAsync("k", agentId: null, Timeout, 0, async (_, _) =>
        {
            Interlocked.Increment(ref fetches);
            await gate.Task;
            return CachedToken.Create("once", _time.GetUtcNow(), TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(1), "fp");
        }, CancellationToken.None).AsTask()).ToList();
        gate.SetResult();

        var results = await Task.WhenAll(calls);

        Assert.Equal(1, fetches);
        Assert.All(results, r => Assert.Equal("once", r.Token.AccessToken));
    }

    [Fact]
    public void A_cached_token_formats_without_its_value()
    {
        var token = CachedToken.Create("secret-access-token", _time.GetUtcNow(), TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(1), "fp:abc");

        Assert.DoesNotContain("secret-access-token", token.ToString(), StringComparison.Ordinal);
        Assert.Contains("fp:abc", token.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(600, 60, 540)]  // a normal token: served until a minute before expiry
    [InlineData(60, 60, 30)]    // a short-lived one: still served for half its life
    public void Use_by_time_leaves_the_refresh_margin_but_at_least_half_the_lifetime(int lifetimeSeconds, int marginSeconds, int expectedUseSeconds)
    {
        var now = _time.GetUtcNow();
        var token = CachedToken.Create("t", now, TimeSpan.FromSeconds(lifetimeSeconds), TimeSpan.FromSeconds(marginSeconds), "fp");

        Assert.Equal(now + TimeSpan.FromSeconds(expectedUseSeconds), token.UseUntil);
        Assert.Equal(now + TimeSpan.FromSeconds(lifetimeSeconds), token.ExpiresAt);
    }

    [Fact]
    public async Task A_token_the_issuer_grants_for_days_is_kept_no_longer_than_the_configured_maximum()
    {
        var capped = new TokenCache(Hybrid(), NoSharedCacheStore.Instance, null, _time, NewIndex(), NullLogger<TokenCache>.Instance) { MaxLifetime = TimeSpan.FromMinutes(10) };
        var fetches = 0;
        ValueTask<CachedToken> Fetch(int _, CancellationToken __) =>
            ValueTask.FromResult(CachedToken.Create($"token-{++fetches}", _time.GetUtcNow(), TimeSpan.FromDays(2), TimeSpan.FromMinutes(1), "fp", jitter: 0.99));

        var first = await capped.GetOrFetchAsync("k", agentId: null, Timeout, 0, (s, ct) => Fetch(s, ct), CancellationToken.None);
        _time.Advance(TimeSpan.FromMinutes(10) + TimeSpan.FromSeconds(1));
        var second = await capped.GetOrFetchAsync("k", agentId: null, Timeout, 0, (s, ct) => Fetch(s, ct), CancellationToken.None);
        await capped.RefreshesSettledAsync();

        Assert.Equal(_time.GetUtcNow() - TimeSpan.FromMinutes(10) - TimeSpan.FromSeconds(1) + TimeSpan.FromMinutes(10), first.Token.UseUntil);
        Assert.Equal(("token-2", CredentialSource.Fetched), (second.Token.AccessToken, second.Source));
    }

    [Fact]
    public async Task An_entry_is_dropped_for_a_refusal_at_most_once_per_interval()
    {
        var cache = NewCache();
        var fetches = 0;
        ValueTask<CachedToken> Fetch(int _, CancellationToken __) =>
            ValueTask.FromResult(CachedToken.Create($"token-{++fetches}", _time.GetUtcNow(), TimeSpan.FromMinutes(10), TimeSpan.FromMinutes(1), $"fp-{fetches}", jitter: 0.99));
        Task<TokenLookup> Get() => cache.GetOrFetchAsync("k", agentId: null, Timeout, 0, (s, ct) => Fetch(s, ct), CancellationToken.None).AsTask();

        var first = await Get();
        var dropped = await cache.InvalidateAsync("k", first.Token.Fingerprint, CancellationToken.None);
        var second = await Get();
        _time.Advance(TokenCache.RefusalDropInterval - TimeSpan.FromSeconds(1));
        var droppedAgainSoon = await cache.InvalidateAsync("k", second.Token.Fingerprint, CancellationToken.None);
        var kept = await Get();
        var otherKey = await cache.InvalidateAsync("other", "fp", CancellationToken.None);
        _time.Advance(TimeSpan.FromSeconds(1));
        var droppedLater = await cache.InvalidateAsync("k", kept.Token.Fingerprint, CancellationToken.None);
        var third = await Get();

        Assert.True(dropped);
        Assert.Equal(("token-2", CredentialSource.Fetched), (second.Token.AccessToken, second.Source));
        Assert.False(droppedAgainSoon);
        Assert.Equal(("token-2", CredentialSource.LocalCache), (kept.Token.AccessToken, kept.Source));
        Assert.True(otherKey);
        Assert.True(droppedLater);
        Assert.Equal(("token-3", CredentialSource.Fetched), (third.Token.AccessToken, third.Source));
    }

    [Fact]
    public async Task A_refusal_of_a_token_already_replaced_inside_the_interval_gets_the_new_one_without_a_drop()
    {
        var cache = NewCache();
        var fetches = 0;
        ValueTask<CachedToken> Fetch(int _, CancellationToken __) =>
            ValueTask.FromResult(CachedToken.Create($"token-{++fetches}", _time.GetUtcNow(), TimeSpan.FromMinutes(10), TimeSpan.FromMinutes(1), $"fp-{fetches}", jitter: 0.99));
        Task<TokenLookup> Get() => cache.GetOrFetchAsync("k", agentId: null, Timeout, 0, (s, ct) => Fetch(s, ct), CancellationToken.None).AsTask();

        var old = await Get();
        Assert.True(await cache.InvalidateAsync("k", old.Token.Fingerprint, CancellationToken.None));
        var replacement = await Get();

        // A second request that was sent with the old token is refused after the drop.
        var inFlight = await cache.InvalidateAsync("k", old.Token.Fingerprint, CancellationToken.None);
        var replay = await Get();

        Assert.True(inFlight);
        Assert.Equal(("token-2", CredentialSource.LocalCache), (replay.Token.AccessToken, replay.Source));
        Assert.Equal(replacement.Token.Fingerprint, replay.Token.Fingerprint);
        Assert.Equal(2, fetches);
    }

    [Fact]
    public async Task Concurrent_refusals_drop_an_entry_once()
    {
        var cache = NewCache();
        var results = await Task.WhenAll(Enumerable.Range(0, 16).Select(_ => Task.Run(() => cache.InvalidateAsync("k", "fp", CancellationToken.None).AsTask())));

        Assert.Single(results, dropped => dropped);
    }

    private HybridCache Hybrid()
    {
        var services = new ServiceCollection();
        services.AddHybridCache();
        services.AddSingleton<TimeProvider>(_time);
        return services.BuildServiceProvider().GetRequiredService<HybridCache>();
    }

    private AgentTokenIndex NewIndex() => new(Hybrid(), NoSharedCacheStore.Instance, _time, NullLogger<AgentTokenIndex>.Instance);

    private TokenCache NewCache()
    {
        var services = new ServiceCollection();
        services.AddHybridCache();
        services.AddSingleton<TimeProvider>(_time);
        var provider = services.BuildServiceProvider();
        return new TokenCache(provider.GetRequiredService<HybridCache>(), NoSharedCacheStore.Instance, null, _time, NewIndex(), NullLogger<TokenCache>.Instance);
    }
}
