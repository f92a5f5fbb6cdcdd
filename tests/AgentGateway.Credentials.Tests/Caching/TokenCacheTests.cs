using AgentGateway.Credentials.Caching;
using Microsoft.Extensions.Caching.Hybrid;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace AgentGateway.Credentials.Tests.Caching;

public sealed class TokenCacheTests
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 22, 12, 0, 0, TimeSpan.Zero));

    [Fact]
    public async Task A_cached_token_is_served_until_its_use_by_time_then_fetched_again()
    {
        var cache = NewCache();
        var fetches = 0;
        ValueTask<CachedToken> Fetch(int _, CancellationToken __) =>
            ValueTask.FromResult(CachedToken.Create($"token-{++fetches}", _time.GetUtcNow(), TimeSpan.FromMinutes(10), TimeSpan.FromMinutes(1), "fp"));

        var first = await cache.GetOrFetchAsync("k", 0, (s, ct) => Fetch(s, ct), CancellationToken.None);
        _time.Advance(TimeSpan.FromMinutes(8));
        var second = await cache.GetOrFetchAsync("k", 0, (s, ct) => Fetch(s, ct), CancellationToken.None);
        _time.Advance(TimeSpan.FromMinutes(1) + TimeSpan.FromSeconds(1));
        var third = await cache.GetOrFetchAsync("k", 0, (s, ct) => Fetch(s, ct), CancellationToken.None);

        Assert.True(first.Fetched);
        Assert.Equal(("token-1", false), (second.Token.AccessToken, second.Fetched));
        Assert.Equal(("token-2", true), (third.Token.AccessToken, third.Fetched));
    }

    [Fact]
    public async Task A_failed_fetch_is_not_cached()
    {
        var cache = NewCache();
        await Assert.ThrowsAsync<CredentialFetchException>(async () =>
            await cache.GetOrFetchAsync<int>("k", 0, static (_, _) => throw new CredentialFetchException("down"), CancellationToken.None));

        var result = await cache.GetOrFetchAsync("k", 0, (_, _) =>
            ValueTask.FromResult(CachedToken.Create("fresh", _time.GetUtcNow(), TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(1), "fp")), CancellationToken.None);

        Assert.Equal(("fresh", true), (result.Token.AccessToken, result.Fetched));
    }

    [Fact]
    public async Task Concurrent_misses_for_one_key_fetch_once()
    {
        var cache = NewCache();
        var fetches = 0;
        var gate = new TaskCompletionSource();
        var calls = Enumerable.Range(0, 20).Select(_ => cache.GetOrFetchAsync("k", 0, async (_, _) =>
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

    private TokenCache NewCache()
    {
        var services = new ServiceCollection();
        services.AddHybridCache();
        services.AddSingleton<TimeProvider>(_time);
        var provider = services.BuildServiceProvider();
        return new TokenCache(provider.GetRequiredService<HybridCache>(), _time);
    }
}
