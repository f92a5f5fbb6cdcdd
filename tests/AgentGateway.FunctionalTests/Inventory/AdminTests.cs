using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using AgentGateway.FunctionalTests.Infrastructure;
using AgentGateway.Host;
using StackExchange.Redis;

namespace AgentGateway.FunctionalTests.Inventory;

/// <summary>
/// The inventory and instant revocation: an authenticated admin API on its own listener, a revoke
/// on one replica enforced by another within a second, the revoked agent's own cached tokens
/// purged, the revocation surviving a restart, and the CLI on top.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class AdminTests(GatewayFixture fx) : IAsyncLifetime
{
    public Task InitializeAsync() => fx.ResetAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task The_admin_api_answers_only_operators_and_only_on_its_own_listener()
    {
        await using var gateway = await GatewayInstance.StartAsync(fx.Config(withRedis: false).WithAdmin());
        var admin = gateway.AdminAddress!;
        var operatorToken = await fx.AgentTokenAsync(Clients.Operator);
        var agentToken = await fx.AgentTokenAsync();
        using var http = new HttpClient { BaseAddress = admin };

        using var anonymous = await http.GetAsync("/admin/agents");
        using var asAgent = await SendAsync(http, HttpMethod.Get, "/admin/agents", agentToken);
        using var onProxyPort = await gateway.GetAsAgentAsync("/admin/agents", operatorToken);
        using var proxyOnAdminPort = await SendAsync(http, HttpMethod.Get, "/crm/accounts", operatorToken);

        await ProblemAssert.IsProblemAsync(anonymous, HttpStatusCode.Unauthorized, "unauthenticated");
        await ProblemAssert.IsProblemAsync(asAgent, HttpStatusCode.Forbidden, "admin-forbidden");
        await ProblemAssert.IsProblemAsync(onProxyPort, HttpStatusCode.NotFound, "route-unknown");
        await ProblemAssert.IsProblemAsync(proxyOnAdminPort, HttpStatusCode.NotFound, "route-unknown");
        Assert.NotEqual(gateway.Address.Port, admin.Port);
        Assert.Empty(fx.Crm.Received);
    }

    [Fact]
    public async Task The_inventory_shows_each_agent_its_identities_grants_expiry_and_activity()
    {
        await using var gateway = await GatewayInstance.StartAsync(fx.Config(withRedis: false).WithAdmin());
        var operatorToken = await fx.AgentTokenAsync(Clients.Operator);
        using (await gateway.GetAsAgentAsync("/crm/accounts", await fx.AgentTokenAsync()))
        {
        }

        using var http = new HttpClient { BaseAddress = gateway.AdminAddress };
        using var list = await SendAsync(http, HttpMethod.Get, "/admin/agents", operatorToken);
        using var one = await SendAsync(http, HttpMethod.Get, "/admin/agents/support-bot", operatorToken);
        using var missing = await SendAsync(http, HttpMethod.Get, "/admin/agents/nobody", operatorToken);
        using var status = await SendAsync(http, HttpMethod.Get, "/admin/config/status", operatorToken);

        var agents = JsonDocument.Parse(await list.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(["retired-bot", "support-bot"], agents.EnumerateArray().Select(a => a.GetProperty("id").GetString()));
        var bot = JsonDocument.Parse(await one.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("support-team@example.test", bot.GetProperty("owner").GetString());
        Assert.Equal("corp", bot.GetProperty("identities")[0].GetProperty("issuer").GetString());
        Assert.Equal(Clients.Alpha, bot.GetProperty("identities")[0].GetProperty("subject").GetString());
        Assert.Contains("crm-read", bot.GetProperty("grants").EnumerateArray().Select(g => g.GetString()));
        Assert.Equal("strong", bot.GetProperty("identityStrength").GetString());
        Assert.False(bot.GetProperty("dormant").GetBoolean());
        Assert.NotEqual(JsonValueKind.Null, bot.GetProperty("lastSeen").ValueKind);
        Assert.Equal(1, bot.GetProperty("credentialUses").GetProperty("OAuthClientCredentials").GetInt64());
        var retired = agents.EnumerateArray().Single(a => a.GetProperty("id").GetString() == "retired-bot");
        Assert.True(retired.GetProperty("expired").GetBoolean());
        Assert.True(retired.GetProperty("dormant").GetBoolean());
        await ProblemAssert.IsProblemAsync(missing, HttpStatusCode.NotFound, "agent-not-found");
        Assert.Equal(1, JsonDocument.Parse(await status.Content.ReadAsStringAsync()).RootElement.GetProperty("revision").GetInt64());
    }

    [Fact]
    public async Task A_revoke_on_one_replica_is_enforced_by_another_within_a_second_purges_its_tokens_and_survives_a_restart()
    {
        var config = fx.Config(withRedis: true).WithAdmin();
        var agentToken = await fx.AgentTokenAsync();
        var userToken = await fx.UserTokenAsync("alice");
        var operatorToken = await fx.AgentTokenAsync(Clients.Operator);
        await using var redis = await ConnectionMultiplexer.ConnectAsync(fx.Redis.ConnectionString);
        await using var first = await GatewayInstance.StartAsync(config);
        var second = await GatewayInstance.StartAsync(config);
        try
        {
            using (var obo = await SendAsync(second.Client, HttpMethod.Get, "/crm-obo/accounts", agentToken, ("Subject-Token", userToken)))
            using (var plain = await second.GetAsAgentAsync("/crm/accounts", agentToken))
            {
                Assert.Equal(HttpStatusCode.OK, obo.StatusCode);
                Assert.Equal(HttpStatusCode.OK, plain.StatusCode);
            }

            var tokensBefore = await CountAsync(redis, "agw:token:*");
            using var http = new HttpClient { BaseAddress = first.AdminAddress };
            using var revoke = await SendAsync(http, HttpMethod.Post, "/admin/agents/support-bot/revoke", operatorToken, body: "{\"reason\":\"prompt injection suspected\"}");
            var revokedAt = DateTime.UtcNow;
            Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
            var view = JsonDocument.Parse(await revoke.Content.ReadAsStringAsync()).RootElement.GetProperty("revoked");
            Assert.Equal(Clients.Operator, view.GetProperty("by").GetString());
            Assert.Equal("prompt injection suspected", view.GetProperty("reason").GetString());

            // The other replica learns of it by pub/sub: refused within a second.
            HttpStatusCode? status;
            do
            {
                try
                {
                    using var attempt = await second.GetAsAgentAsync("/crm/accounts", agentToken);
                    status = attempt.StatusCode;
                }
                catch (HttpRequestException)
                {
                    // A request in flight when the revocation arrives is ended with its connection
                    // (a revoked agent's open requests and streams end at once); the next is refused.
                    status = null;
                }

                if (status != HttpStatusCode.Unauthorized)
                {
                    await Task.Delay(25);
                }
            }
            while (status != HttpStatusCode.Unauthorized && DateTime.UtcNow - revokedAt < TimeSpan.FromSeconds(1));

            using (var refused = await second.GetAsAgentAsync("/crm/accounts", agentToken))
            {
                await ProblemAssert.IsProblemAsync(refused, HttpStatusCode.Unauthorized, "agent-revoked");
            }

            // The on-behalf-of token cached for this agent is purged by the replica that cached it
            // (right after it starts refusing); the hop token all agents share stays.
            var remaining = await CountAsync(redis, "agw:token:*");
            for (var i = 0; i < 20 && remaining != tokensBefore - 1; i++)
            {
                await Task.Delay(50);
                remaining = await CountAsync(redis, "agw:token:*");
            }

            Assert.Equal(tokensBefore - 1, remaining);
        }
        finally
        {
            await second.DisposeAsync();
        }

        await using var restarted = await GatewayInstance.StartAsync(config);
        using var afterRestart = await restarted.GetAsAgentAsync("/crm/accounts", agentToken);
        await ProblemAssert.IsProblemAsync(afterRestart, HttpStatusCode.Unauthorized, "agent-revoked");
    }

    [Fact]
    public async Task The_cli_lists_shows_and_revokes_through_the_admin_api()
    {
        var revocations = Path.Combine(Path.GetTempPath(), $"agentgateway-revocations-{Guid.NewGuid():N}.jsonl");
        var config = fx.Config(withRedis: false).WithAdmin();
        config["Gateway"]!["Admin"]!["RevocationsFile"] = revocations;
        try
        {
            await using (var gateway = await GatewayInstance.StartAsync(config))
            {
                var admin = gateway.AdminAddress!.ToString();
                var token = await fx.AgentTokenAsync(Clients.Operator);

                var (listCode, list, _) = await RunAsync("agents", "list", "--admin", admin, "--token", token);
                var (showCode, show, _) = await RunAsync("agents", "show", "support-bot", "--admin", admin, "--token", token);
                var (revokeCode, revoked, _) = await RunAsync("agents", "revoke", "support-bot", "--reason", "rotating", "--admin", admin, "--token", token);
                var (deniedCode, _, denied) = await RunAsync("agents", "list", "--admin", admin, "--token", await fx.AgentTokenAsync());

                Assert.Equal(GatewayCommand.Ok, listCode);
                Assert.Contains("support-bot", list, StringComparison.Ordinal);
                Assert.Contains("retired-bot", list, StringComparison.Ordinal);
                Assert.Contains("expired", list, StringComparison.Ordinal);
                Assert.Equal(GatewayCommand.Ok, showCode);
                Assert.Contains("support-team@example.test", show, StringComparison.Ordinal);
                Assert.Contains("crm-read", show, StringComparison.Ordinal);
                Assert.Equal(GatewayCommand.Ok, revokeCode);
                Assert.Contains("revoked", revoked, StringComparison.Ordinal);
                Assert.Equal(GatewayCommand.Refused, deniedCode);
                Assert.Contains("admin-forbidden", denied, StringComparison.Ordinal);

                // An admin API that is not there is told apart from a refusal and from a bad configuration.
                var (awayCode, _, away) = await RunAsync("agents", "list", "--admin", $"http://127.0.0.1:{Loopback.FreePort()}", "--token", token);
                Assert.Equal(GatewayCommand.Unreachable, awayCode);
                Assert.Contains("cannot be reached", away, StringComparison.Ordinal);
            }

            // Without Redis, the revocations file carries it across a restart.
            await using var restarted = await GatewayInstance.StartAsync(config);
            using var refused = await restarted.GetAsAgentAsync("/crm/accounts", await fx.AgentTokenAsync());
            await ProblemAssert.IsProblemAsync(refused, HttpStatusCode.Unauthorized, "agent-revoked");
        }
        finally
        {
            File.Delete(revocations);
        }
    }

    private static async Task<long> CountAsync(ConnectionMultiplexer redis, string pattern)
    {
        var server = redis.GetServer(redis.GetEndPoints()[0]);
        var count = 0L;
        await foreach (var _ in server.KeysAsync(pattern: pattern))
        {
            count++;
        }

        return count;
    }

    private static async Task<(int Code, string Stdout, string Stderr)> RunAsync(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var code = await GatewayCommand.RunAsync(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    private static async Task<HttpResponseMessage> SendAsync(HttpClient http, HttpMethod method, string path, string token, (string Name, string Value)? header = null, string? body = null)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (header is { } h)
        {
            request.Headers.TryAddWithoutValidation(h.Name, h.Value);
        }

        if (body is not null)
        {
            request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        }

        return await http.SendAsync(request);
    }
}
