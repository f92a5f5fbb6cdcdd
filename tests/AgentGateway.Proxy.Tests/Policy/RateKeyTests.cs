using AgentGateway.Proxy.Policy;
using Microsoft.Extensions.Time.Testing;

namespace AgentGateway.Proxy.Tests.Policy;

/// <summary>A rate limit counts per agent and grant, enforced and shadow apart; the shared store's
/// key text is what replicas of every version agree on.</summary>
public sealed class RateKeyTests
{
    private static readonly DateTimeOffset Now = DateTimeOffset.Parse("2026-11-28T10:00:00Z", System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public void The_shared_key_text_is_agent_and_grant_and_shadow_apart()
    {
        Assert.Equal("support-bot:crm-read", new RateKey("support-bot", "crm-read").ToString());
        Assert.Equal("shadow:support-bot:crm-read", new RateKey("support-bot", "crm-read", Shadow: true).ToString());
    }

    [Fact]
    public async Task Each_agent_grant_and_shadow_counts_alone_in_process()
    {
        var store = new InProcessPolicyStateStore(new FakeTimeProvider(Now));
        var limit = new RateLimit(2, TimeSpan.FromMinutes(1));
        var key = new RateKey("support-bot", "crm-read");

        Assert.True((await store.HitAsync(key, limit, Now, default)).Allowed);
        Assert.True((await store.HitAsync(new RateKey("support-bot", "crm-read"), limit, Now, default)).Allowed);
        Assert.False((await store.HitAsync(key, limit, Now, default)).Allowed);

        Assert.True((await store.HitAsync(new RateKey("other-bot", "crm-read"), limit, Now, default)).Allowed);
        Assert.True((await store.HitAsync(new RateKey("support-bot", "crm-write"), limit, Now, default)).Allowed);
        Assert.True((await store.HitAsync(key with { Shadow = true }, limit, Now, default)).Allowed);

        // The next window starts again.
        Assert.True((await store.HitAsync(key, limit, Now.AddMinutes(1), default)).Allowed);
    }
}
