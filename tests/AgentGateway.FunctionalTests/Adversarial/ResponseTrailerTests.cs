using System.IO.Compression;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using AgentGateway.FunctionalTests.Infrastructure;
using Microsoft.AspNetCore.Http;

namespace AgentGateway.FunctionalTests.Adversarial;

/// <summary>
/// Finding 6: trailers reach the agent after the body, over HTTP/2 end to end — a real Kestrel
/// upstream speaking HTTP/2, the gateway forwarding HTTP/2, an agent reading the trailers with
/// HttpClient. A gRPC-style error echoing the hop token is dropped however it is encoded; fields a
/// trailer must not carry never arrive; the legitimate ones do.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class ResponseTrailerTests(GatewayFixture fx) : IAsyncLifetime
{
    private Http2Upstream _upstream = null!;
    private string _token = "";

    public async Task InitializeAsync()
    {
        await fx.ResetAsync();
        _token = await fx.AgentTokenAsync();
        _upstream = await Http2Upstream.StartAsync();
    }

    public async Task DisposeAsync() => await _upstream.DisposeAsync();

    [Theory]
    [InlineData("plain")]
    [InlineData("percent-encoded")]
    [InlineData("base64")]
    [InlineData("base64url")]
    [InlineData("hex")]
    public async Task A_trailer_echoing_the_hop_token_never_reaches_the_agent(string shape)
    {
        _upstream.Respond = async context =>
        {
            var authorization = context.Request.Headers.Authorization.ToString();
            await context.Response.WriteAsync("partial answer");
            context.Response.AppendTrailer("grpc-status", "16");
            switch (shape)
            {
                case "plain":
                    context.Response.AppendTrailer("grpc-message", "invalid token: " + authorization);
                    break;
                case "percent-encoded":
                    context.Response.AppendTrailer("grpc-message", Uri.EscapeDataString("invalid token: " + authorization));
                    break;
                case "base64":
                    context.Response.AppendTrailer("grpc-status-details-bin", Convert.ToBase64String(Encoding.UTF8.GetBytes("\n\x10" + authorization)).TrimEnd('='));
                    break;
                case "base64url":
                    context.Response.AppendTrailer("x-error-details", Convert.ToBase64String(Encoding.UTF8.GetBytes("{\"sent\":\"" + authorization + "\"}")).Replace('+', '-').Replace('/', '_'));
                    break;
                default:
                    context.Response.AppendTrailer("x-request-dump", Convert.ToHexString(Encoding.UTF8.GetBytes(authorization)));
                    break;
            }
        };
        await using var gateway = await GatewayInstance.StartAsync(Config());

        var (body, trailers) = await GetAsync(gateway, "/crm/status");

        var hopToken = _upstream.Received.Single()["Authorization"]["Bearer ".Length..];
        Assert.Equal("partial answer", body);
        Assert.Equal("16", trailers.GetValueOrDefault("grpc-status"));
        EchoOracle.AssertNotExposed(string.Join("\n", trailers.Select(t => t.Key + ": " + t.Value)), hopToken, "the trailers");
        Assert.Contains(gateway.Logs.Lines, l => l.Contains("echoed a gateway secret in response trailer", StringComparison.Ordinal));
        Assert.DoesNotContain(gateway.Logs.Lines, l => l.Contains(hopToken, StringComparison.Ordinal));
        _upstream.AssertNeverSaw(_token);
    }

    /// <summary>Another framing: an HTTP/1.1 upstream's chunked trailer section, which the gateway's
    /// client reads and passes on as trailers to an HTTP/2 agent, is guarded the same way.</summary>
    [Fact]
    public async Task A_chunked_HTTP_1_1_trailer_echoing_the_hop_token_never_reaches_an_HTTP_2_agent()
    {
        await using var raw = RawUpstream.Start();
        raw.Respond = request => Encoding.ASCII.GetBytes(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nTrailer: X-Debug, X-Kept\r\nConnection: close\r\n\r\n" +
            $"7\r\npartial\r\n0\r\nX-Debug: invalid token {request.Headers("Authorization").Single()}\r\nX-Kept: yes\r\n\r\n");
        await using var gateway = await GatewayInstance.StartAsync(Config(raw.Url, http2Upstream: false));

        var (body, trailers) = await GetAsync(gateway, "/crm/status");

        var hopToken = raw.Received.Single().Headers("Authorization").Single()["Bearer ".Length..];
        Assert.Equal("partial", body);
        Assert.Equal("yes", trailers.GetValueOrDefault("x-kept"));
        EchoOracle.AssertNotExposed(string.Join("\n", trailers.Select(t => t.Key + ": " + t.Value)), hopToken, "the trailers");
        Assert.Contains(gateway.Logs.Lines, l => l.Contains("echoed a gateway secret in response trailer X-Debug", StringComparison.OrdinalIgnoreCase));
        raw.AssertNeverSaw(_token);
    }

    /// <summary>A trailer may not say how to read the body (RFC 9110 §6.5.1): a client that merged
    /// trailers into headers would read it otherwise than the gateway did. And a digest of bytes
    /// the gateway rewrote (here, decoded) would be false.</summary>
    [Fact]
    public async Task Trailers_that_would_change_how_the_body_is_read_and_digests_of_a_rewritten_body_are_dropped()
    {
        _upstream.Respond = async context =>
        {
            context.Response.ContentType = "text/plain";
            context.Response.Headers.ContentEncoding = "gzip";
            await using (var gzip = new GZipStream(context.Response.Body, CompressionLevel.Fastest, leaveOpen: true))
            {
                await gzip.WriteAsync("hello from the upstream"u8.ToArray());
            }

            context.Response.AppendTrailer("Content-Type", "text/event-stream");
            context.Response.AppendTrailer("Content-Encoding", "identity");
            context.Response.AppendTrailer("Content-Digest", "sha-256=:AAAA:");
            context.Response.AppendTrailer("Set-Cookie", "s=1");
            context.Response.AppendTrailer("Server-Timing", "db;dur=53");
        };
        await using var gateway = await GatewayInstance.StartAsync(Config());

        var (body, trailers) = await GetAsync(gateway, "/crm/status");

        Assert.True(body == "hello from the upstream", body);
        Assert.Equal(["server-timing"], trailers.Keys.Order(StringComparer.Ordinal));
        _upstream.AssertNeverSaw(_token);
    }

    private async Task<(string Body, Dictionary<string, string> Trailers)> GetAsync(GatewayInstance gateway, string path)
    {
        using var client = new HttpClient(new SocketsHttpHandler { AutomaticDecompression = DecompressionMethods.None })
        {
            BaseAddress = gateway.Address,
            Timeout = TimeSpan.FromSeconds(20),
        };
        // HTTP/2 without TLS, by prior knowledge: the gateway's listener speaks only HTTP/2.
        using var request = new HttpRequestMessage(HttpMethod.Get, path) { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
        request.Headers.Authorization = new("Bearer", _token);
        using var response = await client.SendAsync(request);
        Assert.Equal(HttpVersion.Version20, response.Version);
        var body = await response.Content.ReadAsStringAsync();
        return (body, response.TrailingHeaders.ToDictionary(t => t.Key.ToLowerInvariant(), t => string.Join(", ", t.Value), StringComparer.Ordinal));
    }

    private JsonObject Config() => Config(_upstream.Url, http2Upstream: true);

    private JsonObject Config(string upstream, bool http2Upstream)
    {
        var config = fx.Config(withRedis: false).WithUpstream("crm", upstream, http2Upstream ? new JsonObject { ["Version"] = "2.0", ["VersionPolicy"] = "RequestVersionExact" } : null);
        config["Kestrel"] = new JsonObject
        {
            ["Endpoints"] = new JsonObject { ["h2c"] = new JsonObject { ["Url"] = "http://127.0.0.1:0", ["Protocols"] = "Http2" } },
        };
        return config;
    }
}
