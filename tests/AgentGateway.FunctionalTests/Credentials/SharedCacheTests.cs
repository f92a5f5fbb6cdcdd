using System.Net;
using System.Net.Http.Headers;
using System.Text;
using AgentGateway.FunctionalTests.Infrastructure;
using Microsoft.Extensions.Time.Testing;
using Microsoft.IdentityModel.Tokens;
using StackExchange.Redis;

namespace AgentGateway.FunctionalTests.Credentials;

/// <summary>The token cache every replica shares: sealed in Redis, one fetch across replicas, and
/// still serving when Redis is gone.</summary>
[Collection(GatewayCollection.Name)]
public sealed class SharedCacheTests(GatewayFixture fx) : IAsyncLifetime
{
    public Task InitializeAsync() => fx.ResetAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task Hop_tokens_reach_redis_only_sealed()
    {
        var agentToken = await fx.AgentTokenAsync();
        await using var gateway = await GatewayInstance.StartAsync(fx.Config(withRedis: true));

        using var response = await gateway.GetAsAgentAsync("/crm/accounts", agentToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var hopToken = fx.Crm.Header(0, "Authorization")!["Bearer ".Length..];
        var entries = await RedisEntriesAsync(fx.Redis.ConnectionString);
        Assert.NotEmpty(entries);
        foreach (var (key, value) in entries)
        {
            foreach (var form in EncodedForms(hopToken))
            {
                Assert.DoesNotContain(form, key, StringComparison.Ordinal);
                Assert.Equal(-1, value.AsSpan().IndexOf(Encoding.UTF8.GetBytes(form)));
            }
        }

        fx.Crm.AssertNeverSaw(agentToken);
    }

    [Theory]
    [InlineData("bit-flip")]
    [InlineData("planted-plaintext")]
    [InlineData("swapped-from-another-key")]
    public async Task A_shared_entry_that_was_altered_or_planted_is_a_miss_and_never_forwarded(string attack)
    {
        var agentToken = await fx.AgentTokenAsync();
        var config = fx.Config(withRedis: true).WithSpareCrmHop();
        string crmKey;
        await using (var first = await GatewayInstance.StartAsync(config))
        {
            using var warm1 = await first.GetAsAgentAsync("/crm/accounts", agentToken);
            Assert.Equal(HttpStatusCode.OK, warm1.StatusCode);
            crmKey = Assert.Single((await RedisEntriesAsync(fx.Redis.ConnectionString)).Keys);
            using var warm2 = await first.GetAsAgentAsync("/crm-b/accounts", agentToken);
            Assert.Equal(HttpStatusCode.OK, warm2.StatusCode);
        }

        var before = fx.Auth.TokenRequestsFor(Clients.CrmHop);
        await using var redis = await ConnectionMultiplexer.ConnectAsync(fx.Redis.ConnectionString);
        var db = redis.GetDatabase();
        var entries = await RedisEntriesAsync(fx.Redis.ConnectionString);
        Assert.Equal(2, entries.Count);
        var otherKey = entries.Keys.Single(k => k != crmKey);
        const string planted = "attacker-chosen-token";
        byte[] replacement = attack switch
        {
            "bit-flip" => Flip(entries[crmKey], entries[crmKey].Length / 2),
            "planted-plaintext" => Encoding.UTF8.GetBytes(
                $"{{\"AccessToken\":\"{planted}\",\"ExpiresAt\":\"2099-01-01T00:00:00Z\",\"UseUntil\":\"2099-01-01T00:00:00Z\",\"RefreshAfter\":\"2099-01-01T00:00:00Z\",\"Fingerprint\":\"fp:x\"}}"),
            "swapped-from-another-key" => entries[otherKey],
            _ => throw new ArgumentOutOfRangeException(nameof(attack)),
        };
        await db.StringSetAsync(crmKey, replacement, TimeSpan.FromMinutes(5));
        fx.Crm.Server.ResetLogEntries();

        await using var second = await GatewayInstance.StartAsync(config);
        using var response = await second.GetAsAgentAsync("/crm/accounts", agentToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1, fx.Auth.TokenRequestsFor(Clients.CrmHop) - before);
        var forwarded = fx.Crm.Header(0, "Authorization")!["Bearer ".Length..];
        Assert.Equal(Clients.CrmHop, new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(forwarded).Subject);
        fx.Crm.AssertNeverSaw(planted);
        fx.Crm.AssertNeverSaw(agentToken);
        Assert.Contains(second.Logs.Lines, l => l.Contains("did not open", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Three_replicas_and_a_thousand_requests_arriving_as_the_token_expires_make_one_token_request()
    {
        // The replicas share a clock the test moves. Tokens of 10 min are served for 9 (a minute
        // before expiry): one jump puts every replica's copy past use at once, and the fresh token
        // cannot age out during the burst, however slow the machine.
        fx.Auth.SetTokenLifetime(Clients.CrmHopSpare, TimeSpan.FromMinutes(10));
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var agentToken = await fx.AgentTokenAsync();
        var config = WithLenientRevocations(fx.Config(withRedis: true).WithSpareCrmHop());
        await using var a = await GatewayInstance.StartAsync(config, time);
        await using var b = await GatewayInstance.StartAsync(config, time);
        await using var c = await GatewayInstance.StartAsync(config, time);
        GatewayInstance[] replicas = [a, b, c];
        var before = fx.Auth.TokenRequestsFor(Clients.CrmHopSpare);
        foreach (var replica in replicas)
        {
            using var warm = await replica.GetAsAgentAsync("/crm-b/warm", agentToken);
            Assert.Equal(HttpStatusCode.OK, warm.StatusCode);
        }

        Assert.Equal(1, fx.Auth.TokenRequestsFor(Clients.CrmHopSpare) - before);
        time.Advance(TimeSpan.FromMinutes(9) + TimeSpan.FromSeconds(1));
        fx.Crm.Server.ResetLogEntries();

        // From here the clock runs, so replicas waiting for another's fetch (lease polls) are woken.
        await using var running = new RunningClock(time);

        // The jump aged every replica's revocation list too: served again once each has read it.
        foreach (var replica in replicas)
        {
            await WaitUntilReadyAsync(replica);
        }

        using var start = new SemaphoreSlim(0);
        var requests = Enumerable.Range(0, 1000).Select(async i =>
        {
            await start.WaitAsync();
            using var response = await replicas[i % 3].GetAsAgentAsync($"/crm-b/item/{i}", agentToken);
            return response.StatusCode;
        }).ToList();
        start.Release(1000);
        var statuses = await Task.WhenAll(requests);

        Assert.All(statuses, s => Assert.Equal(HttpStatusCode.OK, s));
        Assert.Equal(2, fx.Auth.TokenRequestsFor(Clients.CrmHopSpare) - before);
        Assert.Equal(1000, fx.Crm.Received.Count);
        Assert.Single(fx.Crm.Received.Select(r => r.RequestMessage.Headers!["Authorization"].Single()).Distinct());
        fx.Crm.AssertNeverSaw(agentToken);
    }

    [Fact]
    public async Task Redis_killed_mid_run_requests_keep_succeeding_and_redis_is_used_again_once_back()
    {
        var redis = await RedisServer.StartAsync();
        var port = redis.Port;
        var config = WithLenientRevocations(fx.Config(withRedis: false).WithSpareCrmHop());
        config["Gateway"]!["Redis"] = redis.ConnectionString;
        config["Gateway"]!["Cache"] = new System.Text.Json.Nodes.JsonObject { ["EncryptionKey"] = "env:" + TestConfig.CacheKeyVariable };
        var agentToken = await fx.AgentTokenAsync();
        try
        {
            await using var first = await GatewayInstance.StartAsync(config);
            await using var second = await GatewayInstance.StartAsync(config);
            using (var response = await first.GetAsAgentAsync("/crm/accounts", agentToken))
            {
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            }

            await redis.DisposeAsync();

            // Redis gone: a cache miss on the second replica fetches directly, once for 20 concurrent requests.
            var before = fx.Auth.TokenRequestsFor(Clients.CrmHop);
            var during = await Task.WhenAll(Enumerable.Range(0, 20).Select(async _ =>
            {
                using var response = await second.GetAsAgentAsync("/crm/accounts", agentToken);
                return response.StatusCode;
            }));
            Assert.All(during, s => Assert.Equal(HttpStatusCode.OK, s));
            Assert.Equal(1, fx.Auth.TokenRequestsFor(Clients.CrmHop) - before);
            using (var ready = await second.Client.GetAsync("/readyz"))
            {
                Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
            }

            // Redis back on the same address: both replicas reconnect and share again, no restart.
            redis = await RedisServer.StartAsync(port);
            await WaitUntilReadyAsync(first);
            await WaitUntilReadyAsync(second);
            await Task.Delay(TimeSpan.FromSeconds(2.5)); // outlive the store's failure breaker
            var spareBefore = fx.Auth.TokenRequestsFor(Clients.CrmHopSpare);
            using (var response = await first.GetAsAgentAsync("/crm-b/accounts", agentToken))
            {
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            }

            using (var response = await second.GetAsAgentAsync("/crm-b/accounts", agentToken))
            {
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            }

            Assert.Equal(1, fx.Auth.TokenRequestsFor(Clients.CrmHopSpare) - spareBefore);
            Assert.Contains(second.Logs.Lines, l => l.Contains("Redis is unavailable to the token cache", StringComparison.Ordinal));
            Assert.Contains(second.Logs.Lines, l => l.Contains("Redis is reachable again", StringComparison.Ordinal));
            fx.Crm.AssertNeverSaw(agentToken);
        }
        finally
        {
            await redis.DisposeAsync();
        }
    }

    [Fact]
    public async Task Redis_that_stops_answering_does_not_hold_requests_they_fetch_directly_meanwhile()
    {
        await using var redis = await RedisServer.StartAsync();
        var config = WithLenientRevocations(fx.Config(withRedis: false));
        config["Gateway"]!["Redis"] = redis.ConnectionString;
        config["Gateway"]!["Cache"] = new System.Text.Json.Nodes.JsonObject { ["EncryptionKey"] = "env:" + TestConfig.CacheKeyVariable };
        var agentToken = await fx.AgentTokenAsync();
        await using var gateway = await GatewayInstance.StartAsync(config);
        await using var admin = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(redis.ConnectionString + ",allowAdmin=true,syncTimeout=10000,asyncTimeout=10000");
        var before = fx.Auth.TokenRequestsFor(Clients.CrmHop);

        // Redis accepts connections but answers nothing for five seconds (a stalled primary, a
        // long fork): the cache's per-command budget gives up, the request fetches directly.
        var stall = admin.GetDatabase().ExecuteAsync("DEBUG", "SLEEP", "5");
        await Task.Delay(200);
        using var response = await gateway.GetAsAgentAsync("/crm/accounts", agentToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.False(stall.IsCompleted, "the request should have been answered while Redis was still stalled");
        Assert.Equal(1, fx.Auth.TokenRequestsFor(Clients.CrmHop) - before);
        Assert.Contains(gateway.Logs.Lines, l => l.Contains("Redis is unavailable to the token cache", StringComparison.Ordinal));
        await stall;
        fx.Crm.AssertNeverSaw(agentToken);
    }

    /// <summary>These tests are about the token cache while Redis is away: agents stay served for a
    /// minute without a read of the revocations (whose own bound RevocationOutageTests proves).</summary>
    private static System.Text.Json.Nodes.JsonObject WithLenientRevocations(System.Text.Json.Nodes.JsonObject config)
    {
        config["Gateway"]!["Admin"] = new System.Text.Json.Nodes.JsonObject { ["RevocationsMaxAge"] = "00:01:00" };
        return config;
    }

    private static async Task WaitUntilReadyAsync(GatewayInstance gateway)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            using var ready = await gateway.Client.GetAsync("/readyz");
            if (ready.StatusCode == HttpStatusCode.OK)
            {
                return;
            }

            await Task.Delay(100);
        }

        throw new TimeoutException("the gateway did not reconnect to Redis within 30 s");
    }

    /// <summary>Every token entry in Redis (leases excluded), by key.</summary>
    private static async Task<Dictionary<string, byte[]>> RedisEntriesAsync(string connectionString)
    {
        await using var redis = await ConnectionMultiplexer.ConnectAsync(connectionString);
        var server = redis.GetServer(redis.GetEndPoints()[0]);
        var entries = new Dictionary<string, byte[]>();
        await foreach (var key in server.KeysAsync(pattern: "agw:token:*"))
        {
            if (!key.ToString().EndsWith(":lease", StringComparison.Ordinal))
            {
                entries[key.ToString()] = (byte[])(await redis.GetDatabase().StringGetAsync(key))!;
            }
        }

        return entries;
    }

    private static byte[] Flip(byte[] value, int index)
    {
        var copy = (byte[])value.Clone();
        copy[index] ^= 0x01;
        return copy;
    }

    /// <summary>The token and the encodings it could hide in.</summary>
    private static IEnumerable<string> EncodedForms(string token)
    {
        yield return token;
        yield return Convert.ToBase64String(Encoding.UTF8.GetBytes(token));
        yield return Base64UrlEncoder.Encode(token);
        yield return Uri.EscapeDataString(token);
        // A JWT's signature alone is the part that must never leak.
        yield return token.Split('.')[^1];
    }
}
