using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using AgentGateway.FunctionalTests.Infrastructure;

namespace AgentGateway.FunctionalTests.Adversarial;

/// <summary>
/// The README's threat model (and its response half): requests written byte by byte to the real gateway on
/// Kestrel, to an upstream that keeps every byte it receives and answers with bytes the test
/// chooses. The agent's grant allows only <c>/v1/models…</c> and <c>/v1/chat/completions</c> on
/// the LLM route; what is being attacked is the gap between what policy decided on and what the
/// upstream received, and what comes back.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class HttpAttackTests(GatewayFixture fx) : IAsyncLifetime
{
    private readonly RawUpstream _upstream = RawUpstream.Start();
    private string _token = "";

    public async Task InitializeAsync()
    {
        await fx.ResetAsync();
        _token = await fx.AgentTokenAsync();
    }

    public async Task DisposeAsync() => await _upstream.DisposeAsync();

    [Fact]
    public async Task The_control_request_is_forwarded_with_the_hop_key_in_place_of_the_agents_token()
    {
        await using var gateway = await GatewayInstance.StartAsync(Config());

        var response = await RawHttp.SendAsync(gateway, Get("/llm/openai/v1/models"));

        Assert.StartsWith("HTTP/1.1 200", response, StringComparison.Ordinal);
        var received = Assert.Single(_upstream.Received);
        Assert.Equal("GET /v1/models HTTP/1.1", received.RequestLine);
        Assert.Equal(["Bearer " + fx.OpenAiKey], received.Headers("Authorization"));
        _upstream.AssertNeverSaw(_token);
    }

    /// <summary>Each target tries to reach <c>/v1/admin/keys</c> while looking like an allowed
    /// path to a naive matcher. Whatever the gateway does, the upstream must never receive a
    /// target that any common normalisation (percent-decoding, however many times; backslash as
    /// slash; matrix parameters dropped; empty and dot segments resolved) turns into a path the
    /// grant does not allow.</summary>
    [Theory]
    [InlineData("/llm/openai/v1/models/../admin/keys")]
    [InlineData("/llm/openai/v1/models/%2e%2e/admin/keys")]
    [InlineData("/llm/openai/v1/models/%2E%2E/admin/keys")]
    [InlineData("/llm/openai/v1/models/.%2e/admin/keys")]
    [InlineData("/llm/openai/v1/models%2f..%2fadmin%2fkeys")]
    [InlineData("/llm/openai/v1/models%2F..%2Fadmin%2Fkeys")]
    [InlineData("/llm/openai/v1/models/%252e%252e/admin/keys")]
    [InlineData("/llm/openai/v1/models/..%5cadmin%5ckeys")]
    [InlineData("/llm/openai/v1/models\\..\\admin\\keys")]
    [InlineData("/llm/openai/v1/models;/../admin/keys")]
    [InlineData("/llm/openai/v1/models/..;/admin/keys")]
    [InlineData("/llm/openai//v1/admin/keys")]
    [InlineData("/llm/openai/v1/models/%00/../../admin/keys")]
    [InlineData("/llm/openai/v1/models/..%2500admin")]
    [InlineData("/llm/openai/v1/models/x%2500/../../admin/keys")]
    [InlineData("/llm/openai/v1/models/%c0%ae%c0%ae/admin/keys")]
    [InlineData("/llm/openai/./v1/./admin/keys")]
    [InlineData("/llm/openai/v1/MODELS/../admin/keys")]
    [InlineData("http://127.0.0.1/llm/openai/v1/admin/keys")]
    [InlineData("/llm/openai/v1/admin/keys#/v1/models")]
    [InlineData("/llm/openai/v1/admin/keys?/v1/models")]
    public async Task A_path_trick_never_delivers_a_path_the_grant_refuses(string target)
    {
        await using var gateway = await GatewayInstance.StartAsync(Config());

        var response = await RawHttp.SendAsync(gateway, Get(target));

        foreach (var received in _upstream.Received)
        {
            var path = received.Target.Split('?')[0];
            var normalised = AgentGateway.Fuzz.LenientPath.Normalise(path).ToLowerInvariant();
            Assert.True(normalised is "/v1/models" or "/v1/chat/completions" || normalised.StartsWith("/v1/models/", StringComparison.Ordinal) && !normalised[11..].Contains('/'),
                $"forwarded '{received.Target}', which normalises to '{normalised}'");
            Assert.DoesNotContain("admin", received.Target, StringComparison.OrdinalIgnoreCase);
        }

        if (_upstream.Received.Count == 0)
        {
            Assert.Matches("^HTTP/1.1 (400|403|404) ", response);
            // Kestrel answers some malformed targets itself, without a body.
            Assert.True(response.Contains("application/problem+json", StringComparison.Ordinal) || response.StartsWith("HTTP/1.1 400", StringComparison.Ordinal), response);
        }

        _upstream.AssertNeverSaw(_token);
    }

    /// <summary>TRACE (and Microsoft's TRACK) make a server send the request back — including the
    /// credential the gateway just injected. No grant can allow them.</summary>
    [Theory]
    [InlineData("TRACE")]
    [InlineData("TRACK")]
    [InlineData("trace")]
    public async Task Echo_methods_are_refused_whatever_the_grant_and_never_forwarded(string method)
    {
        _upstream.Respond = request => RawUpstream.Ok(request.Text, "Content-Type: message/http\r\n");
        var config = Config();
        config["Gateway"]!["Grants"]!["llm"]!.AsObject().Remove("Paths");
        await using var gateway = await GatewayInstance.StartAsync(config);

        var response = await RawHttp.SendAsync(gateway, Get("/llm/openai/v1/models").Replace("GET ", method + " ", StringComparison.Ordinal));

        Assert.Matches("^HTTP/1.1 (400|405) ", response);
        Assert.DoesNotContain(fx.OpenAiKey, response, StringComparison.Ordinal);
        Assert.Empty(_upstream.Received);
    }

    [Theory]
    [InlineData("header")]
    [InlineData("body")]
    [InlineData("body-split-across-writes")]
    [InlineData("error-page")]
    public async Task An_upstream_echoing_the_injected_credential_never_hands_it_to_the_agent(string where)
    {
        _upstream.Respond = request =>
        {
            var authorization = request.Headers("Authorization").Single();
            return where switch
            {
                "header" => RawUpstream.Ok("ok", $"X-Debug-Auth: {authorization}\r\n"),
                "body" => RawUpstream.Ok($"{{\"you_sent\":\"{authorization}\"}}"),
                "error-page" => Encoding.ASCII.GetBytes($"HTTP/1.1 401 Unauthorized\r\nContent-Type: text/html\r\nContent-Length: {$"<p>bad key: {authorization}</p>".Length}\r\n\r\n<p>bad key: {authorization}</p>"),
                _ => Chunked(["{\"you_sent\":\"" + authorization[..20], authorization[20..] + "\"}"]),
            };
        };
        await using var gateway = await GatewayInstance.StartAsync(Config());

        var response = await RawHttp.SendAsync(gateway, Get("/llm/openai/v1/models"));

        Assert.StartsWith("HTTP/1.1 ", response, StringComparison.Ordinal);
        Assert.DoesNotContain(fx.OpenAiKey, response, StringComparison.Ordinal);
        Assert.Single(_upstream.Received);
        Assert.Contains(gateway.Logs.Lines, line => line.Contains("echoed", StringComparison.OrdinalIgnoreCase));
        Assert.DoesNotContain(gateway.Logs.Lines, line => line.Contains(fx.OpenAiKey, StringComparison.Ordinal));
    }

    /// <summary>A hop token is no configured secret: only the gateway knows it was injected on this
    /// request, so only that knowledge keeps an upstream's echo of it from the agent.</summary>
    [Theory]
    [InlineData("header")]
    [InlineData("body")]
    [InlineData("body-split-across-writes")]
    public async Task An_upstream_echoing_the_hop_token_it_was_sent_never_hands_it_to_the_agent(string where)
    {
        _upstream.Respond = request =>
        {
            var authorization = request.Headers("Authorization").Single();
            return where switch
            {
                "header" => RawUpstream.Ok("ok", $"X-Debug-Auth: {authorization}\r\n"),
                "body" => RawUpstream.Ok($"{{\"you_sent\":\"{authorization}\"}}"),
                _ => Chunked(["{\"you_sent\":\"" + authorization[..30], authorization[30..] + "\"}"]),
            };
        };
        var config = Config();
        config.WithUpstream("crm", _upstream.Url);
        await using var gateway = await GatewayInstance.StartAsync(config);

        var response = await RawHttp.SendAsync(gateway, Get("/crm/accounts"));

        var hopToken = _upstream.Received.Single().Headers("Authorization").Single()["Bearer ".Length..];
        Assert.StartsWith("HTTP/1.1 200", response, StringComparison.Ordinal);
        Assert.DoesNotContain(hopToken, response, StringComparison.Ordinal);
        Assert.DoesNotContain(hopToken[^16..], response, StringComparison.Ordinal);
        Assert.Contains(gateway.Logs.Lines, line => line.Contains("echoed", StringComparison.OrdinalIgnoreCase));
        _upstream.AssertNeverSaw(_token);
    }

    /// <summary>A response's <c>Connection</c> header nominates more headers as hop-by-hop: they
    /// are for the gateway's connection to the upstream, not for the agent (RFC 9110 §7.6.1).</summary>
    [Fact]
    public async Task Hop_by_hop_response_headers_including_nominated_ones_do_not_reach_the_agent()
    {
        _upstream.Respond = _ => RawUpstream.Ok("ok", "Connection: keep-alive, X-Upstream-Session\r\nX-Upstream-Session: internal-42\r\nKeep-Alive: timeout=5\r\nProxy-Authenticate: Basic realm=\"internal\"\r\nX-Kept: yes\r\n");
        await using var gateway = await GatewayInstance.StartAsync(Config());

        var response = await RawHttp.SendAsync(gateway, Get("/llm/openai/v1/models"));

        Assert.StartsWith("HTTP/1.1 200", response, StringComparison.Ordinal);
        var head = response[..response.IndexOf("\r\n\r\n", StringComparison.Ordinal)];
        Assert.Contains("X-Kept: yes", head, StringComparison.Ordinal);
        Assert.DoesNotContain("X-Upstream-Session", head, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("Keep-Alive:", head, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("Proxy-Authenticate", head, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>The request direction: what an agent nominates as hop-by-hop ends at the gateway,
    /// and the hop-by-hop headers themselves never travel on.</summary>
    [Fact]
    public async Task Hop_by_hop_request_headers_including_nominated_ones_do_not_reach_the_upstream()
    {
        await using var gateway = await GatewayInstance.StartAsync(Config());

        var response = await RawHttp.SendAsync(gateway, Get("/llm/openai/v1/models", "Connection: keep-alive, X-Agent-Hop\r\nX-Agent-Hop: for-the-gateway-only\r\nKeep-Alive: timeout=5\r\nProxy-Authorization: Basic YWdlbnQ6cHc=\r\nTE: trailers\r\nUpgrade: h2c\r\n"));

        Assert.StartsWith("HTTP/1.1 200", response, StringComparison.Ordinal);
        var received = Assert.Single(_upstream.Received);
        foreach (var name in new[] { "X-Agent-Hop", "Keep-Alive", "Proxy-Authorization", "Upgrade" })
        {
            Assert.Empty(received.Headers(name));
        }

        Assert.DoesNotContain("for-the-gateway-only", received.Text, StringComparison.Ordinal);
    }

    /// <summary>The Host an agent sends is not the upstream's business and decides nothing: the
    /// route is chosen by path, the upstream gets its own authority, and no forwarding header
    /// carries the agent's host (none is configured here, so none is sent).</summary>
    [Theory]
    [InlineData("Host: evil.example\r\n", true)]
    [InlineData("Host: evil.example:8443\r\n", true)]
    [InlineData("Host: localhost\r\nX-Forwarded-Host: evil.example\r\n", true)]
    [InlineData("Host: localhost\r\nForwarded: host=evil.example\r\n", true)]
    [InlineData("Host: 127.0.0.1@evil.example\r\n", false)] // not a host: Kestrel answers 400 itself
    public async Task A_hostile_host_header_is_not_passed_on(string hostHeaders, bool forwarded)
    {
        await using var gateway = await GatewayInstance.StartAsync(Config());

        var request = Get("/llm/openai/v1/models").Replace("Host: gateway.test\r\n", hostHeaders, StringComparison.Ordinal);
        var response = await RawHttp.SendAsync(gateway, request);

        Assert.Contains(hostHeaders, request, StringComparison.Ordinal);
        if (forwarded)
        {
            Assert.StartsWith("HTTP/1.1 200", response, StringComparison.Ordinal);
            var received = Assert.Single(_upstream.Received);
            Assert.DoesNotContain("evil.example", received.Head, StringComparison.Ordinal);
            Assert.Empty(received.Headers("X-Forwarded-Host"));
            Assert.Equal([new Uri(_upstream.Url).Authority], received.Headers("Host"));
        }
        else
        {
            Assert.StartsWith("HTTP/1.1 400", response, StringComparison.Ordinal);
            Assert.Empty(_upstream.Received);
        }

        _upstream.AssertNeverSaw(_token);
    }

    /// <summary>With a public origin configured, every forwarder that names the original host —
    /// YARP's default <c>X-Forwarded-Host</c>, a route's <c>Forwarded</c> and
    /// <c>RequestHeaderOriginalHost</c> — names that origin, whatever Host the agent wrote.</summary>
    [Theory]
    [InlineData("https://gateway.example.com", "Host: evil.example\r\n", "gateway.example.com")]
    [InlineData("https://gateway.example.com https://gateway.internal.example:8443", "Host: GATEWAY.internal.example:8443\r\n", "gateway.internal.example:8443")]
    [InlineData("https://gateway.example.com https://gateway.internal.example:8443", "Host: gateway.example.com:443\r\n", "gateway.example.com")]
    [InlineData("https://gateway.example.com https://gateway.internal.example:8443", "Host: evil.example\r\n", null)] // which one is not known
    public async Task Forwarding_headers_name_the_configured_public_origin_never_the_agents_host(string origins, string hostHeader, string? expected)
    {
        var config = Config();
        config["Gateway"]!["Inbound"]!["PublicOrigins"] = new JsonArray([.. origins.Split(' ').Select(origin => JsonValue.Create(origin))]);
        await using var gateway = await GatewayInstance.StartAsync(config);
        var original = Get("/llm/openai/v1/models").Replace("Host: gateway.test\r\n", hostHeader, StringComparison.Ordinal);
        var keepingConfig = config.DeepClone().AsObject();
        var transforms = keepingConfig["ReverseProxy"]!["Routes"]!["openai"]!["Transforms"]!.AsArray();
        transforms.Add(new JsonObject { ["RequestHeaderOriginalHost"] = "true" });
        transforms.Add(new JsonObject { ["Forwarded"] = "for,host,proto", ["Action"] = "Set" });
        await using var keeping = await GatewayInstance.StartAsync(keepingConfig);

        var plain = await RawHttp.SendAsync(gateway, original);
        var kept = await RawHttp.SendAsync(keeping, original);

        Assert.Contains(hostHeader, original, StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 200", plain, StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 200", kept, StringComparison.Ordinal);
        Assert.Equal(2, _upstream.Received.Count);
        var forwarded = Assert.Single(_upstream.Received[1].Headers("Forwarded"));
        if (expected is null)
        {
            Assert.Empty(_upstream.Received[0].Headers("X-Forwarded-Host"));
            Assert.Equal([new Uri(_upstream.Url).Authority], _upstream.Received[1].Headers("Host"));
            // YARP writes an empty host="" then: it claims nothing.
            Assert.DoesNotMatch("host=\"?[^\";]", forwarded);
        }
        else
        {
            Assert.Equal([expected], _upstream.Received[0].Headers("X-Forwarded-Host"));
            Assert.Equal([expected], _upstream.Received[1].Headers("Host"));
            Assert.Matches($"host=\"?{System.Text.RegularExpressions.Regex.Escape(expected)}\"?(;|$)", forwarded);
        }

        Assert.All(_upstream.Received, received => Assert.DoesNotContain("evil.example", received.Head, StringComparison.Ordinal));
        _upstream.AssertNeverSaw(_token);
    }

    [Fact]
    public async Task A_hanging_upstream_gets_a_504_problem_within_the_clusters_timeout_and_the_next_request_is_served()
    {
        var hang = true;
        _upstream.Respond = _ => hang ? null : RawUpstream.Ok("ok");
        await using var gateway = await GatewayInstance.StartAsync(Config());

        var started = DateTime.UtcNow;
        var response = await RawHttp.SendAsync(gateway, Get("/llm/openai/v1/models"), TimeSpan.FromSeconds(20));
        var waited = DateTime.UtcNow - started;
        hang = false;
        var next = await RawHttp.SendAsync(gateway, Get("/llm/openai/v1/models"));

        Assert.StartsWith("HTTP/1.1 504", response, StringComparison.Ordinal);
        Assert.Contains("application/problem+json", response, StringComparison.Ordinal);
        Assert.Contains("upstream-timeout", response, StringComparison.Ordinal);
        Assert.InRange(waited, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(15));
        Assert.StartsWith("HTTP/1.1 200", next, StringComparison.Ordinal);
        _upstream.AssertNeverSaw(_token);
    }

    [Fact]
    public async Task An_upstream_nobody_listens_on_gets_a_502_problem()
    {
        var config = Config();
        var closed = new TcpListener(System.Net.IPAddress.Loopback, 0);
        closed.Start();
        var port = ((System.Net.IPEndPoint)closed.LocalEndpoint).Port;
        closed.Stop();
        config.WithUpstream("llm", $"http://127.0.0.1:{port}");
        await using var gateway = await GatewayInstance.StartAsync(config);

        var response = await RawHttp.SendAsync(gateway, Get("/llm/openai/v1/models"));

        Assert.StartsWith("HTTP/1.1 502", response, StringComparison.Ordinal);
        Assert.Contains("application/problem+json", response, StringComparison.Ordinal);
        Assert.Contains("upstream-unavailable", response, StringComparison.Ordinal);
    }

    private JsonObject Config()
    {
        var config = fx.Config(withRedis: false).WithUpstream("llm", _upstream.Url, new JsonObject { ["ActivityTimeout"] = "00:00:02" });
        config["Gateway"]!["Grants"]!["llm"]!["Paths"] = new JsonArray("/v1/models", "/v1/models/*", "/v1/chat/completions");
        return config;
    }

    private string Get(string target, string extraHeaders = "") =>
        $"GET {target} HTTP/1.1\r\n" +
        "Host: gateway.test\r\n" +
        $"Authorization: Bearer {_token}\r\n" +
        extraHeaders +
        "Connection: close\r\n\r\n";

    private static byte[] Chunked(string[] chunks)
    {
        var body = new StringBuilder("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
        foreach (var chunk in chunks)
        {
            body.Append(System.Globalization.CultureInfo.InvariantCulture, $"{Encoding.UTF8.GetByteCount(chunk):x}\r\n{chunk}\r\n");
        }

        return Encoding.UTF8.GetBytes(body.Append("0\r\n\r\n").ToString());
    }
}
