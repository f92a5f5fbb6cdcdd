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

        var response = await SendRawAsync(gateway, request);

        Assert.StartsWith("HTTP/1.1 400", response, StringComparison.Ordinal);
        Assert.Contains("application/problem+json", response, StringComparison.Ordinal);
        Assert.Contains("\"reason\":\"bad-request\"", response, StringComparison.Ordinal);
        Assert.DoesNotContain(token, response, StringComparison.Ordinal);
        Assert.Empty(fx.Llm.Received);
    }

    private static async Task<string> SendRawAsync(GatewayInstance gateway, string request)
    {
        using var client = new TcpClient();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await client.ConnectAsync(gateway.Address.Host, gateway.Address.Port, timeout.Token);
        await using var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request), timeout.Token);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return await reader.ReadToEndAsync(timeout.Token);
    }
}
