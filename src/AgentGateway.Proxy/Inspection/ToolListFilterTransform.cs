using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using AgentGateway.Proxy.Pipeline;
using AgentGateway.Proxy.Policy;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Transforms;

namespace AgentGateway.Proxy.Inspection;

/// <summary>
/// Removes from a <c>tools/list</c> answer the tools the allowing grant does not let the agent
/// call, so an agent is not invited to plan with tools it will be refused. This is a courtesy, not
/// the control: every <c>tools/call</c> is still decided on its own body. Answers come as JSON or
/// as a server-sent event stream (Streamable HTTP); both are read whole, up to a bound, and
/// rewritten. An answer that cannot be read is replaced by an error rather than passed unfiltered.
/// </summary>
internal sealed partial class ToolListFilterTransform(ILogger<ToolListFilterTransform> logger) : ResponseTransform
{
    private const int MaxAnswerBytes = 4 * 1024 * 1024;

    public override async ValueTask ApplyAsync(ResponseTransformContext context)
    {
        if (context.ProxyResponse is not { IsSuccessStatusCode: true } response
            || context.HttpContext.Features.Get<GatewayRequestFeature>() is not { Body: { Method: "tools/list" } request, Decision.Grant: { Tools: { } tools, FilterToolList: true } grant })
        {
            return;
        }

        var mediaType = response.Content.Headers.ContentType?.MediaType;
        if (mediaType is not ("application/json" or "text/event-stream"))
        {
            return;
        }

        var error = """{"jsonrpc":"2.0","id":ID,"error":{"code":-32603,"message":"the gateway could not read the tool list"}}""".Replace("ID", request.Id ?? "null", StringComparison.Ordinal);
        var bytes = await BoundedContent.ReadAsync(response.Content, MaxAnswerBytes, context.CancellationToken);
        string rewritten;
        var removed = 0;
        if (bytes is null)
        {
            rewritten = ErrorAnswer(mediaType, error);
        }
        else
        {
            var text = Encoding.UTF8.GetString(bytes);
            rewritten = mediaType != "application/json" ? FilterEvents(text, tools, error, ref removed)
                // Read as strictly as every other MCP answer: only a plain response is an answer to
                // tools/list. (Events go through the stream guard after this filter.)
                : ServerMessage.Read(bytes) is ({ Kind: ServerMessageKind.Response, InputRequests: null }, _) ? FilterJson(text, tools, ref removed) ?? error
                : error;
        }

        Log.Filtered(logger, grant.Name, removed);
        var output = Encoding.UTF8.GetBytes(rewritten);
        context.SuppressResponseBody = true;
        var http = context.HttpContext.Response;
        http.Headers.ContentLength = output.Length;
        await http.Body.WriteAsync(output, context.CancellationToken);
    }

    /// <summary>The JSON-RPC message with <c>result.tools</c> filtered; other messages unchanged; null if unreadable.</summary>
    private static string? FilterJson(string json, IReadOnlyList<GlobPattern> allowed, ref int removed)
    {
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(json);
        }
        catch (JsonException)
        {
            return null;
        }

        if (node?["result"]?["tools"] is JsonArray list)
        {
            for (var i = list.Count - 1; i >= 0; i--)
            {
                var name = list[i]?["name"]?.GetValueKind() == JsonValueKind.String ? list[i]!["name"]!.GetValue<string>() : null;
                if (name is null || !Grant.Matches(allowed, name))
                {
                    list.RemoveAt(i);
                    removed++;
                }
            }
        }

        return node?.ToJsonString();
    }

    /// <summary>Each event's data filtered as a JSON-RPC message; the framing kept.</summary>
    private static string FilterEvents(string stream, IReadOnlyList<GlobPattern> allowed, string error, ref int removed)
    {
        var output = new StringBuilder();
        foreach (var block in stream.Replace("\r\n", "\n", StringComparison.Ordinal).Split("\n\n"))
        {
            if (block.Length == 0)
            {
                continue;
            }

            var lines = block.Split('\n');
            var data = string.Join('\n', lines.Where(l => l.StartsWith("data:", StringComparison.Ordinal)).Select(l => l[5..].TrimStart(' ')));
            foreach (var line in lines.Where(l => !l.StartsWith("data:", StringComparison.Ordinal)))
            {
                output.Append(line).Append('\n');
            }

            if (data.Length > 0)
            {
                var filtered = FilterJson(data, allowed, ref removed) ?? error;
                output.Append("data: ").Append(filtered).Append('\n');
            }

            output.Append('\n');
        }

        return output.ToString();
    }

    private static string ErrorAnswer(string mediaType, string error) =>
        mediaType == "application/json" ? error : "event: message\ndata: " + error + "\n\n";

    private static partial class Log
    {
        [LoggerMessage(EventId = 2501, Level = LogLevel.Debug, Message = "tools/list answer filtered for grant {Grant}: {Removed} tool(s) removed")]
        public static partial void Filtered(ILogger logger, string grant, int removed);
    }
}
