using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using AgentGateway.FunctionalTests.Infrastructure;
using Microsoft.Extensions.Time.Testing;

namespace AgentGateway.FunctionalTests.Lifecycle;

/// <summary>Agent classes with their instances tracked and revocable one by one, and ephemeral
/// agents registered just in time, seen by every replica, refused the moment they expire.</summary>
[Collection(GatewayCollection.Name)]
public sealed class ClassesAndEphemeralAgentsTests(GatewayFixture fx) : IAsyncLifetime
{
    private const string Secret = "worker-secret";
    private readonly string _prefix = "worker-" + Guid.NewGuid().ToString("N")[..6];

    public async Task InitializeAsync()
    {
        await fx.ResetAsync();
        foreach (var n in new[] { 1, 2, 3 })
        {
            await fx.Auth.RegisterClientAsync($"{_prefix}-{n}", Secret, [], "gateway");
        }
    }

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task Instances_of_a_class_are_listed_separately_and_one_can_be_revoked_alone()
    {
        var config = WithTemplates(fx.Config(withRedis: false));
        config["Gateway"]!["Agents"]!["workers"] = new JsonObject
        {
            ["Owner"] = "batch-team@example.test",
            ["Class"] = new JsonObject { ["Issuer"] = "corp", ["SubjectPattern"] = _prefix + "-*" },
            ["Grants"] = new JsonArray("crm-read"),
        };
        await using var gateway = await GatewayInstance.StartAsync(config);
        var one = await fx.Auth.GetTokenAsync($"{_prefix}-1", Secret, "gateway");
        var two = await fx.Auth.GetTokenAsync($"{_prefix}-2", Secret, "gateway");
        using (await gateway.GetAsAgentAsync("/crm/a", one))
        using (await gateway.GetAsAgentAsync("/crm/b", one))
        using (await gateway.GetAsAgentAsync("/crm/c", two))
        {
        }

        using var admin = new HttpClient { BaseAddress = gateway.AdminAddress };
        var operatorToken = await fx.AgentTokenAsync(Clients.Operator);
        var view = await GetJsonAsync(admin, "/admin/agents/workers", operatorToken);
        using var revoke = await SendAsync(admin, HttpMethod.Post, $"/admin/agents/workers/instances/{_prefix}-1/revoke", operatorToken);
        using var oneAfter = await gateway.GetAsAgentAsync("/crm/d", one);
        using var twoAfter = await gateway.GetAsAgentAsync("/crm/e", two);

        Assert.Equal("class", view.GetProperty("kind").GetString());
        var instances = view.GetProperty("instances").EnumerateArray().ToList();
        Assert.Equal([$"{_prefix}-1", $"{_prefix}-2"], instances.Select(i => i.GetProperty("id").GetString()));
        Assert.Equal([2L, 1L], instances.Select(i => i.GetProperty("requests").GetInt64()));
        Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
        await ProblemAssert.IsProblemAsync(oneAfter, HttpStatusCode.Unauthorized, "agent-revoked");
        Assert.Equal(HttpStatusCode.OK, twoAfter.StatusCode);
        Assert.Equal(4, fx.Crm.Received.Count);
    }

    [Fact]
    public async Task An_ephemeral_agent_is_registered_used_on_another_replica_and_refused_when_its_time_is_up()
    {
        var config = WithTemplates(fx.Config(withRedis: true));
        // Both replicas read one clock, which the test moves past the agent's time.
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var first = await GatewayInstance.StartAsync(config, time);
        await using var second = await GatewayInstance.StartAsync(config, time);
        using var admin = new HttpClient { BaseAddress = first.AdminAddress };
        var operatorToken = await fx.AgentTokenAsync(Clients.Operator);
        var agentToken = await fx.Auth.GetTokenAsync($"{_prefix}-3", Secret, "gateway");
        var subject = $"{_prefix}-3";

        using var tooMuch = await RegisterAsync(admin, operatorToken, "tmp-bot", ["crm-read", "llm"], "00:00:04", subject);
        using var tooLong = await RegisterAsync(admin, operatorToken, "tmp-bot", ["crm-read"], "02:00:00", subject);
        using var readOnly = await RegisterAsync(admin, operatorToken, "support-bot", ["crm-read"], "00:00:04", subject);
        await ProblemAssert.IsProblemAsync(tooMuch, HttpStatusCode.BadRequest, "bad-request");
        await ProblemAssert.IsProblemAsync(tooLong, HttpStatusCode.BadRequest, "bad-request");
        await ProblemAssert.IsProblemAsync(readOnly, HttpStatusCode.Conflict, "conflict");

        using var registered = await RegisterAsync(admin, operatorToken, "tmp-bot", ["crm-read"], "00:00:04", subject);
        Assert.Equal(HttpStatusCode.Created, registered.StatusCode);
        var expiresAt = JsonDocument.Parse(await registered.Content.ReadAsStringAsync()).RootElement.GetProperty("expiresAt").GetDateTimeOffset();

        // The other replica hears of it on the channel.
        HttpStatusCode status;
        var deadline = DateTime.UtcNow.AddSeconds(2);
        do
        {
            using var attempt = await second.GetAsAgentAsync("/crm/accounts", agentToken);
            status = attempt.StatusCode;
        }
        while (status != HttpStatusCode.OK && DateTime.UtcNow < deadline);

        Assert.Equal(HttpStatusCode.OK, status);
        using (var notGranted = await second.GetAsAgentAsync("/llm/openai/v1/models", agentToken))
        {
            await ProblemAssert.IsProblemAsync(notGranted, HttpStatusCode.Forbidden, "grant-missing");
        }

        time.Advance(expiresAt - time.GetUtcNow() + TimeSpan.FromMilliseconds(200));
        using var expired = await second.GetAsAgentAsync("/crm/accounts", agentToken);
        Assert.Equal(HttpStatusCode.Unauthorized, expired.StatusCode);
        var list = await GetJsonAsync(admin, "/admin/agents", operatorToken);
        Assert.DoesNotContain(list.EnumerateArray(), a => a.GetProperty("id").GetString() == "tmp-bot");
    }

    /// <summary>The admin API with template <c>ticket-bot</c> for ephemeral agents.</summary>
    private static JsonObject WithTemplates(JsonObject config) => config.WithAdmin(new JsonObject
    {
        ["Templates"] = new JsonObject
        {
            ["ticket-bot"] = new JsonObject
            {
                ["Grants"] = new JsonArray("crm-read"),
                ["Issuers"] = new JsonArray("corp"),
                ["MaxTimeToLive"] = "00:10:00",
            },
        },
    });

    private static Task<HttpResponseMessage> RegisterAsync(HttpClient admin, string token, string id, string[] grants, string ttl, string subject) =>
        SendAsync(admin, HttpMethod.Post, "/admin/agents", token, JsonSerializer.Serialize(new
        {
            id,
            owner = "ticket-team@example.test",
            template = "ticket-bot",
            grants,
            timeToLive = ttl,
            identities = new[] { new { issuer = "corp", subject } },
        }));

    private static async Task<JsonElement> GetJsonAsync(HttpClient admin, string path, string token)
    {
        using var response = await SendAsync(admin, HttpMethod.Get, path, token);
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();
    }

    private static async Task<HttpResponseMessage> SendAsync(HttpClient http, HttpMethod method, string path, string token, string? body = null)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (body is not null)
        {
            request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        }

        return await http.SendAsync(request);
    }
}
