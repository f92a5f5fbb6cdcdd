using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using AgentGateway.FunctionalTests.Infrastructure;

namespace AgentGateway.FunctionalTests.Adversarial;

/// <summary>
/// The README's threat model, size and time: limits hold on the raw socket whatever the request claims about
/// itself, and nothing over a limit reaches the upstream whole. Kestrel's limits come from the
/// gateway file's standard <c>Kestrel:Limits</c> section, a route's body limit from YARP's
/// <c>MaxRequestBodySize</c>; no content type switches either off.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class LimitAttackTests(GatewayFixture fx) : IAsyncLifetime
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
    public async Task A_slowloris_is_cut_off_at_the_header_timeout_and_forwards_nothing()
    {
        await using var gateway = await GatewayInstance.StartAsync(Config());
        using var client = new TcpClient();
        await client.ConnectAsync(gateway.Address.Host, gateway.Address.Port);
        await using var stream = client.GetStream();
        var head = Encoding.ASCII.GetBytes($"GET /llm/openai/v1/models HTTP/1.1\r\nHost: gateway.test\r\nAuthorization: Bearer {_token}\r\nX-Slow: ");
        await stream.WriteAsync(head);

        var started = DateTime.UtcNow;
        var closed = false;
        try
        {
            // One byte every 200 ms: each arrives well within any idle timeout, the headers never end.
            while (DateTime.UtcNow - started < TimeSpan.FromSeconds(8))
            {
                await stream.WriteAsync("a"u8.ToArray());
                await Task.Delay(200);
                if (client.Client.Poll(0, SelectMode.SelectRead) && client.Available == 0)
                {
                    closed = true;
                    break;
                }

                if (client.Available > 0)
                {
                    var answer = new byte[4096];
                    var read = await stream.ReadAsync(answer);
                    Assert.StartsWith("HTTP/1.1 408", Encoding.ASCII.GetString(answer, 0, read), StringComparison.Ordinal);
                    closed = true;
                    break;
                }
            }
        }
        catch (IOException)
        {
            closed = true;
        }

        Assert.True(closed, "the connection was still open after 8 s of trickled headers");
        Assert.InRange(DateTime.UtcNow - started, TimeSpan.Zero, TimeSpan.FromSeconds(6));
        Assert.Empty(_upstream.Received);
    }

    [Theory]
    [InlineData("header-block", "HTTP/1.1 431")]
    [InlineData("request-line", "HTTP/1.1 414")]
    [InlineData("header-count", "HTTP/1.1 431")]
    public async Task Oversized_heads_are_refused_by_the_server_and_forward_nothing(string what, string expected)
    {
        await using var gateway = await GatewayInstance.StartAsync(Config());
        var request = what switch
        {
            "header-block" => Request("GET", "/llm/openai/v1/models", $"X-Pad: {new string('p', 40 * 1024)}\r\n"),
            "request-line" => Request("GET", "/llm/openai/v1/models?q=" + new string('q', 16 * 1024), ""),
            _ => Request("GET", "/llm/openai/v1/models", string.Concat(Enumerable.Range(0, 150).Select(i => $"X-H{i}: v\r\n"))),
        };

        var response = await RawHttp.SendAsync(gateway, request);

        Assert.StartsWith(expected, response, StringComparison.Ordinal);
        Assert.Empty(_upstream.Received);
    }

    [Theory]
    [InlineData("content-length", "application/octet-stream")]
    [InlineData("chunked", "application/octet-stream")]
    [InlineData("content-length", "application/json")]
    [InlineData("chunked", "text/event-stream")]
    public async Task A_body_over_the_routes_limit_is_refused_413_and_the_upstream_never_gets_it_whole(string framing, string contentType)
    {
        await using var gateway = await GatewayInstance.StartAsync(Config());
        var body = new string('b', 4096);
        var framed = framing == "chunked"
            ? $"Transfer-Encoding: chunked\r\nContent-Type: {contentType}\r\n\r\n{body.Length:x}\r\n{body}\r\n0\r\n\r\n"
            : $"Content-Length: {body.Length}\r\nContent-Type: {contentType}\r\n\r\n{body}";
        var request = $"POST /llm/openai/v1/files HTTP/1.1\r\nHost: gateway.test\r\nAuthorization: Bearer {_token}\r\nConnection: close\r\n{framed}";

        var response = await RawHttp.SendAsync(gateway, request);

        Assert.StartsWith("HTTP/1.1 413", response, StringComparison.Ordinal);
        Assert.Contains("application/problem+json", response, StringComparison.Ordinal);
        Assert.Contains("body-too-large", response, StringComparison.Ordinal);
        Assert.Empty(_upstream.Received);
    }

    [Fact]
    public async Task A_body_within_the_limit_is_forwarded_byte_for_byte()
    {
        await using var gateway = await GatewayInstance.StartAsync(Config());
        var body = "{\"purpose\":\"fine-tune\",\"bytes\":\"" + new string('x', 512) + "\"}";
        var request = $"POST /llm/openai/v1/files HTTP/1.1\r\nHost: gateway.test\r\nAuthorization: Bearer {_token}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {body.Length}\r\n\r\n{body}";

        var response = await RawHttp.SendAsync(gateway, request);

        Assert.StartsWith("HTTP/1.1 200", response, StringComparison.Ordinal);
        var received = Assert.Single(_upstream.Received);
        Assert.EndsWith("\r\n\r\n" + body, received.Text, StringComparison.Ordinal);
        _upstream.AssertNeverSaw(_token);
    }

    private JsonObject Config()
    {
        var config = fx.Config(withRedis: false).WithUpstream("llm", _upstream.Url);
        config["ReverseProxy"]!["Routes"]!["openai"]!["MaxRequestBodySize"] = 1024;
        config["Kestrel"] = new JsonObject
        {
            ["Limits"] = new JsonObject { ["RequestHeadersTimeout"] = "00:00:01", ["MaxRequestHeaderCount"] = 100 },
        };
        return config;
    }

    private string Request(string method, string target, string extraHeaders) =>
        $"{method} {target} HTTP/1.1\r\nHost: gateway.test\r\nAuthorization: Bearer {_token}\r\n{extraHeaders}Connection: close\r\n\r\n";

}
