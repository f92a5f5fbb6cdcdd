using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using AgentGateway.FunctionalTests.Infrastructure;
using AgentGateway.Proxy.Inventory;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using StackExchange.Redis;

namespace AgentGateway.FunctionalTests.Inventory;

/// <summary>
/// A replica that cannot read the revocations from Redis cannot know an agent is not revoked:
/// past <c>Gateway:Admin:RevocationsMaxAge</c> it refuses agents with 503
/// <c>revocations-unconfirmed</c>, fails <c>/readyz</c> and ends its open streams; once a read
/// succeeds it applies what it missed before it serves again. A revoke that cannot be stored is
/// not reported as done. Two replicas on the real redis-server, one of them behind a relay the
/// test cuts; the cut-off replica's clock is a fake the test moves.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class RevocationOutageTests(GatewayFixture fx) : IAsyncLifetime
{
    private LiveUpstream _upstream = null!;

    public async Task InitializeAsync()
    {
        await fx.ResetAsync();
        _upstream = await LiveUpstream.StartAsync();
    }

    public async Task DisposeAsync() => await _upstream.DisposeAsync();

    [Fact]
    public async Task A_replica_cut_off_from_redis_refuses_agents_ends_streams_and_serves_again_only_after_applying_what_it_missed()
    {
        var token = await fx.AgentTokenAsync();
        var operatorToken = await fx.AgentTokenAsync(Clients.Operator);
        await using var relay = TcpRelay.To(fx.Redis.Port);
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var admin = await GatewayInstance.StartAsync(Config(fx.Redis.ConnectionString));
        await using var cutOff = await GatewayInstance.StartAsync(Config($"127.0.0.1:{relay.Port}"), time);
        var store = cutOff.Services.GetRequiredService<RevocationStore>();
        var confirmedWhenApplied = new List<(string Agent, bool Confirmed)>();
        store.Applied += r =>
        {
            lock (confirmedWhenApplied)
            {
                confirmedWhenApplied.Add((r.AgentId, store.Confirmed));
            }
        };

        // Served, and a stream held open, while the list is fresh.
        using (var served = await cutOff.GetAsAgentAsync("/crm/accounts", token))
        {
            Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        }

        using var stream = await cutOff.Client.SendAsync(AsAgent(HttpMethod.Get, "/live/events", token), HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, stream.StatusCode);
        var body = await stream.Content.ReadAsStreamAsync();
        var reading = ReadUntilEndAsync(body);

        // Redis out of reach, and the list older than the maximum age (6 s by default).
        relay.Cut();
        time.Advance(TimeSpan.FromSeconds(7));

        Assert.True(await Task.WhenAny(reading, Task.Delay(TimeSpan.FromSeconds(10))) == reading, "the stream stayed open on a replica that cannot confirm revocations");
        using (var refused = await cutOff.GetAsAgentAsync("/crm/accounts", token))
        {
            var problem = await ProblemAssert.IsProblemAsync(refused, HttpStatusCode.ServiceUnavailable, "revocations-unconfirmed");
            Assert.Equal("Revocations cannot be confirmed", problem.GetProperty("title").GetString());
        }

        // Meanwhile an operator revokes an agent at the other replica; the announcement is lost
        // to the cut-off one.
        using (var revoke = await SendAsync(admin.AdminAddress!, HttpMethod.Post, "/admin/agents/retired-bot/revoke", operatorToken, "{\"reason\":\"missed\"}"))
        {
            Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
        }

        // Redis reachable again, but not yet read: still not ready, still refusing. (The read the
        // clock's move started has failed first; one still waiting for the connection would
        // confirm the list as of its start once it is back, which is right.)
        await UntilAsync(() => cutOff.Logs.Lines.Any(l => l.Contains("Revocations could not be read from Redis", StringComparison.Ordinal)));
        relay.Restore();
        var ready = await ReadyAsync(cutOff, until: r => r.GetProperty("redis").GetString() == "ok");
        Assert.Equal("unconfirmed", ready.GetProperty("revocations").GetString());
        Assert.Equal("not-ready", ready.GetProperty("status").GetString());
        using (var stillRefused = await cutOff.GetAsAgentAsync("/crm/accounts", token))
        {
            await ProblemAssert.IsProblemAsync(stillRefused, HttpStatusCode.ServiceUnavailable, "revocations-unconfirmed");
        }

        // Its clock runs: the next read confirms the list, with the missed revocation in force first.
        await using (new RunningClock(time))
        {
            ready = await ReadyAsync(cutOff, until: r => r.GetProperty("status").GetString() == "ready");
        }

        Assert.Equal("confirmed", ready.GetProperty("revocations").GetString());
        Assert.True(store.TryGet("retired-bot", out _));
        lock (confirmedWhenApplied)
        {
            Assert.Equal([("retired-bot", false)], confirmedWhenApplied);
        }

        using (var servedAgain = await cutOff.GetAsAgentAsync("/crm/accounts", token))
        {
            Assert.Equal(HttpStatusCode.OK, servedAgain.StatusCode);
        }

        Assert.Contains(cutOff.Logs.Lines, l => l.Contains("Revocations not read from Redis", StringComparison.Ordinal));
        Assert.Equal(2, fx.Crm.Received.Count);
        fx.Crm.AssertNeverSaw(token);
        _upstream.AssertNeverSaw(token);
        _upstream.AssertNeverSaw(operatorToken);
    }

    [Fact]
    public async Task A_revoke_that_cannot_reach_redis_is_not_reported_done_holds_here_and_is_stored_when_repeated()
    {
        var token = await fx.AgentTokenAsync();
        var operatorToken = await fx.AgentTokenAsync(Clients.Operator);
        await using var relay = TcpRelay.To(fx.Redis.Port);
        await using var gateway = await GatewayInstance.StartAsync(Config($"127.0.0.1:{relay.Port}"));
        await using var redis = await ConnectionMultiplexer.ConnectAsync(fx.Redis.ConnectionString);

        relay.Cut();
        using (var failed = await SendAsync(gateway.AdminAddress!, HttpMethod.Post, "/admin/agents/support-bot/revoke", operatorToken, "{\"reason\":\"leaked\"}"))
        {
            var problem = await ProblemAssert.IsProblemAsync(failed, HttpStatusCode.ServiceUnavailable, "revocation-not-stored");
            Assert.DoesNotContain(operatorToken, problem.GetRawText(), StringComparison.Ordinal);
        }

        Assert.False(await redis.GetDatabase().HashExistsAsync("agw:revocations", "support-bot"));
        using (var here = await gateway.GetAsAgentAsync("/crm/accounts", token))
        {
            // Enforced on this replica all the same.
            await ProblemAssert.IsProblemAsync(here, HttpStatusCode.Unauthorized, "agent-revoked");
        }

        relay.Restore();
        await ReadyAsync(gateway, until: r => r.GetProperty("status").GetString() == "ready");
        using (var repeated = await SendAsync(gateway.AdminAddress!, HttpMethod.Post, "/admin/agents/support-bot/revoke", operatorToken, "{\"reason\":\"leaked\"}"))
        {
            Assert.Equal(HttpStatusCode.OK, repeated.StatusCode);
        }

        var stored = JsonDocument.Parse((string)(await redis.GetDatabase().HashGetAsync("agw:revocations", "support-bot"))!).RootElement;
        Assert.Equal("leaked", stored.GetProperty("Reason").GetString());
        Assert.Empty(fx.Crm.Received);
    }

    private JsonObject Config(string redis)
    {
        var config = fx.Config(withRedis: true).WithRoute("live", _upstream.Url).WithAdmin();
        config["Gateway"]!["Redis"] = redis;
        return config;
    }

    private static HttpRequestMessage AsAgent(HttpMethod method, string path, string token)
    {
        var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return request;
    }

    private static async Task<HttpResponseMessage> SendAsync(Uri admin, HttpMethod method, string path, string token, string body)
    {
        using var http = new HttpClient { BaseAddress = admin, Timeout = TimeSpan.FromSeconds(30) };
        var request = AsAgent(method, path, token);
        request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        return await http.SendAsync(request);
    }

    /// <summary>Polls <c>/readyz</c> until its answer satisfies <paramref name="until"/>; that answer.</summary>
    private static async Task<JsonElement> ReadyAsync(GatewayInstance gateway, Func<JsonElement, bool> until)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            using var response = await gateway.Client.GetAsync("/readyz");
            var answer = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();
            if (until(answer))
            {
                Assert.Equal(answer.GetProperty("status").GetString() == "ready" ? HttpStatusCode.OK : HttpStatusCode.ServiceUnavailable, response.StatusCode);
                return answer;
            }

            Assert.True(DateTime.UtcNow < deadline, $"/readyz still answered {answer} after 30 s");
            await Task.Delay(100);
        }
    }

    private static async Task UntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "the condition did not hold within 30 s");
            await Task.Delay(50);
        }
    }

    private static Task ReadUntilEndAsync(Stream body) => Task.Run(async () =>
    {
        var buffer = new byte[4096];
        try
        {
            using var cap = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            while (await body.ReadAsync(buffer, cap.Token) > 0)
            {
            }
        }
        catch (Exception ex) when (ex is IOException or HttpRequestException or OperationCanceledException)
        {
        }
    });
}
