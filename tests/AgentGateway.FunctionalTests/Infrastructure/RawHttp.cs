using System.Net.Sockets;
using System.Text;

namespace AgentGateway.FunctionalTests.Infrastructure;

/// <summary>Requests written byte by byte on a real socket to the gateway, where HttpClient would
/// normalise them; the whole answer until the server closes (send <c>Connection: close</c>).</summary>
public static class RawHttp
{
    public static async Task<string> SendAsync(GatewayInstance gateway, string request, TimeSpan? timeout = null)
    {
        using var client = new TcpClient();
        using var cancel = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(10));
        await client.ConnectAsync(gateway.Address.Host, gateway.Address.Port, cancel.Token);
        await using var stream = client.GetStream();
        try
        {
            await stream.WriteAsync(Encoding.ASCII.GetBytes(request), cancel.Token);
        }
        catch (IOException)
        {
            // The server may answer and close before an oversized request is fully written.
        }

        using var answer = new MemoryStream();
        try
        {
            await stream.CopyToAsync(answer, cancel.Token);
        }
        catch (IOException)
        {
            // A reset after the answer: what arrived is what the test judges.
        }

        return Encoding.UTF8.GetString(answer.ToArray());
    }
}
