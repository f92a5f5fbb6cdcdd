using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using AgentGateway.FunctionalTests.Infrastructure;
using Microsoft.Extensions.Time.Testing;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace AgentGateway.FunctionalTests.Lifecycle;

/// <summary>Bounded lifetimes and provenance: long-lived agent tokens are refused, and an upstream
/// that receives a shared hop token still learns — verifiably — who acted.</summary>
[Collection(GatewayCollection.Name)]
public sealed class LifecycleTests(GatewayFixture fx) : IAsyncLifetime
{
    public Task InitializeAsync() => fx.ResetAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task A_token_living_two_days_is_refused()
    {
        await using var gateway = await GatewayInstance.StartAsync(fx.Config(withRedis: false));
        var twoDays = fx.Auth.Mint(Clients.Alpha, AuthorizationServer.GatewayAudience, DateTime.UtcNow.AddMinutes(-1), DateTime.UtcNow.AddDays(2));
        var hour = fx.Auth.Mint(Clients.Alpha, AuthorizationServer.GatewayAudience, DateTime.UtcNow.AddMinutes(-1), DateTime.UtcNow.AddMinutes(59));

        using var refused = await gateway.GetAsAgentAsync("/crm/accounts", twoDays);
        using var accepted = await gateway.GetAsAgentAsync("/crm/accounts", hour);

        var problem = await ProblemAssert.IsProblemAsync(refused, HttpStatusCode.Unauthorized, "token-lifetime-too-long");
        Assert.Contains("2881 minutes", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, accepted.StatusCode);
        Assert.Single(fx.Crm.Received);
    }

    [Fact]
    public async Task A_token_validated_once_is_not_accepted_past_its_expiry()
    {
        var config = fx.Config(withRedis: false);
        config["Gateway"]!["Inbound"]!["ClockSkew"] = "00:00:00";
        var agentToken = await fx.AgentTokenAsync();
        // The gateway's clock is the test's (started after the agent's token was issued, which a
        // zero skew would otherwise call issued in the future): the short token expires when the
        // test says, however slow the machine.
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var gateway = await GatewayInstance.StartAsync(config, time);
        using var warm = await gateway.GetAsAgentAsync("/crm/accounts", agentToken);
        var now = time.GetUtcNow().UtcDateTime;
        var shortLived = fx.Auth.Mint(Clients.Alpha, AuthorizationServer.GatewayAudience, now.AddSeconds(-1), now.AddMinutes(1));

        using var first = await gateway.GetAsAgentAsync("/crm/accounts", shortLived);
        using var second = await gateway.GetAsAgentAsync("/crm/accounts", shortLived);
        // Past its expiry on the gateway's clock, still valid on the system's: only the gateway's clock may decide.
        time.Advance(TimeSpan.FromMinutes(1) + TimeSpan.FromSeconds(1));
        using var expired = await gateway.GetAsAgentAsync("/crm/accounts", shortLived);

        Assert.Equal(HttpStatusCode.OK, warm.StatusCode);
        Assert.True(first.StatusCode == HttpStatusCode.OK, await first.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        var problem = await ProblemAssert.IsProblemAsync(expired, HttpStatusCode.Unauthorized, "unauthenticated");
        Assert.Contains("expired", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(3, fx.Crm.Received.Count);
    }

    [Fact]
    public async Task The_upstream_verifies_a_provenance_assertion_naming_agent_user_task_and_trace()
    {
        var config = fx.Config(withRedis: false);
        config["ReverseProxy"]!["Routes"]!["crm-obo"]!["Metadata"]!["Provenance"] = "true";
        await using var gateway = await GatewayInstance.StartAsync(config);
        var agentToken = await fx.AgentTokenAsync();
        var userToken = await fx.UserTokenAsync("alice");

        using var request = new HttpRequestMessage(HttpMethod.Get, "/crm-obo/accounts");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", agentToken);
        request.Headers.Add("Subject-Token", userToken);
        request.Headers.Add("Agent-Task", "ticket-42");
        // The agent tries to supply its own: it is stripped and replaced.
        request.Headers.Add("AgentGateway-Provenance", "forged.by.agent");
        using var response = await gateway.Client.SendAsync(request);
        using var plain = await gateway.GetAsAgentAsync("/crm/accounts", agentToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var assertion = fx.Crm.Header(0, "AgentGateway-Provenance")!;
        Assert.Null(fx.Crm.Header(1, "AgentGateway-Provenance"));
        using var keys = await gateway.Client.GetAsync("/.well-known/jwks.json");
        var keyBytes = await keys.Content.ReadAsByteArrayAsync();
        // A length, not a chunked body (NonValidated: the ContentLength property would count a buffered body itself).
        Assert.Equal(keyBytes.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), Assert.Single(keys.Content.Headers.NonValidated["Content-Length"]));
        var jwks = new JsonWebKeySet(System.Text.Encoding.UTF8.GetString(keyBytes));
        Assert.All(jwks.Keys, k => Assert.Null(k.D));
        var verified = await new JsonWebTokenHandler().ValidateTokenAsync(assertion, new TokenValidationParameters
        {
            IssuerSigningKeys = jwks.GetSigningKeys(),
            ValidIssuer = "agentgateway",
            ValidAudience = "crm-obo",
            ValidTypes = ["agentgateway-provenance+jwt"],
        });
        Assert.True(verified.IsValid, verified.Exception?.Message);
        Assert.Equal("support-bot", verified.Claims["sub"]);
        Assert.Equal("alice", verified.Claims["act_for"]);
        Assert.Equal("ticket-42", verified.Claims["task"]);
        Assert.Equal("crm-for-users", verified.Claims["grant"]);
        Assert.Equal("crm-obo", verified.Claims["credential"]);
        Assert.Matches("^[0-9a-f]{32}$", (string)verified.Claims["trace_id"]);
        var token = (JsonWebToken)verified.SecurityToken;
        Assert.True(token.ValidTo - token.IssuedAt <= TimeSpan.FromMinutes(1));
        fx.Crm.AssertNeverSaw(agentToken);
        fx.Crm.AssertNeverSaw(userToken);
    }
}
