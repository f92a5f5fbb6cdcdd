using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Nodes;
using AgentGateway.Credentials.Caching;
using AgentGateway.FunctionalTests.Infrastructure;
using Microsoft.Extensions.Caching.Hybrid;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using StackExchange.Redis;

namespace AgentGateway.FunctionalTests.Credentials;

/// <summary>On-behalf-of hops: the agent presents the user's token, the gateway exchanges it
/// (RFC 8693, against OpenIddict's real token exchange) with the agent's token as actor, and the
/// upstream receives a token that names both — and neither token the agent sent.</summary>
[Collection(GatewayCollection.Name)]
public sealed class TokenExchangeTests(GatewayFixture fx) : IAsyncLifetime
{
    public Task InitializeAsync() => fx.ResetAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task Upstream_gets_a_token_naming_the_user_and_the_agent_and_never_the_tokens_the_agent_sent()
    {
        await using var gateway = await GatewayInstance.StartAsync(fx.Config(withRedis: true));
        var agentToken = await fx.AgentTokenAsync();
        var userToken = await fx.UserTokenAsync("alice");
        var before = fx.Auth.ExchangesFor(Clients.GatewayExchange);

        using var response = await SendAsync(gateway, "/crm-obo/accounts?scope=admin&audience=elsewhere", agentToken, userToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1, fx.Auth.ExchangesFor(Clients.GatewayExchange) - before);
        var hopToken = fx.Crm.Header(0, "Authorization")!["Bearer ".Length..];
        await ValidateForCrmAsync(hopToken);
        var payload = new JsonWebToken(hopToken);
        Assert.Equal("alice", payload.Subject);
        Assert.True(payload.TryGetPayloadValue<JsonElement>("act", out var act), "the exchanged token has no act claim");
        Assert.Equal(Clients.Alpha, act.GetProperty("sub").GetString());
        Assert.Null(fx.Crm.Header(0, "Subject-Token"));
        fx.Crm.AssertNeverSaw(agentToken);
        fx.Crm.AssertNeverSaw(userToken);

        // The exchange's parameters are the configuration's; the agent's query named others.
        var sent = fx.Auth.LastExchangeParameters;
        Assert.Equal("crm.read", sent["scope"]);
        Assert.False(sent.ContainsKey("audience"));
        Assert.Equal("urn:ietf:params:oauth:token-type:access_token", sent["subject_token_type"]);
        Assert.Equal("urn:ietf:params:oauth:token-type:access_token", sent["actor_token_type"]);
    }

    [Fact]
    public async Task Tokens_are_cached_per_user_and_a_second_replica_reuses_them()
    {
        var config = fx.Config(withRedis: true);
        await using var first = await GatewayInstance.StartAsync(config);
        await using var second = await GatewayInstance.StartAsync(config);
        var agentToken = await fx.AgentTokenAsync();
        var alice = await fx.UserTokenAsync("alice");
        var aliceAgain = await fx.UserTokenAsync("alice");
        var bob = await fx.UserTokenAsync("bob");
        var before = fx.Auth.ExchangesFor(Clients.GatewayExchange);

        using (var r = await SendAsync(first, "/crm-obo/a", agentToken, alice)) { Assert.Equal(HttpStatusCode.OK, r.StatusCode); }
        using (var r = await SendAsync(first, "/crm-obo/b", agentToken, aliceAgain)) { Assert.Equal(HttpStatusCode.OK, r.StatusCode); }
        using (var r = await SendAsync(second, "/crm-obo/c", agentToken, alice)) { Assert.Equal(HttpStatusCode.OK, r.StatusCode); }
        using (var r = await SendAsync(first, "/crm-obo/d", agentToken, bob)) { Assert.Equal(HttpStatusCode.OK, r.StatusCode); }

        Assert.Equal(2, fx.Auth.ExchangesFor(Clients.GatewayExchange) - before);
        var tokens = Enumerable.Range(0, 4).Select(i => fx.Crm.Header(i, "Authorization")).ToList();
        Assert.Equal(tokens[0], tokens[1]);
        Assert.Equal(tokens[0], tokens[2]);
        Assert.NotEqual(tokens[0], tokens[3]);
        Assert.Equal("bob", new JsonWebToken(tokens[3]!["Bearer ".Length..]).Subject);
        foreach (var secret in new[] { agentToken, alice, aliceAgain, bob })
        {
            fx.Crm.AssertNeverSaw(secret);
        }
    }

    [Fact]
    public async Task Without_a_delegation_the_on_behalf_of_route_is_refused_403_and_nothing_is_exchanged()
    {
        await using var gateway = await GatewayInstance.StartAsync(fx.Config(withRedis: false));
        var agentToken = await fx.AgentTokenAsync();
        var before = fx.Auth.ExchangesFor(Clients.GatewayExchange);

        using var response = await SendAsync(gateway, "/crm-obo/accounts", agentToken, userToken: null);

        var problem = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.Forbidden, "delegation-required");
        Assert.Contains("Subject-Token", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(0, fx.Auth.ExchangesFor(Clients.GatewayExchange) - before);
        Assert.Empty(fx.Crm.Received);
    }

    [Theory]
    [InlineData("issued-to-another-client")]
    [InlineData("the-agents-own-token")]
    [InlineData("expired")]
    [InlineData("forged")]
    [InlineData("not-a-jwt")]
    [InlineData("for-another-audience")]
    [InlineData("bound-to-the-users-key")]
    public async Task A_delegation_that_does_not_verify_is_refused_401_and_never_forwarded(string variant)
    {
        await using var gateway = await GatewayInstance.StartAsync(fx.Config(withRedis: false));
        var agentToken = await fx.AgentTokenAsync();
        var now = DateTime.UtcNow;
        var delegation = variant switch
        {
            "issued-to-another-client" => await fx.UserTokenAsync("alice", Clients.Stranger),
            "the-agents-own-token" => agentToken,
            "expired" => fx.Auth.Mint("alice", AuthorizationServer.GatewayAudience, now.AddHours(-2), now.AddHours(-1)),
            "forged" => Forge(fx.Auth.Issuer, now),
            "not-a-jwt" => "alice",
            "for-another-audience" => await fx.Auth.GetUserTokenAsync("alice", Clients.Alpha, GatewayFixture.AgentSecret, "other"),
            // Issued to this agent and valid in every other way, but DPoP-bound (RFC 9449 §7.1).
            "bound-to-the-users-key" => fx.Auth.Mint("alice", AuthorizationServer.GatewayAudience, now.AddMinutes(-1), now.AddMinutes(10), now.AddMinutes(-1),
                claims: new Dictionary<string, object> { ["azp"] = Clients.Alpha, ["cnf"] = new Dictionary<string, object> { ["jkt"] = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" } }),
            _ => throw new ArgumentOutOfRangeException(nameof(variant)),
        };
        var before = fx.Auth.ExchangesFor(Clients.GatewayExchange);

        using var response = await SendAsync(gateway, "/crm-obo/accounts", agentToken, delegation);

        var problem = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.Unauthorized, "delegation-invalid");
        Assert.DoesNotContain(delegation, problem.ToString(), StringComparison.Ordinal);
        Assert.Equal(0, fx.Auth.ExchangesFor(Clients.GatewayExchange) - before);
        Assert.Empty(fx.Crm.Received);
    }

    [Fact]
    public async Task A_user_token_sent_on_a_route_that_does_not_exchange_is_stripped_in_any_spelling()
    {
        await using var gateway = await GatewayInstance.StartAsync(fx.Config(withRedis: false));
        var agentToken = await fx.AgentTokenAsync();
        var userToken = await fx.UserTokenAsync("alice");

        using var response = await SendAsync(gateway, "/crm/accounts", agentToken, userToken, header: "subject_token");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Null(fx.Crm.Header(0, "Subject-Token"));
        Assert.Null(fx.Crm.Header(0, "subject_token"));
        fx.Crm.AssertNeverSaw(userToken);
        fx.Crm.AssertNeverSaw(agentToken);
        Assert.Equal(Clients.CrmHop, new JsonWebToken(fx.Crm.Header(0, "Authorization")!["Bearer ".Length..]).Subject);
    }

    [Fact]
    public async Task With_delegation_off_a_request_carrying_a_user_token_is_refused_rather_than_ignored()
    {
        var config = fx.Config(withRedis: false);
        config["Gateway"]!["Inbound"]!.AsObject().Remove("Delegation");
        config["Gateway"]!["Agents"]!["support-bot"]!["Grants"] = new System.Text.Json.Nodes.JsonArray("llm", "crm-read");
        config["Gateway"]!["Grants"]!.AsObject().Remove("crm-for-users");
        config["ReverseProxy"]!["Routes"]!.AsObject().Remove("crm-obo");
        await using var gateway = await GatewayInstance.StartAsync(config);
        var agentToken = await fx.AgentTokenAsync();

        using var response = await SendAsync(gateway, "/crm/accounts", agentToken, await fx.UserTokenAsync("alice"));

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.Unauthorized, "delegation-invalid");
        Assert.Empty(fx.Crm.Received);
    }

    [Fact]
    public async Task Revoking_an_agent_after_a_reload_purges_its_on_behalf_of_tokens_from_memory_and_redis_on_every_replica()
    {
        var config = fx.Config(withRedis: true).WithAdmin();
        await using var first = await GatewayInstance.StartAsync(config);
        await using var second = await GatewayInstance.StartAsync(config);
        var agentToken = await fx.AgentTokenAsync();
        var alice = await fx.UserTokenAsync("alice");
        var bob = await fx.UserTokenAsync("bob");
        using (var r = await first.GetAsAgentAsync("/crm/accounts", agentToken)) { Assert.Equal(HttpStatusCode.OK, r.StatusCode); }
        var shared = await RedisTokenKeysAsync();

        // Alice's token is cached under the first revision: by the first replica, which fetched it,
        // and by the second, which read it back from Redis.
        using (var r = await SendAsync(first, "/crm-obo/a", agentToken, alice)) { Assert.Equal(HttpStatusCode.OK, r.StatusCode); }
        using (var r = await SendAsync(second, "/crm-obo/a", agentToken, alice)) { Assert.Equal(HttpStatusCode.OK, r.StatusCode); }
        var aliceKey = Assert.Single((await RedisTokenKeysAsync()).Except(shared));

        config["Gateway"]!["Agents"]!["support-bot"]!["Description"] = "Answers customer tickets (reloaded)";
        await first.RewriteConfigAsync(config);
        await second.RewriteConfigAsync(config);
        // A rewrite may be seen as more than one change; what matters is that a new revision serves.
        Assert.True(first.Config.Status.Revision > 1 && second.Config.Status.Revision > 1, "both replicas reloaded");

        // Bob's is cached under the second revision.
        using (var r = await SendAsync(second, "/crm-obo/b", agentToken, bob)) { Assert.Equal(HttpStatusCode.OK, r.StatusCode); }
        var bobKey = Assert.Single((await RedisTokenKeysAsync()).Except(shared).Except([aliceKey]));
        Assert.NotNull(await LocalTokenAsync(first, aliceKey));
        Assert.NotNull(await LocalTokenAsync(second, aliceKey));
        Assert.NotNull(await LocalTokenAsync(second, bobKey));

        using var admin = new HttpClient { BaseAddress = first.AdminAddress };
        using var revoke = new HttpRequestMessage(HttpMethod.Post, "/admin/agents/support-bot/revoke");
        revoke.Headers.Authorization = new AuthenticationHeaderValue("Bearer", await fx.AgentTokenAsync(Clients.Operator));
        using (var revoked = await admin.SendAsync(revoke)) { Assert.Equal(HttpStatusCode.OK, revoked.StatusCode); }

        // The second replica hears of it by pub/sub; poll with a deadline for both to have purged.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < deadline
            && ((await RedisTokenKeysAsync()).Count != shared.Count
                || await LocalTokenAsync(second, aliceKey) is not null
                || await LocalTokenAsync(second, bobKey) is not null))
        {
            await Task.Delay(50);
        }

        Assert.Equal(shared, await RedisTokenKeysAsync());
        foreach (var replica in new[] { first, second })
        {
            Assert.Null(await LocalTokenAsync(replica, aliceKey));
            Assert.Null(await LocalTokenAsync(replica, bobKey));
        }

        // The hop token every agent shares is not the revoked agent's alone: it stays.
        Assert.NotNull(await LocalTokenAsync(first, Assert.Single(shared)));
        fx.Crm.AssertNeverSaw(agentToken);
        fx.Crm.AssertNeverSaw(alice);
        fx.Crm.AssertNeverSaw(bob);
    }

    /// <summary>The token cache entries in Redis (leases excluded).</summary>
    private async Task<HashSet<string>> RedisTokenKeysAsync()
    {
        await using var redis = await ConnectionMultiplexer.ConnectAsync(fx.Redis.ConnectionString);
        var server = redis.GetServer(redis.GetEndPoints()[0]);
        var keys = new HashSet<string>(StringComparer.Ordinal);
        await foreach (var key in server.KeysAsync(pattern: "agw:token:*"))
        {
            if (!key.ToString().EndsWith(":lease", StringComparison.Ordinal))
            {
                keys.Add(key.ToString());
            }
        }

        return keys;
    }

    /// <summary>What the replica's in-process cache level holds under <paramref name="key"/>, read
    /// without filling or writing either level.</summary>
    private static async Task<CachedToken?> LocalTokenAsync(GatewayInstance gateway, string key) =>
        await gateway.Services.GetRequiredService<HybridCache>().GetOrCreateAsync<CachedToken?>(key, static _ => default, new HybridCacheEntryOptions
        {
            Flags = HybridCacheEntryFlags.DisableDistributedCache | HybridCacheEntryFlags.DisableLocalCacheWrite | HybridCacheEntryFlags.DisableUnderlyingData,
        });

    private static async Task<HttpResponseMessage> SendAsync(GatewayInstance gateway, string path, string agentToken, string? userToken, string header = "Subject-Token")
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", agentToken);
        if (userToken is not null)
        {
            request.Headers.TryAddWithoutValidation(header, userToken);
        }

        return await gateway.Client.SendAsync(request);
    }

    private async Task<IDictionary<string, object>> ValidateForCrmAsync(string jwt)
    {
        var result = await new JsonWebTokenHandler { MapInboundClaims = false }.ValidateTokenAsync(jwt, new TokenValidationParameters
        {
            ValidIssuer = fx.Auth.Issuer,
            ValidAudience = AuthorizationServer.CrmAudience,
            IssuerSigningKeys = fx.Auth.SigningKeys,
        });
        Assert.True(result.IsValid, result.Exception?.Message);
        return result.Claims;
    }

    private string Forge(string issuer, DateTime now)
    {
        using var rsa = System.Security.Cryptography.RSA.Create(2048);
        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = issuer,
            Audience = AuthorizationServer.GatewayAudience,
            Claims = new Dictionary<string, object> { ["sub"] = "alice", ["client_id"] = Clients.Alpha },
            NotBefore = now.AddMinutes(-1),
            Expires = now.AddMinutes(10),
            TokenType = "at+jwt",
            SigningCredentials = new SigningCredentials(new RsaSecurityKey(rsa) { KeyId = fx.Auth.SigningKeys[0].KeyId }, SecurityAlgorithms.RsaSha256),
        });
    }
}
