using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using AgentGateway.FunctionalTests.Infrastructure;

namespace AgentGateway.FunctionalTests.Tunnels;

/// <summary>
/// A WebSocket through the gateway, with a real ASP.NET Core WebSocket upstream and
/// <see cref="ClientWebSocket"/> as the agent, over HTTP/1.1, h2c and TLS: it opens only where the
/// route opted in; the handshake is stripped and injected like any request and never negotiates
/// compression; the hop token the upstream echoes down the tunnel never reaches the agent; the
/// grant's rate limit counts every message; and revocation (at another replica) or the expiry of
/// the token the tunnel was opened with closes it with a close frame that says why.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class WebSocketTunnelTests(GatewayFixture fx) : IAsyncLifetime
{
    private readonly GatewayEndpoints _endpoints = new();
    private LiveUpstream _upstream = null!;
    private string _token = "";

    public async Task InitializeAsync()
    {
        await fx.ResetAsync();
        _upstream = await LiveUpstream.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _upstream.DisposeAsync();
        _endpoints.Dispose();
    }

    [Theory]
    [InlineData("http1")]
    [InlineData("h2c")]
    [InlineData("tls")]
    public async Task A_WebSocket_opens_where_the_route_opted_in_with_the_hop_credential_and_without_compression(string listener)
    {
        await using var gateway = await GatewayInstance.StartAsync(_endpoints.With(Config()));
        _token = await fx.AgentTokenAsync();
        using var socket = await ConnectAsync(gateway, listener, "/tunnel/ws");

        await SendAsync(socket, "hello");
        var answer = await ReceiveAsync(socket);

        Assert.Equal("echo: hello", answer.Text);
        Assert.Equal(["hello"], _upstream.Messages);
        var handshake = Assert.Single(_upstream.Requests);
        Assert.StartsWith("Bearer ", handshake.Headers["Authorization"], StringComparison.Ordinal);
        Assert.False(handshake.Headers.ContainsKey("Sec-WebSocket-Extensions"), "the agent's offer of compression reached the upstream");
        Assert.False(socket.HttpResponseHeaders?.ContainsKey("Sec-WebSocket-Extensions") == true, "compression was negotiated through the gateway");
        _upstream.AssertNeverSaw(_token);
        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", CancellationToken.None);
    }

    [Fact]
    public async Task A_WebSocket_on_a_route_that_did_not_opt_in_is_refused()
    {
        await using var gateway = await GatewayInstance.StartAsync(_endpoints.With(Config()));
        _token = await fx.AgentTokenAsync();

        var refused = await Assert.ThrowsAsync<WebSocketException>(() => ConnectAsync(gateway, "http1", "/closed/ws"));

        Assert.Contains("400", refused.Message, StringComparison.Ordinal);
        Assert.Empty(_upstream.Requests);
    }

    [Theory]
    [InlineData("http1")]
    [InlineData("h2c")]
    public async Task The_hop_token_the_upstream_echoes_down_the_tunnel_never_reaches_the_agent(string listener)
    {
        await using var gateway = await GatewayInstance.StartAsync(_endpoints.With(Config()));
        _token = await fx.AgentTokenAsync();
        using var socket = await ConnectAsync(gateway, listener, "/tunnel/ws");

        await SendAsync(socket, "headers");
        var answer = await ReceiveAsync(socket);

        var hopToken = _upstream.Requests[0].Headers["Authorization"]["Bearer ".Length..];
        Assert.DoesNotContain(hopToken, answer.Text, StringComparison.Ordinal);
        Assert.Equal("authorization: Bearer " + new string('*', hopToken.Length), answer.Text);
        Assert.Contains(gateway.Logs.Lines, l => l.Contains("echoed a gateway secret in a WebSocket message", StringComparison.Ordinal));
        _upstream.AssertNeverSaw(_token);
    }

    [Fact]
    public async Task A_rate_limit_counts_every_message_of_a_tunnel_not_only_its_handshake()
    {
        var config = Config();
        config["Gateway"]!["Grants"]!["tunnel"]!["RateLimit"] = new JsonObject { ["Requests"] = 3, ["Window"] = "00:05:00" };
        await using var gateway = await GatewayInstance.StartAsync(_endpoints.With(config));
        _token = await fx.AgentTokenAsync();
        using var socket = await ConnectAsync(gateway, "http1", "/tunnel/ws");

        // The handshake is the first of three; two messages pass, the third is refused.
        var answers = new List<string>();
        for (var i = 1; i <= 7; i++)
        {
            try
            {
                await SendAsync(socket, "m" + i);
            }
            catch (WebSocketException)
            {
                break;
            }

            var answer = await ReceiveAsync(socket);
            if (answer.Close is not null)
            {
                Assert.Equal(WebSocketCloseStatus.PolicyViolation, answer.Close);
                Assert.Equal("rate-limited", answer.Text);
                break;
            }

            answers.Add(answer.Text);
        }

        Assert.Equal(["echo: m1", "echo: m2"], answers);
        Assert.Equal(["m1", "m2"], _upstream.Messages);
        var again = await Assert.ThrowsAsync<WebSocketException>(() => ConnectAsync(gateway, "http1", "/tunnel/ws"));
        Assert.Contains("429", again.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("http1")]
    [InlineData("h2c")]
    public async Task Revocation_at_one_replica_closes_a_WebSocket_held_at_another_within_a_second(string listener)
    {
        var config = Config(withRedis: true).WithAdmin();
        await using var first = await GatewayInstance.StartAsync(config);
        await using var second = await GatewayInstance.StartAsync(_endpoints.With(config.DeepClone().AsObject()));
        _token = await fx.AgentTokenAsync();
        using var socket = await ConnectAsync(second, listener, "/tunnel/ws");
        await SendAsync(socket, "before");
        Assert.Equal("echo: before", (await ReceiveAsync(socket)).Text);
        var closing = ReceiveAsync(socket);

        using var http = new HttpClient { BaseAddress = first.AdminAddress };
        using var revoke = new HttpRequestMessage(HttpMethod.Post, "/admin/agents/support-bot/revoke") { Content = new StringContent("{}", Encoding.UTF8, "application/json") };
        revoke.Headers.Authorization = new AuthenticationHeaderValue("Bearer", await fx.AgentTokenAsync(Clients.Operator));
        using var revoked = await http.SendAsync(revoke);
        var at = Stopwatch.StartNew();
        Assert.Equal(HttpStatusCode.OK, revoked.StatusCode);

        Assert.True(await Task.WhenAny(closing, Task.Delay(TimeSpan.FromSeconds(1))) == closing, $"the WebSocket at the other replica was still open {at.Elapsed} after the revocation");
        var close = await closing;
        Assert.Equal(WebSocketCloseStatus.PolicyViolation, close.Close);
        Assert.Equal("agent-revoked", close.Text);
        Assert.True(await _upstream.WaitClosedAsync("/ws", TimeSpan.FromSeconds(2)), "the upstream's side of the tunnel stayed open");
        Assert.Equal(["before"], _upstream.Messages);
        _upstream.AssertNeverSaw(_token);
    }

    [Fact]
    public async Task A_WebSocket_closes_when_the_token_it_was_opened_with_expires()
    {
        var config = Config();
        config["Gateway"]!["Inbound"]!["ClockSkew"] = "00:00:00";
        fx.Auth.SetTokenLifetime(Clients.Alpha, TimeSpan.FromSeconds(4));
        _token = await fx.AgentTokenAsync();
        var expiresAt = DateTimeOffset.FromUnixTimeSeconds(JsonDocument.Parse(Base64Url(_token.Split('.')[1])).RootElement.GetProperty("exp").GetInt64());
        await using var gateway = await GatewayInstance.StartAsync(_endpoints.With(config));
        using var socket = await ConnectAsync(gateway, "http1", "/tunnel/ws");

        var closing = ReceiveAsync(socket);
        var wait = expiresAt + TimeSpan.FromSeconds(1) - DateTimeOffset.UtcNow;
        Assert.True(await Task.WhenAny(closing, Task.Delay(wait > TimeSpan.Zero ? wait : TimeSpan.Zero)) == closing, "the WebSocket outlived its token by more than a second");
        var closedAt = DateTimeOffset.UtcNow;

        var close = await closing;
        Assert.Equal(WebSocketCloseStatus.PolicyViolation, close.Close);
        Assert.Equal("session-expired", close.Text);
        Assert.True(closedAt >= expiresAt - TimeSpan.FromMilliseconds(50), $"closed at {closedAt:O}, before the token's expiry {expiresAt:O}");
    }

    [Fact]
    public async Task An_upstream_that_negotiates_compression_the_agent_never_offered_through_the_gateway_gets_no_tunnel()
    {
        await using var raw = RawUpstream.Start();
        raw.Respond = request =>
        {
            var key = request.Headers("Sec-WebSocket-Key").Single();
            // RFC 6455 §4.2.2 fixes SHA-1 for the handshake; it protects nothing here.
#pragma warning disable CA5350
            var accept = Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")));
#pragma warning restore CA5350
            return Encoding.ASCII.GetBytes($"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n");
        };
        var config = Config().WithUpstream("live", raw.Url);
        await using var gateway = await GatewayInstance.StartAsync(_endpoints.With(config));
        _token = await fx.AgentTokenAsync();

        var refused = await Assert.ThrowsAsync<WebSocketException>(() => ConnectAsync(gateway, "http1", "/tunnel/ws"));

        Assert.Contains("502", refused.Message, StringComparison.Ordinal);
        Assert.Empty(raw.Received.Single().Headers("Sec-WebSocket-Extensions"));
        raw.AssertNeverSaw(_token);
    }

    [Fact]
    public async Task Only_WebSocket_may_be_let_through_and_never_on_a_route_that_inspects_bodies()
    {
        var config = Config();
        config["ReverseProxy"]!["Routes"]!["closed"]!["Metadata"]!["Upgrade"] = "SPDY/3.1";
        config["ReverseProxy"]!["Routes"]!["anthropic"]!["Metadata"]!["Inspect"] = "Llm";
        config["ReverseProxy"]!["Routes"]!["anthropic"]!["Metadata"]!["Upgrade"] = "WebSocket";

        var refused = await Assert.ThrowsAsync<AgentGateway.Configuration.InvalidGatewayConfigurationException>(() => GatewayInstance.StartAsync(config));

        Assert.Equal(
            ["ReverseProxy:Routes:anthropic:Metadata:Upgrade", "ReverseProxy:Routes:closed:Metadata:Upgrade"],
            refused.Problems.Select(p => p.Path).Where(p => p.EndsWith(":Upgrade", StringComparison.Ordinal)).Order(StringComparer.Ordinal));
    }

    /// <summary>Route <c>tunnel</c>, opted in to WebSockets, and <c>closed</c>, not, both to the live
    /// upstream with the CRM hop under one grant.</summary>
    private JsonObject Config(bool withRedis = false) => fx.Config(withRedis)
        .WithRoute("tunnel", _upstream.Url, metadata: new JsonObject { ["Upgrade"] = "WebSocket" }, cluster: "live")
        .WithRoute("closed", _upstream.Url, cluster: "live", grant: "tunnel");

    private async Task<ClientWebSocket> ConnectAsync(GatewayInstance gateway, string listener, string path)
    {
        var socket = new ClientWebSocket();
        socket.Options.SetRequestHeader("Authorization", "Bearer " + _token);
        // Offers permessage-deflate: the gateway must not let it be negotiated.
        socket.Options.DangerousDeflateOptions = new WebSocketDeflateOptions();
        socket.Options.CollectHttpResponseDetails = true;
        Uri address;
        switch (listener)
        {
            case "h2c":
                socket.Options.HttpVersion = HttpVersion.Version20;
                socket.Options.HttpVersionPolicy = HttpVersionPolicy.RequestVersionExact;
                address = new Uri($"ws://{(await GatewayEndpoints.H2cAsync(gateway)).Authority}{path}");
                break;
            case "tls":
                socket.Options.HttpVersion = HttpVersion.Version20;
                socket.Options.HttpVersionPolicy = HttpVersionPolicy.RequestVersionExact;
                address = new Uri($"wss://{GatewayEndpoints.Tls(gateway).Authority}{path}");
                break;
            default:
                address = new Uri($"ws://{(await GatewayEndpoints.Http1Async(gateway)).Authority}{path}");
                break;
        }

        try
        {
            using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            await socket.ConnectAsync(address, new HttpMessageInvoker(_endpoints.Handler()), cancel.Token);
            return socket;
        }
        catch (WebSocketException ex)
        {
            var status = socket.HttpStatusCode;
            socket.Dispose();
            throw new WebSocketException($"{(int)status}: {ex.Message}");
        }
    }

    private static Task SendAsync(ClientWebSocket socket, string text) =>
        socket.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None);

    private static async Task<Received> ReceiveAsync(ClientWebSocket socket)
    {
        var buffer = new byte[64 * 1024];
        var count = 0;
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        ValueWebSocketReceiveResult result;
        do
        {
            result = await socket.ReceiveAsync(buffer.AsMemory(count), cancel.Token);
            count += result.Count;
        }
        while (!result.EndOfMessage);

        return result.MessageType == WebSocketMessageType.Close
            ? new Received(socket.CloseStatusDescription ?? "", socket.CloseStatus)
            : new Received(Encoding.UTF8.GetString(buffer, 0, count), null);
    }

    private static string Base64Url(string text) =>
        Encoding.UTF8.GetString(Convert.FromBase64String(text.Replace('-', '+').Replace('_', '/').PadRight(text.Length + ((4 - (text.Length % 4)) % 4), '=')));

    private sealed record Received(string Text, WebSocketCloseStatus? Close);
}
