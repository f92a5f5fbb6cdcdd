using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using AgentGateway.FunctionalTests.Infrastructure;

namespace AgentGateway.FunctionalTests.Configuration;

/// <summary>Reloads: a good one takes effect without a restart; a bad one is refused whole and the
/// last good revision keeps serving.</summary>
[Collection(GatewayCollection.Name)]
public sealed class ReloadTests(GatewayFixture fx) : IAsyncLifetime
{
    public Task InitializeAsync() => fx.ResetAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task A_valid_reload_takes_effect_without_a_restart()
    {
        await using var gateway = await GatewayInstance.StartAsync(fx.Config(withRedis: false));
        var token = await fx.AgentTokenAsync();
        Assert.Equal(HttpStatusCode.Forbidden, await StatusAsync(gateway, "/billing/x", token));

        var config = fx.Config(withRedis: false);
        ((JsonArray)config["Gateway"]!["Agents"]!["support-bot"]!["Grants"]!).Add("billing");
        await gateway.RewriteConfigAsync(config);

        Assert.Equal(2, gateway.Config.Status.Revision);
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(gateway, "/billing/x", token));
        fx.Crm.AssertNeverSaw(token);
    }

    [Fact]
    public async Task A_reload_that_changes_only_what_a_route_injects_builds_the_route_again_from_the_new_revision()
    {
        await using var gateway = await GatewayInstance.StartAsync(fx.Config(withRedis: false));
        var token = await fx.AgentTokenAsync();
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(gateway, "/llm/openai/v1/models", token));
        Assert.Equal("Bearer " + fx.OpenAiKey, fx.Llm.Header(0, "Authorization"));

        // The route's own configuration is the same text in both revisions: YARP would keep a route
        // that compares equal, and with it the credential the first revision compiled.
        var config = fx.Config(withRedis: false);
        config["Gateway"]!["Credentials"]!["openai"]!["Format"] = "Bearer rotated-{secret}";
        await gateway.RewriteConfigAsync(config);

        Assert.Equal(2, gateway.Config.Status.Revision);
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(gateway, "/llm/openai/v1/models", token));
        Assert.Equal("Bearer rotated-" + fx.OpenAiKey, fx.Llm.Header(1, "Authorization"));
        fx.Llm.AssertNeverSaw(token);
    }

    [Fact]
    public async Task An_invalid_reload_is_refused_logged_and_the_last_good_revision_keeps_serving()
    {
        await using var gateway = await GatewayInstance.StartAsync(fx.Config(withRedis: false));
        var token = await fx.AgentTokenAsync();

        var broken = fx.Config(withRedis: false);
        ((JsonArray)broken["Gateway"]!["Agents"]!["support-bot"]!["Grants"]!).Add("no-such-grant");
        broken["Gateway"]!["Credentials"]!["openai"]!["Secret"] = "sk-pasted-into-config-canary";
        await gateway.RewriteConfigAsync(broken);

        var status = gateway.Config.Status;
        Assert.Equal(1, status.Revision);
        Assert.NotNull(status.LastReloadFailedAt);
        Assert.Contains(status.LastReloadProblems, p => p.Path == "Gateway:Agents:support-bot:Grants:3");
        Assert.Contains(status.LastReloadProblems, p => p.Path == "Gateway:Credentials:openai:Secret");
        Assert.Contains(gateway.Logs.Lines, l => l.Contains("reload refused", StringComparison.Ordinal));
        Assert.DoesNotContain(gateway.Logs.Lines, l => l.Contains("sk-pasted-into-config-canary", StringComparison.Ordinal));
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(gateway, "/llm/openai/v1/models", token));
        Assert.Equal("Bearer " + fx.OpenAiKey, fx.Llm.Header(0, "Authorization"));
    }

    [Fact]
    public async Task A_reload_that_changes_process_settings_is_refused_naming_each_as_needing_a_restart()
    {
        await using var gateway = await GatewayInstance.StartAsync(fx.Config(withRedis: false));
        var token = await fx.AgentTokenAsync();

        var moved = fx.Config(withRedis: false);
        ((JsonArray)moved["Gateway"]!["Agents"]!["support-bot"]!["Grants"]!).Add("billing");
        moved["Gateway"]!["Audit"] = new JsonObject { ["Path"] = Path.Combine(Path.GetTempPath(), $"agw-audit-{Guid.NewGuid():N}.jsonl") };
        moved["Gateway"]!["Admin"] ??= new JsonObject();
        moved["Gateway"]!["Admin"]!["RevocationsFile"] = Path.Combine(Path.GetTempPath(), $"agw-revocations-{Guid.NewGuid():N}.jsonl");
        await gateway.RewriteConfigAsync(moved);

        var status = gateway.Config.Status;
        Assert.Equal(1, status.Revision);
        Assert.Equal(
            ["Gateway:Admin:RevocationsFile", "Gateway:Audit:Path"],
            status.LastReloadProblems.Select(p => p.Path).Order(StringComparer.Ordinal));
        Assert.All(status.LastReloadProblems, p => Assert.Contains("needs a restart", p.Message, StringComparison.Ordinal));
        // The grant added beside them did not take effect either: the reload is refused whole.
        Assert.Equal(HttpStatusCode.Forbidden, await StatusAsync(gateway, "/billing/x", token));
        fx.Crm.AssertNeverSaw(token);
    }

    private static async Task<HttpStatusCode> StatusAsync(GatewayInstance gateway, string path, string token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var response = await gateway.Client.SendAsync(request);
        return response.StatusCode;
    }
}
