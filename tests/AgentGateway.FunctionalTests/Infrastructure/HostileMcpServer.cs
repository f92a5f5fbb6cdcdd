using System.Text;
using System.Text.Json.Nodes;

namespace AgentGateway.FunctionalTests.Infrastructure;

/// <summary>
/// An MCP server (Streamable HTTP, protocol 2025-11-25) written on a bare socket, so its answers can
/// be whatever bytes an attacker chooses: any Content-Type spelling or none, several, lone-CR
/// framing, a length that the gateway's rewriting must not keep. It answers the handshake as a
/// server would (<c>initialize</c> with a session, 202 to notifications and to the client's own
/// answers, 200 to <c>DELETE</c>) and leaves the rest to the test: <see cref="Get"/> for the
/// standalone stream (default 405), <see cref="Call"/> for any other request, given its id.
/// </summary>
public sealed class HostileMcpServer : IAsyncDisposable
{
    public const string SessionId = "hostile-session-1";

    private readonly RawUpstream _raw = RawUpstream.Start();

    public HostileMcpServer() => _raw.Respond = Answer;

    /// <summary>The server's base URL; its endpoint is <c>/mcp</c>.</summary>
    public string Url => _raw.Url;

    public IReadOnlyList<RawRequest> Received => _raw.Received;

    /// <summary>The answer to the standalone GET stream.</summary>
    public Func<byte[]> Get { get; set; } = () => Http("405 Method Not Allowed", "", "");

    /// <summary>The answer to a request other than <c>initialize</c>: method and id (as JSON text).</summary>
    public Func<string, string, byte[]> Call { get; set; } = (_, id) => Json("""{"jsonrpc":"2.0","id":ID,"result":{}}""".Replace("ID", id, StringComparison.Ordinal));

    /// <summary>The client's (or the gateway's) answers to this server's requests, as sent.</summary>
    public IReadOnlyList<string> Answers => [.. Received.Where(r => r.Method == "POST" && JsonNode.Parse(r.Body) is JsonObject m && !m.ContainsKey("method")).Select(r => r.Body)];

    public static byte[] Http(string status, string headers, string body) =>
        Encoding.UTF8.GetBytes($"HTTP/1.1 {status}\r\n{headers}Content-Length: {Encoding.UTF8.GetByteCount(body)}\r\n\r\n{body}");

    public static byte[] Json(string body, string contentType = "application/json") => Http("200 OK", $"Content-Type: {contentType}\r\n", body);

    public static byte[] Events(string body, string contentType = "text/event-stream") => Http("200 OK", $"Content-Type: {contentType}\r\nCache-Control: no-cache\r\n", body);

    public void AssertNeverSaw(string secret) => _raw.AssertNeverSaw(secret);

    public ValueTask DisposeAsync() => _raw.DisposeAsync();

    private byte[]? Answer(RawRequest request)
    {
        switch (request.Method)
        {
            case "GET":
                return Get();
            case "DELETE":
                return Http("200 OK", "", "");
        }

        var message = JsonNode.Parse(request.Body)!.AsObject();
        var id = message["id"]?.ToJsonString();
        return message["method"]?.GetValue<string>() switch
        {
            null => Http("202 Accepted", "", ""),
            _ when id is null => Http("202 Accepted", "", ""),
            "initialize" => Http(
                "200 OK",
                $"Content-Type: application/json\r\nMcp-Session-Id: {SessionId}\r\n",
                """{"jsonrpc":"2.0","id":ID,"result":{"protocolVersion":"2025-11-25","capabilities":{"tools":{"listChanged":false},"logging":{}},"serverInfo":{"name":"hostile","version":"1.0.0"}}}""".Replace("ID", id, StringComparison.Ordinal)),
            var method => Call(method, id),
        };
    }
}
