using System.Text.Json;

namespace AgentGateway.Proxy.Inspection;

/// <summary>The JSON-RPC errors the gateway writes into an MCP conversation in place of what it
/// refuses: to the server for a request of its that the grant does not allow, to the agent for an
/// answer it cannot pass on.</summary>
internal static class McpErrors
{
    /// <summary>The JSON-RPC error the server gets in the agent's place.</summary>
    public static byte[] RefusalAnswer(ServerMessage request) =>
        // -32601: as far as this server is concerned, the client does not offer the method.
        JsonRpcError(request.Id, -32601, $"The agent gateway's policy does not allow '{Policy.PolicyEngine.Printable(request.Method!)}' from this server.");

    /// <summary>What the agent gets instead of an answer whose input requests policy refuses.</summary>
    public static byte[] InputRefusedError(string? id, string method) =>
        JsonRpcError(id, -32000, $"The MCP server asked for '{method}' to complete this call, which the agent gateway's policy does not allow.");

    /// <summary>What the agent gets instead of an answer the gateway could not read one way only.</summary>
    public static byte[] UnreadableError(string? id) =>
        JsonRpcError(id, -32603, "The agent gateway could not inspect the MCP server's answer, so it was not passed on.");

    private static byte[] JsonRpcError(string? id, int code, string message)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("jsonrpc", "2.0");
            json.WritePropertyName("id");
            json.WriteRawValue(id ?? "null", skipInputValidation: false);
            json.WriteStartObject("error");
            json.WriteNumber("code", code);
            json.WriteString("message", message);
            json.WriteEndObject();
            json.WriteEndObject();
        }

        return buffer.ToArray();
    }
}
