using System.Text.Json;
using System.Text.Json.Nodes;
using AgentGateway.Proxy.Policy;

namespace AgentGateway.Proxy.Inspection;

/// <summary>
/// Removes from a tool list (<c>result.tools</c> of a server's response) the tools the allowing
/// grant does not let the agent call, so an agent is not invited to plan with tools it will be
/// refused. This is a courtesy, not the control: every <c>tools/call</c> is still decided on its
/// own body. It runs on a message the answer guard has already read strictly (one JSON-RPC message,
/// no duplicate keys), in the same pass, for JSON answers and for every event of a stream alike —
/// so it sees exactly the events a client sees, however they are framed.
/// </summary>
internal static class ToolListFilter
{
    /// <summary>The message with <c>result.tools</c> filtered, or null when that is not an array.</summary>
    public static byte[]? Apply(ReadOnlySpan<byte> message, IReadOnlyList<GlobPattern> allowed, out int removed)
    {
        removed = 0;
        var node = JsonNode.Parse(message);
        if (node?["result"]?["tools"] is not JsonArray list)
        {
            return null;
        }

        for (var i = list.Count - 1; i >= 0; i--)
        {
            var name = list[i] is JsonObject tool && tool["name"] is JsonValue value && value.GetValueKind() == JsonValueKind.String ? value.GetValue<string>() : null;
            if (name is null || !Grant.Matches(allowed, name))
            {
                list.RemoveAt(i);
                removed++;
            }
        }

        return System.Text.Encoding.UTF8.GetBytes(node.ToJsonString());
    }
}
