using System.Text;
using System.Text.Json.Nodes;
using AgentGateway.FunctionalTests.Infrastructure;

namespace AgentGateway.FunctionalTests.Adversarial;

/// <summary>
/// A hostile upstream steering the agent's client: a redirect (or a <c>Content-Location</c> or
/// <c>Refresh</c>) to a place of its choosing would be followed with the agent's custom headers —
/// its static key, its user's delegation token — and, on 307 and 308, its body. Whatever route it
/// is on, the agent only ever gets a reference that resolves to the gateway.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class RedirectTests(GatewayFixture fx) : IAsyncLifetime
{
    private readonly RawUpstream _upstream = RawUpstream.Start();
    private string _token = "";

    public async Task InitializeAsync()
    {
        await fx.ResetAsync();
        _token = await fx.AgentTokenAsync();
    }

    public async Task DisposeAsync() => await _upstream.DisposeAsync();

    [Theory]
    [InlineData("307 Temporary Redirect", "https://collector.attacker.example/v1/chat/completions")]
    [InlineData("308 Permanent Redirect", "//collector.attacker.example/v1/chat/completions")]
    [InlineData("302 Found", "/\\collector.attacker.example/")]
    [InlineData("301 Moved Permanently", "https:collector.attacker.example")]
    [InlineData("303 See Other", "https://gateway.test@collector.attacker.example/")]
    [InlineData("302 Found", "/\t/collector.attacker.example/")]
    [InlineData("300 Multiple Choices", "javascript:alert(1)")]
    public async Task A_redirect_away_from_the_gateway_is_refused_with_a_502_problem(string status, string location)
    {
        _upstream.Respond = _ => Answer(status, $"Location: {location}\r\n");
        await using var gateway = await GatewayInstance.StartAsync(Config());

        var response = await RawHttp.SendAsync(gateway, Get("/llm/openai/v1/models"));

        Assert.StartsWith("HTTP/1.1 502", response, StringComparison.Ordinal);
        Assert.Contains("upstream-unavailable", response, StringComparison.Ordinal);
        Assert.DoesNotContain("collector.attacker.example", response, StringComparison.Ordinal);
        Assert.DoesNotContain("Location:", response, StringComparison.OrdinalIgnoreCase);
        Assert.Single(_upstream.Received);
        Assert.Contains(gateway.Logs.Lines, line => line.Contains("with a Location that is not on the gateway", StringComparison.Ordinal));
        _upstream.AssertNeverSaw(_token);
    }

    [Fact]
    public async Task A_redirect_to_the_upstreams_own_origin_comes_back_on_the_routes_prefix()
    {
        _upstream.Respond = _ => Answer("307 Temporary Redirect", $"Location: {_upstream.Url}/v1/models/gpt-4o?x=1\r\n");
        await using var gateway = await GatewayInstance.StartAsync(Config());

        var response = await RawHttp.SendAsync(gateway, Get("/llm/openai/v1/models"));

        Assert.StartsWith("HTTP/1.1 307", response, StringComparison.Ordinal);
        Assert.Contains("Location: /llm/openai/v1/models/gpt-4o?x=1\r\n", response, StringComparison.Ordinal);
        _upstream.AssertNeverSaw(_token);
    }

    [Fact]
    public async Task A_redirect_to_a_path_on_the_gateway_passes_as_it_is()
    {
        _upstream.Respond = _ => Answer("302 Found", "Location: /llm/openai/v1/models/gpt-4o\r\n");
        await using var gateway = await GatewayInstance.StartAsync(Config());

        var response = await RawHttp.SendAsync(gateway, Get("/llm/openai/v1/models"));

        Assert.StartsWith("HTTP/1.1 302", response, StringComparison.Ordinal);
        Assert.Contains("Location: /llm/openai/v1/models/gpt-4o\r\n", response, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Content-Location: https://collector.attacker.example/x\r\n")]
    [InlineData("Location: //collector.attacker.example/x\r\n")]
    [InlineData("Refresh: 0; url=https://collector.attacker.example/x\r\n")]
    [InlineData("Refresh: 0; url=/\\collector.attacker.example/x\r\n")]
    [InlineData("Link: <https://collector.attacker.example/items?page=2>; rel=\"next\"\r\n")]
    [InlineData("Link: </llm/openai/v1/models?page=2>; rel=\"next\"\r\nLink: <//collector.attacker.example/x>; rel=preload\r\n")]
    [InlineData("Link: </llm/openai/v1/models?page=2>; rel=\"next\"; anchor=\"https://collector.attacker.example/\"\r\n")]
    [InlineData("Link: </llm/openai/v1/models?page=2>; rel=\"next\"; title=\"x\r\nLink: <https://collector.attacker.example/c>; rel=next\"\r\n")]
    public async Task Any_other_field_pointing_away_is_dropped_from_the_answer(string field)
    {
        _upstream.Respond = _ => Answer("200 OK", field + "X-Kept: yes\r\n");
        await using var gateway = await GatewayInstance.StartAsync(Config());

        var response = await RawHttp.SendAsync(gateway, Get("/llm/openai/v1/models"));

        Assert.StartsWith("HTTP/1.1 200", response, StringComparison.Ordinal);
        Assert.Contains("X-Kept: yes", response, StringComparison.Ordinal);
        Assert.DoesNotContain("collector.attacker.example", response, StringComparison.Ordinal);
        Assert.Contains(gateway.Logs.Lines, line => line.Contains("pointing away from the gateway", StringComparison.Ordinal));
        _upstream.AssertNeverSaw(_token);
    }

    /// <summary>The hop's credential is the gateway's, so is its challenge: an upstream's would
    /// send an OAuth-configured client's discovery (RFC 9728 <c>resource_metadata</c>) and its
    /// client authentication to an authorization server of the upstream's choosing.</summary>
    [Theory]
    [InlineData("401 Unauthorized", "WWW-Authenticate: Bearer resource_metadata=\"https://collector.attacker.example/.well-known/oauth-protected-resource\"\r\n")]
    [InlineData("401 Unauthorized", "www-authenticate: Basic realm=\"collector.attacker.example\"\r\nWWW-Authenticate: Bearer\r\n")]
    [InlineData("200 OK", "Authentication-Info: nextnonce=\"collector.attacker.example\"\r\n")]
    [InlineData("200 OK", "Proxy-Authentication-Info: nextnonce=\"collector.attacker.example\"\r\n")]
    [InlineData("407 Proxy Authentication Required", "Proxy-Authenticate: Basic realm=\"collector.attacker.example\"\r\n")]
    public async Task An_upstreams_authentication_challenge_never_reaches_the_agent(string status, string challenge)
    {
        _upstream.Respond = _ => Answer(status, challenge + "X-Kept: yes\r\n");
        await using var gateway = await GatewayInstance.StartAsync(Config());

        var response = await RawHttp.SendAsync(gateway, Get("/llm/openai/v1/models"));

        Assert.StartsWith("HTTP/1.1 " + status[..3], response, StringComparison.Ordinal);
        Assert.Contains("X-Kept: yes", response, StringComparison.Ordinal);
        Assert.DoesNotContain("collector.attacker.example", response, StringComparison.Ordinal);
        var fields = response[response.IndexOf("\r\n", StringComparison.Ordinal)..response.IndexOf("\r\n\r\n", StringComparison.Ordinal)];
        Assert.DoesNotContain("Authenticat", fields, StringComparison.OrdinalIgnoreCase);
        _upstream.AssertNeverSaw(_token);
    }

    private static byte[] Answer(string status, string headers) =>
        Encoding.ASCII.GetBytes($"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n{headers}\r\nok");

    private JsonObject Config()
    {
        var config = fx.Config(withRedis: false).WithUpstream("llm", _upstream.Url, new JsonObject { ["ActivityTimeout"] = "00:00:05" });
        config["Gateway"]!["Grants"]!["llm"]!["Paths"] = new JsonArray("/v1/models", "/v1/models/*", "/v1/chat/completions");
        return config;
    }

    private string Get(string target) =>
        $"GET {target} HTTP/1.1\r\n" +
        "Host: gateway.test\r\n" +
        $"Authorization: Bearer {_token}\r\n" +
        "Connection: close\r\n\r\n";
}
