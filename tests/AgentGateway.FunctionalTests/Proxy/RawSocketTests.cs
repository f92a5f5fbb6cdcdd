using System.Net.Sockets;
using System.Text;
using AgentGateway.FunctionalTests.Infrastructure;

namespace AgentGateway.FunctionalTests.Proxy;

/// <summary>Requests written byte by byte on a real socket, where HttpClient would normalise them.</summary>
[Collection(GatewayCollection.Name)]
public sealed class RawSocketTests(GatewayFixture fx) : IAsyncLifetime
{
    public Task InitializeAsync() => fx.ResetAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task Two_authorization_headers_are_refused_400_not_merged_and_never_forwarded()
    {
        await using var gateway = await GatewayInstance.StartAsync(fx.Config(withRedis: false));
        var token = await fx.AgentTokenAsync();
        var request =
            "GET /llm/openai/v1/models HTTP/1.1\r\n" +
            $"Host: {gateway.Address.Authority}\r\n" +
            $"Authorization: Bearer {token}\r\n" +
            "Authorization: Bearer second-agent-token\r\n" +
            "Connection: close\r\n\r\n";

        var response = await RawHttp.SendAsync(gateway, request);

        Assert.StartsWith("HTTP/1.1 400", response, StringComparison.Ordinal);
        Assert.Contains("application/problem+json", response, StringComparison.Ordinal);
        Assert.Contains("\"reason\":\"bad-request\"", response, StringComparison.Ordinal);
        Assert.DoesNotContain(token, response, StringComparison.Ordinal);
        Assert.Empty(fx.Llm.Received);
    }

    [Fact]
    public async Task Client_address_original_url_and_method_override_claims_from_the_agent_never_reach_the_upstream()
    {
        await using var gateway = await GatewayInstance.StartAsync(fx.Config(withRedis: false));
        var token = await fx.AgentTokenAsync();
        var request =
            "GET /crm/accounts HTTP/1.1\r\n" +
            $"Host: {gateway.Address.Authority}\r\n" +
            $"Authorization: Bearer {token}\r\n" +
            "X-Original-URL: /admin/delete-everything\r\n" +
            "X-Rewrite-URL: /admin\r\n" +
            "X-HTTP-Method-Override: DELETE\r\n" +
            "X_Method_Override: DELETE\r\n" +
            "Forwarded: for=10.0.0.1;host=internal.example\r\n" +
            "X-Real-IP: 10.0.0.1\r\n" +
            "True-Client-IP: 10.0.0.1\r\n" +
            "X-Forwarded-For: 10.0.0.1\r\n" +
            "Connection: close\r\n\r\n";

        var response = await RawHttp.SendAsync(gateway, request);

        Assert.StartsWith("HTTP/1.1 200", response, StringComparison.Ordinal);
        foreach (var header in new[] { "X-Original-URL", "X-Rewrite-URL", "X-HTTP-Method-Override", "X-Method-Override", "X_Method_Override", "Forwarded", "X-Real-IP", "True-Client-IP" })
        {
            Assert.Null(fx.Crm.Header(0, header));
        }

        // YARP sets X-Forwarded-For from the connection, not from what the agent claimed.
        Assert.DoesNotContain("10.0.0.1", fx.Crm.Header(0, "X-Forwarded-For") ?? "", StringComparison.Ordinal);
        Assert.Equal("GET", fx.Crm.Received[0].RequestMessage.Method);
    }

    [Theory]
    [InlineData("Content-Length: 4\r\nTransfer-Encoding: chunked\r\n")]
    [InlineData("Transfer-Encoding: chunked\r\nContent-Length: 4\r\n")]
    [InlineData("Transfer-Encoding: xchunked\r\n")]
    [InlineData("Transfer-Encoding: chunked, identity\r\n")]
    [InlineData("Content-Length: 4\r\nContent-Length: 40\r\n")]
    public async Task Ambiguous_framing_is_never_forwarded_as_both_lengths(string framing)
    {
        await using var gateway = await GatewayInstance.StartAsync(fx.Config(withRedis: false));
        var token = await fx.AgentTokenAsync();
        var request =
            "POST /crm/accounts HTTP/1.1\r\n" +
            $"Host: {gateway.Address.Authority}\r\n" +
            $"Authorization: Bearer {token}\r\n" +
            framing +
            "\r\n" +
            "0\r\n\r\n" +
            "GET /crm/smuggled HTTP/1.1\r\n" +
            $"Host: {gateway.Address.Authority}\r\n\r\n";

        var response = await RawHttp.SendAsync(gateway, request);

        Assert.StartsWith("HTTP/1.1 ", response, StringComparison.Ordinal);
        // Whatever Kestrel made of it, the upstream never got a request with two framings, and the
        // smuggled request — which carries no identity — never got anywhere.
        foreach (var entry in fx.Crm.Received)
        {
            var headers = entry.RequestMessage.Headers ?? new Dictionary<string, WireMock.Types.WireMockList<string>>();
            Assert.False(headers.ContainsKey("Content-Length") && headers.ContainsKey("Transfer-Encoding"), "both framings forwarded");
            Assert.NotEqual("/smuggled", entry.RequestMessage.Path);
        }

        fx.Crm.AssertNeverSaw(token);
    }

}
