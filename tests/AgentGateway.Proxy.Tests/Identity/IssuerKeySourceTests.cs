using AgentGateway.Proxy.Identity;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Microsoft.IdentityModel.Protocols;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;

namespace AgentGateway.Proxy.Tests.Identity;

public sealed class IssuerKeySourceTests
{
    private static readonly TimeSpan Throttle = TimeSpan.FromMinutes(1);
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-11-22T10:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
    private readonly ScriptedRetriever _retriever = new();

    [Fact]
    public async Task A_demanded_refresh_is_awaited_so_the_first_rotated_token_sees_the_new_keys()
    {
        var source = Source();
        var first = await source.GetConfigurationAsync(CancellationToken.None);
        _retriever.Next = new OpenIdConnectConfiguration { Issuer = "rotated" };

        source.RequestRefresh();
        var second = await source.GetConfigurationAsync(CancellationToken.None);

        Assert.NotSame(first, second);
        Assert.Equal("rotated", second.Issuer);
        Assert.Equal(2, _retriever.Calls);
    }

    [Fact]
    public async Task Demands_within_the_interval_cost_one_fetch_however_many_and_however_concurrent()
    {
        var source = Source();
        await source.GetConfigurationAsync(CancellationToken.None);
        _retriever.Gate = new TaskCompletionSource();

        var waiting = Enumerable.Range(0, 50).Select(_ =>
        {
            source.RequestRefresh();
            return source.GetConfigurationAsync(CancellationToken.None);
        }).ToList();
        _retriever.Gate.SetResult();
        await Task.WhenAll(waiting);
        _time.Advance(Throttle - TimeSpan.FromSeconds(1));
        source.RequestRefresh();
        await source.GetConfigurationAsync(CancellationToken.None);

        Assert.Equal(2, _retriever.Calls);

        _time.Advance(TimeSpan.FromSeconds(1));
        source.RequestRefresh();
        await source.GetConfigurationAsync(CancellationToken.None);
        Assert.Equal(3, _retriever.Calls);
    }

    [Fact]
    public async Task A_failed_refresh_keeps_the_last_good_keys()
    {
        var source = Source();
        var good = await source.GetConfigurationAsync(CancellationToken.None);
        _retriever.Fail = true;

        source.RequestRefresh();
        var after = await source.GetConfigurationAsync(CancellationToken.None);

        Assert.Same(good, after);
        Assert.Equal(2, _retriever.Calls);
    }

    [Fact]
    public async Task With_no_keys_yet_a_dead_endpoint_is_asked_at_most_once_a_second_and_callers_fail_fast()
    {
        _retriever.Fail = true;
        var source = Source();

        await Assert.ThrowsAsync<IssuerKeysUnavailableException>(() => source.GetConfigurationAsync(CancellationToken.None));
        await Assert.ThrowsAsync<IssuerKeysUnavailableException>(() => source.GetConfigurationAsync(CancellationToken.None));
        Assert.Equal(1, _retriever.Calls);

        _retriever.Fail = false;
        _time.Advance(TimeSpan.FromSeconds(1));
        var recovered = await source.GetConfigurationAsync(CancellationToken.None);

        Assert.NotNull(recovered);
        Assert.Equal(2, _retriever.Calls);
    }

    [Fact]
    public async Task The_scheduled_refresh_runs_in_the_background_and_serves_the_old_keys_meanwhile()
    {
        var source = Source();
        var old = await source.GetConfigurationAsync(CancellationToken.None);
        _retriever.Gate = new TaskCompletionSource();
        _retriever.Next = new OpenIdConnectConfiguration { Issuer = "scheduled" };
        _time.Advance(IssuerKeySource.AutomaticRefreshInterval);

        var meanwhile = await source.GetConfigurationAsync(CancellationToken.None);
        _retriever.Gate.SetResult();
        await _retriever.Completed.Task.WaitAsync(TimeSpan.FromSeconds(10));
        var later = meanwhile;
        for (var i = 0; i < 500 && later.Issuer != "scheduled"; i++)
        {
            // The fetch has returned; its result is published a moment later on the pool.
            await Task.Delay(10);
            later = await source.GetConfigurationAsync(CancellationToken.None);
        }

        Assert.Same(old, meanwhile);
        Assert.Equal("scheduled", later.Issuer);
    }

    private IssuerKeySource Source() => new("https://issuer.test/jwks", _retriever, new HttpDocumentRetriever(), Throttle, _time, NullLogger.Instance);

    private sealed class ScriptedRetriever : IConfigurationRetriever<OpenIdConnectConfiguration>
    {
        private int _calls;

        public int Calls => Volatile.Read(ref _calls);

        public bool Fail { get; set; }

        public OpenIdConnectConfiguration? Next { get; set; }

        public TaskCompletionSource? Gate { get; set; }

        public TaskCompletionSource Completed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public async Task<OpenIdConnectConfiguration> GetConfigurationAsync(string address, IDocumentRetriever retriever, CancellationToken cancel)
        {
            Interlocked.Increment(ref _calls);
            if (Gate is { } gate)
            {
                await gate.Task;
            }

            if (Fail)
            {
                throw new IOException("endpoint answered garbage");
            }

            var result = Next ?? new OpenIdConnectConfiguration { Issuer = "initial" };
            Next = null;
            if (Gate is not null)
            {
                Completed.TrySetResult();
            }

            return result;
        }
    }
}
