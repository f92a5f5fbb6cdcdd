using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using AgentGateway.FunctionalTests.Infrastructure;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace AgentGateway.FunctionalTests.Proxy;

/// <summary>The core hop end to end: the agent's own token in, everything it brought stripped, the
/// route's grant checked, the hop's credential injected, forwarded to a recording upstream.</summary>
[Collection(GatewayCollection.Name)]
public sealed class CoreHopTests(GatewayFixture fx) : IAsyncLifetime
{
    public Task InitializeAsync() => fx.ResetAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task Llm_route_upstream_sees_the_configured_api_key_and_nothing_the_agent_brought()
    {
        await using var gateway = await GatewayInstance.StartAsync(fx.Config(withRedis: false));
        var token = await fx.AgentTokenAsync();
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/llm/openai/v1/chat/completions?model=gpt-x&access_token={token}&api_key=agent-key-query");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        request.Headers.Add("Cookie", "session=agent-cookie-secret");
        request.Headers.TryAddWithoutValidation("x-api-key", "agent-key-1");
        request.Headers.TryAddWithoutValidation("X_Api_Key", "agent-key-2");
        request.Headers.TryAddWithoutValidation("api-key", "agent-key-3");
        request.Headers.TryAddWithoutValidation("x-goog-api-key", "agent-key-4");
        request.Headers.TryAddWithoutValidation("anthropic-api-key", "agent-key-5");
        request.Headers.TryAddWithoutValidation("Proxy-Authorization", "Basic agent-key-6");
        request.Headers.TryAddWithoutValidation("DPoP", "agent-dpop-proof");
        request.Headers.TryAddWithoutValidation("X-Client-Cert", "agent-client-cert");
        request.Headers.TryAddWithoutValidation("X-Request-Id", "kept-request-id");
        request.Content = new StringContent("{\"model\":\"gpt-x\"}", Encoding.UTF8, "application/json");

        using var response = await gateway.Client.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var received = Assert.Single(fx.Llm.Received);
        Assert.Equal("Bearer " + fx.OpenAiKey, fx.Llm.Header(0, "Authorization"));
        foreach (var stripped in new[] { "Cookie", "x-api-key", "X_Api_Key", "api-key", "x-goog-api-key", "anthropic-api-key", "Proxy-Authorization", "DPoP", "X-Client-Cert" })
        {
            Assert.Null(fx.Llm.Header(0, stripped));
        }

        Assert.Equal("kept-request-id", fx.Llm.Header(0, "X-Request-Id"));
        Assert.Equal("/v1/chat/completions", received.RequestMessage.Path);
        Assert.Equal("gpt-x", received.RequestMessage.Query!["model"].Single());
        Assert.False(received.RequestMessage.Query!.ContainsKey("access_token"));
        Assert.False(received.RequestMessage.Query!.ContainsKey("api_key"));
        Assert.Equal("{\"model\":\"gpt-x\"}", received.RequestMessage.Body);
        fx.Llm.AssertNeverSaw(token);
        foreach (var secret in new[] { "agent-key-", "agent-cookie-secret", "agent-dpop-proof", "agent-client-cert" })
        {
            fx.Llm.AssertNeverSaw(secret);
        }

        // The hop secret never comes back to the agent, nor reaches a log line.
        Assert.DoesNotContain(fx.OpenAiKey, await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.DoesNotContain(response.Headers.Concat(response.Content.Headers), h => h.Value.Any(v => v.Contains(fx.OpenAiKey, StringComparison.Ordinal)));
        var leaking = gateway.Logs.Lines.Where(l => l.Contains(fx.OpenAiKey, StringComparison.Ordinal) || l.Contains(token, StringComparison.Ordinal)).ToList();
        Assert.True(leaking.Count == 0, "secret in logs: " + string.Join("\n", leaking.Select(l => l.Replace(token, "<AGENT-TOKEN>", StringComparison.Ordinal))));
    }

    [Fact]
    public async Task Header_the_gateway_injects_cannot_be_preset_by_the_agent_in_any_spelling()
    {
        await using var gateway = await GatewayInstance.StartAsync(fx.Config(withRedis: false));
        var token = await fx.AgentTokenAsync();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/llm/anthropic/v1/models");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        request.Headers.TryAddWithoutValidation("X-API-KEY", "agent-preset-1");
        request.Headers.TryAddWithoutValidation("x_api_key", "agent-preset-2");

        using var response = await gateway.Client.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Single(fx.Llm.Received);
        Assert.Equal(fx.AnthropicKey, fx.Llm.Header(0, "x-api-key"));
        Assert.Null(fx.Llm.Header(0, "x_api_key"));
        Assert.Null(fx.Llm.Header(0, "Authorization"));
        fx.Llm.AssertNeverSaw("agent-preset-");
        fx.Llm.AssertNeverSaw(token);
    }

    [Fact]
    public async Task Api_route_gets_a_client_credentials_token_from_the_real_server_and_fifty_requests_fetch_it_once()
    {
        await using var gateway = await GatewayInstance.StartAsync(fx.Config(withRedis: true));
        var token = await fx.AgentTokenAsync();
        var before = fx.Auth.TokenRequestsFor(Clients.CrmHop);

        var responses = await Task.WhenAll(Enumerable.Range(0, 50).Select(async i =>
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, $"/crm/customers/{i}");
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            using var response = await gateway.Client.SendAsync(request);
            return response.StatusCode;
        }));

        Assert.All(responses, status => Assert.Equal(HttpStatusCode.OK, status));
        Assert.Equal(1, fx.Auth.TokenRequestsFor(Clients.CrmHop) - before);
        Assert.Equal(50, fx.Crm.Received.Count);
        var injected = fx.Crm.Header(0, "Authorization");
        Assert.StartsWith("Bearer ", injected, StringComparison.Ordinal);
        Assert.All(Enumerable.Range(0, 50), i => Assert.Equal(injected, fx.Crm.Header(i, "Authorization")));
        await AssertIssuedByTheRealServerForCrm(injected![7..]);
        fx.Crm.AssertNeverSaw(token);
        fx.Crm.AssertNeverSaw(fx.CrmSecret);
    }

    [Fact]
    public async Task Second_gateway_instance_on_the_same_redis_serves_its_first_request_without_a_token_request()
    {
        var token = await fx.AgentTokenAsync();
        var before = fx.Auth.TokenRequestsFor(Clients.CrmHop);
        await using var first = await GatewayInstance.StartAsync(fx.Config(withRedis: true));
        await using var second = await GatewayInstance.StartAsync(fx.Config(withRedis: true));

        using (var response = await first.GetAsAgentAsync("/crm/accounts", token))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        Assert.Equal(1, fx.Auth.TokenRequestsFor(Clients.CrmHop) - before);
        using (var response = await second.GetAsAgentAsync("/crm/accounts", token))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        Assert.Equal(1, fx.Auth.TokenRequestsFor(Clients.CrmHop) - before);
        Assert.Equal(2, fx.Crm.Received.Count);
        Assert.Equal(fx.Crm.Header(0, "Authorization"), fx.Crm.Header(1, "Authorization"));
        fx.Crm.AssertNeverSaw(token);
    }

    [Theory]
    [InlineData("none")]
    [InlineData("not-a-jwt")]
    [InlineData("forged-signature")]
    [InlineData("expired")]
    [InlineData("other-audience")]
    [InlineData("alg-none")]
    [InlineData("id-token-type")]
    [InlineData("basic-scheme")]
    public async Task Agent_without_a_valid_token_is_refused_401_and_never_forwarded(string variant)
    {
        await using var gateway = await GatewayInstance.StartAsync(fx.Config(withRedis: false));
        var now = DateTime.UtcNow;
        string? authorization = variant switch
        {
            "none" => null,
            "not-a-jwt" => "Bearer not-a-jwt",
            "forged-signature" => "Bearer " + Forge(fx.Auth.Issuer, now),
            "expired" => "Bearer " + fx.Auth.Mint(Clients.Alpha, AuthorizationServer.GatewayAudience, now.AddHours(-2), now.AddHours(-1)),
            "other-audience" => "Bearer " + await fx.AgentTokenAsync(Clients.Alpha, "other"),
            "alg-none" => "Bearer " + Unsigned(fx.Auth.Issuer, now),
            "id-token-type" => "Bearer " + fx.Auth.Mint(Clients.Alpha, AuthorizationServer.GatewayAudience, now.AddMinutes(-1), now.AddMinutes(10), type: "JWT"),
            "basic-scheme" => "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes($"{Clients.Alpha}:{GatewayFixture.AgentSecret}")),
            _ => throw new ArgumentOutOfRangeException(nameof(variant)),
        };
        using var request = new HttpRequestMessage(HttpMethod.Get, "/llm/openai/v1/models");
        if (authorization is not null)
        {
            request.Headers.TryAddWithoutValidation("Authorization", authorization);
        }

        using var response = await gateway.Client.SendAsync(request);

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.Unauthorized, "unauthenticated");
        Assert.NotNull(response.Headers.WwwAuthenticate.FirstOrDefault());
        Assert.Empty(fx.Llm.Received);
    }

    [Theory]
    [InlineData("Algorithms", "ES256")]
    [InlineData("TokenTypes", "JWT")]
    public async Task A_configured_list_replaces_the_default_rather_than_adding_to_it(string setting, string only)
    {
        // The real server signs RS256 at+jwt tokens, both in the defaults. Configuring another
        // single value must leave exactly that value allowed.
        var config = fx.Config(withRedis: false);
        config["Gateway"]!["Inbound"]!["Issuers"]!["corp"]![setting] = new System.Text.Json.Nodes.JsonArray(only);
        await using var gateway = await GatewayInstance.StartAsync(config);

        using var response = await gateway.GetAsAgentAsync("/llm/openai/v1/models", await fx.AgentTokenAsync());

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.Unauthorized, "unauthenticated");
        Assert.Empty(fx.Llm.Received);
    }

    [Theory]
    [InlineData(Clients.Stranger, "agent-unknown")] // a valid token whose identity maps to no agent
    [InlineData(Clients.Beta, "agent-expired")]     // an agent past its inventory expiry
    public async Task Valid_token_of_an_agent_the_inventory_does_not_admit_is_refused_401(string client, string reason)
    {
        await using var gateway = await GatewayInstance.StartAsync(fx.Config(withRedis: false));
        using var response = await gateway.GetAsAgentAsync("/llm/openai/v1/models", await fx.AgentTokenAsync(client));

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.Unauthorized, reason);
        Assert.Empty(fx.Llm.Received);
    }

    [Fact]
    public async Task Route_outside_the_agents_grants_is_refused_403_and_never_forwarded()
    {
        await using var gateway = await GatewayInstance.StartAsync(fx.Config(withRedis: false));
        var token = await fx.AgentTokenAsync();
        using var response = await gateway.GetAsAgentAsync("/billing/invoices", token);

        var problem = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.Forbidden, "grant-missing");
        Assert.Contains("billing", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Empty(fx.Crm.Received);
        Assert.DoesNotContain(token, problem.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unknown_path_is_a_problem_not_an_empty_404()
    {
        await using var gateway = await GatewayInstance.StartAsync(fx.Config(withRedis: false));
        using var response = await gateway.GetAsAgentAsync("/nowhere", await fx.AgentTokenAsync());

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.NotFound, "route-unknown");
    }

    [Fact]
    public async Task Token_endpoint_refusing_the_gateway_answers_503_credential_unavailable_and_never_forwards()
    {
        var config = fx.Config(withRedis: false);
        config["Gateway"]!["Credentials"]!["crm"]!["ClientSecret"] = "env:AGW_TEST_WRONG_CRM_SECRET";
        Environment.SetEnvironmentVariable("AGW_TEST_WRONG_CRM_SECRET", "wrong-secret-canary");
        await using var gateway = await GatewayInstance.StartAsync(config);
        var token = await fx.AgentTokenAsync();

        using var response = await gateway.GetAsAgentAsync("/crm/accounts", token);

        var problem = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.ServiceUnavailable, "credential-unavailable");
        Assert.True(problem.GetProperty("detail").GetString()!.Contains("invalid_client", StringComparison.Ordinal), problem.GetProperty("detail").GetString());
        Assert.DoesNotContain("wrong-secret-canary", problem.ToString(), StringComparison.Ordinal);
        Assert.Empty(fx.Crm.Received);
        Assert.DoesNotContain(gateway.Logs.Lines, l => l.Contains("wrong-secret-canary", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Health_answers_and_readiness_reports_redis()
    {
        await using var gateway = await GatewayInstance.StartAsync(fx.Config(withRedis: true));

        using var health = await gateway.Client.GetAsync("/healthz");
        using var ready = await gateway.Client.GetAsync("/readyz");

        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        // A length, not a chunked body: a probe reads exactly what was sent.
        // (NonValidated: the ContentLength property would count a buffered chunked body itself.)
        Assert.Equal("2", Assert.Single(health.Content.Headers.NonValidated["Content-Length"]));
        Assert.NotEqual(true, health.Headers.TransferEncodingChunked);
        Assert.Equal("ok", await health.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        Assert.Contains("\"redis\":\"ok\"", await ready.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    private async Task AssertIssuedByTheRealServerForCrm(string jwt)
    {
        var result = await new JsonWebTokenHandler().ValidateTokenAsync(jwt, new TokenValidationParameters
        {
            ValidIssuer = fx.Auth.Issuer,
            ValidAudience = AuthorizationServer.CrmAudience,
            IssuerSigningKeys = fx.Auth.SigningKeys,
        });
        Assert.True(result.IsValid, result.Exception?.Message);
        Assert.Equal(Clients.CrmHop, result.Claims["sub"]);
    }

    /// <summary>A token like the real server's but signed with another key (claiming the real kid).</summary>
    private string Forge(string issuer, DateTime now)
    {
        using var rsa = RSA.Create(2048);
        var realKid = fx.Auth.SigningKeys[0].KeyId;
        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = issuer,
            Audience = AuthorizationServer.GatewayAudience,
            Claims = new Dictionary<string, object> { ["sub"] = Clients.Alpha },
            NotBefore = now.AddMinutes(-1),
            Expires = now.AddMinutes(10),
            TokenType = "at+jwt",
            SigningCredentials = new SigningCredentials(new RsaSecurityKey(rsa) { KeyId = realKid }, SecurityAlgorithms.RsaSha256),
        });
    }

    private static string Unsigned(string issuer, DateTime now)
    {
        static string Segment(string json) => Base64UrlEncoder.Encode(Encoding.UTF8.GetBytes(json));
        var exp = new DateTimeOffset(now.AddMinutes(10)).ToUnixTimeSeconds();
        return Segment("{\"alg\":\"none\",\"typ\":\"at+jwt\"}") + "." +
            Segment($"{{\"iss\":\"{issuer}\",\"aud\":\"{AuthorizationServer.GatewayAudience}\",\"sub\":\"{Clients.Alpha}\",\"exp\":{exp}}}") + ".";
    }
}
