using System.Net;
using System.Net.WebSockets;
using System.Text.Json.Nodes;
using AgentGateway.FunctionalTests.Infrastructure;

namespace AgentGateway.FunctionalTests.Adversarial;

/// <summary>
/// Request smuggling and protocol switches, on raw sockets: a request whose body could be read two ways is refused 400
/// before anything else, on every route, and its connection closed — including the shapes Kestrel
/// accepts and normalises (Content-Length beside Transfer-Encoding, which it keeps as
/// X-Content-Length; codings before chunked; chunked twice; Transfer-Encoding on HTTP/1.0). And
/// nothing becomes a tunnel on a route that did not opt in: WebSocket over HTTP/1.1 and over HTTP/2,
/// any other Upgrade, CONNECT. An h2c offer is declined (answered in HTTP/1.1), and an upstream that
/// switches protocols anyway gets no tunnel.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class FramingAndUpgradeTests(GatewayFixture fx) : IAsyncLifetime
{
    private readonly RawUpstream _upstream = RawUpstream.Start();
    private readonly GatewayEndpoints _endpoints = new();
    private string _token = "";

    public async Task InitializeAsync()
    {
        await fx.ResetAsync();
        _token = await fx.AgentTokenAsync();
    }

    public async Task DisposeAsync()
    {
        await _upstream.DisposeAsync();
        _endpoints.Dispose();
    }

    public static TheoryData<string, string, string> Ambiguous()
    {
        var data = new TheoryData<string, string, string>();
        string[] framings =
        [
            "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n",
            "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n",
            "Transfer-Encoding: gzip, chunked\r\n",
            "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
            "Transfer-Encoding: chunked, chunked\r\n",
            "Transfer-Encoding: chunked\r\nX-Content-Length: 4\r\n",
            "X-Content-Length: 4\r\nContent-Length: 5\r\n",
        ];
        foreach (var route in new[] { "/llm/openai/v1/chat/completions", "/llm/anthropic/v1/messages" })
        {
            foreach (var framing in framings)
            {
                data.Add(route, "HTTP/1.1", framing);
            }

            data.Add(route, "HTTP/1.0", "Transfer-Encoding: chunked\r\n");
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Ambiguous))]
    public async Task Ambiguous_framing_is_refused_400_before_anything_else_and_the_connection_closed(string target, string version, string framing)
    {
        await using var gateway = await GatewayInstance.StartAsync(Config());
        var request =
            $"POST {target} {version}\r\n" +
            $"Host: {gateway.Address.Authority}\r\n" +
            $"Authorization: Bearer {_token}\r\n" +
            "Content-Type: application/json\r\n" +
            framing +
            "\r\n" +
            "5\r\n{\"a\":\r\n0\r\n\r\n" +
            "GET /llm/openai/v1/models HTTP/1.1\r\n" +
            $"Host: {gateway.Address.Authority}\r\n\r\n";

        var response = await RawHttp.SendAsync(gateway, request);

        Assert.StartsWith("HTTP/1.1 400", response, StringComparison.Ordinal);
        var head = response[..response.IndexOf("\r\n\r\n", StringComparison.Ordinal)];
        Assert.Contains("Connection: close", head, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("\"reason\":\"bad-request\"", response, StringComparison.Ordinal);
        Assert.Contains("ambiguous framing", response, StringComparison.Ordinal);
        // Not the request, and not what followed it on the connection.
        Assert.Empty(_upstream.Received);
        Assert.Single(response.Split("HTTP/1.1 ", StringSplitOptions.RemoveEmptyEntries));
    }

    [Theory]
    [InlineData("Transfer-Encoding: chunked\r\n", "5\r\n{\"a\":\r\n2\r\n1}\r\n0\r\n\r\n")]
    [InlineData("Transfer-Encoding: Chunked\r\n", "7\r\n{\"a\":1}\r\n0\r\n\r\n")]
    [InlineData("Content-Length: 7\r\n", "{\"a\":1}")]
    public async Task One_framing_read_one_way_is_forwarded_with_the_body_intact(string framing, string body)
    {
        await using var gateway = await GatewayInstance.StartAsync(Config());
        var request =
            "POST /llm/openai/v1/chat/completions HTTP/1.1\r\n" +
            $"Host: {gateway.Address.Authority}\r\n" +
            $"Authorization: Bearer {_token}\r\n" +
            "Content-Type: application/json\r\n" +
            framing +
            "Connection: close\r\n\r\n" + body;

        var response = await RawHttp.SendAsync(gateway, request);

        Assert.StartsWith("HTTP/1.1 200", response, StringComparison.Ordinal);
        var received = Assert.Single(_upstream.Received);
        Assert.Equal("{\"a\":1}", Body(received));
        Assert.Empty(received.Headers("X-Content-Length"));
        _upstream.AssertNeverSaw(_token);
    }

    public static TheoryData<string, string> Switches()
    {
        var data = new TheoryData<string, string>();
        string[] asks =
        [
            "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
            "Connection: Upgrade\r\nUpgrade: WebSocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Extensions: permessage-deflate\r\n",
            "Connection: keep-alive, Upgrade\r\nUpgrade: SPDY/3.1\r\n",
            "Connection: Upgrade\r\nUpgrade: foo/2, websocket\r\n",
            "Connection: Upgrade\r\n",
            "Upgrade: websocket\r\n",
        ];
        foreach (var route in new[] { "/llm/openai/v1/models", "/llm/anthropic/v1/models" })
        {
            foreach (var ask in asks)
            {
                data.Add(route, ask);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Switches))]
    public async Task A_protocol_switch_on_a_route_that_did_not_opt_in_is_refused_and_never_forwarded(string target, string ask)
    {
        await using var gateway = await GatewayInstance.StartAsync(Config());
        var request =
            $"GET {target} HTTP/1.1\r\n" +
            $"Host: {gateway.Address.Authority}\r\n" +
            $"Authorization: Bearer {_token}\r\n" +
            ask + "\r\n";

        var response = await RawHttp.SendAsync(gateway, request);

        Assert.StartsWith("HTTP/1.1 400", response, StringComparison.Ordinal);
        Assert.Contains("\"reason\":\"bad-request\"", response, StringComparison.Ordinal);
        Assert.Contains("Connection: close", response, StringComparison.OrdinalIgnoreCase);
        Assert.Empty(_upstream.Received);
    }

    [Theory]
    [InlineData("CONNECT /llm/openai/v1/models HTTP/1.1")]
    [InlineData("CONNECT 127.0.0.1:443 HTTP/1.1")]
    public async Task CONNECT_never_reaches_an_upstream(string requestLine)
    {
        await using var gateway = await GatewayInstance.StartAsync(Config());

        var response = await RawHttp.SendAsync(gateway, $"{requestLine}\r\nHost: {gateway.Address.Authority}\r\nAuthorization: Bearer {_token}\r\nConnection: close\r\n\r\n");

        Assert.Matches("^HTTP/1.1 4(00|04|05) ", response);
        Assert.Empty(_upstream.Received);
    }

    [Fact]
    public async Task A_WebSocket_over_HTTP2_on_a_route_that_did_not_opt_in_is_refused()
    {
        await using var gateway = await GatewayInstance.StartAsync(_endpoints.With(Config()));
        var h2c = await GatewayEndpoints.H2cAsync(gateway);
        using var socket = new ClientWebSocket();
        socket.Options.HttpVersion = HttpVersion.Version20;
        socket.Options.HttpVersionPolicy = HttpVersionPolicy.RequestVersionExact;
        socket.Options.SetRequestHeader("Authorization", "Bearer " + _token);
        socket.Options.CollectHttpResponseDetails = true;

        await Assert.ThrowsAsync<WebSocketException>(() => socket.ConnectAsync(new Uri($"ws://{h2c.Authority}/llm/openai/v1/models"), new HttpMessageInvoker(_endpoints.Handler()), CancellationToken.None));

        Assert.Equal(HttpStatusCode.BadRequest, socket.HttpStatusCode);
        Assert.Empty(_upstream.Received);
    }

    [Fact]
    public async Task An_h2c_offer_is_declined_and_an_upstream_that_switches_anyway_gets_no_tunnel()
    {
        await using var gateway = await GatewayInstance.StartAsync(Config());
        var offer =
            "GET /llm/openai/v1/models HTTP/1.1\r\n" +
            $"Host: {gateway.Address.Authority}\r\n" +
            $"Authorization: Bearer {_token}\r\n" +
            "Connection: Upgrade, HTTP2-Settings, close\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n";

        var declined = await RawHttp.SendAsync(gateway, offer, TimeSpan.FromSeconds(3));
        _upstream.Respond = _ => "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\nPRI * HTTP/2.0"u8.ToArray();
        var switched = await RawHttp.SendAsync(gateway, offer, TimeSpan.FromSeconds(3));

        Assert.StartsWith("HTTP/1.1 200", declined, StringComparison.Ordinal);
        Assert.All(_upstream.Received, r =>
        {
            Assert.Empty(r.Headers("Upgrade"));
            Assert.Empty(r.Headers("HTTP2-Settings"));
        });
        Assert.StartsWith("HTTP/1.1 502", switched, StringComparison.Ordinal);
        Assert.DoesNotContain("101", switched.Split("\r\n")[0], StringComparison.Ordinal);
        Assert.DoesNotContain("PRI * HTTP/2.0", switched, StringComparison.Ordinal);
    }

    /// <summary>The body as the upstream reads it: by its length, or its chunks put together.</summary>
    private static string Body(RawRequest request)
    {
        var body = request.Text[(request.Head.Length)..];
        if (request.Headers("Transfer-Encoding") is not ["chunked"])
        {
            return body;
        }

        var joined = new System.Text.StringBuilder();
        while (true)
        {
            var line = body.IndexOf("\r\n", StringComparison.Ordinal);
            var size = Convert.ToInt32(body[..line], 16);
            if (size == 0)
            {
                return joined.ToString();
            }

            joined.Append(body, line + 2, size);
            body = body[(line + 2 + size + 2)..];
        }
    }

    /// <summary>Route <c>openai</c> does not inspect; route <c>anthropic</c> inspects LLM bodies.
    /// Both go to the raw upstream.</summary>
    private JsonObject Config()
    {
        var config = fx.Config(withRedis: false).WithUpstream("llm", _upstream.Url, new JsonObject { ["ActivityTimeout"] = "00:00:02" });
        config["ReverseProxy"]!["Routes"]!["anthropic"]!["Metadata"]!["Inspect"] = "Llm";
        return config;
    }
}
