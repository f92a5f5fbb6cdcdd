using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text.Json;
using AgentGateway.Proxy.Audit;
using AgentGateway.Proxy.Pipeline;
using AgentGateway.Proxy.Problems;
using AgentGateway.Proxy.Telemetry;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Transforms;

namespace AgentGateway.Proxy.Inspection;

/// <summary>
/// Puts an <see cref="McpServerStream"/> in front of the agent on every server-sent event stream
/// an MCP route returns under a grant that restricts MCP — the stream of a <c>POST</c>, where a
/// server asks for sampling or elicitation in the middle of a tool call, and the standalone
/// <c>GET</c> stream alike. A refused server request is answered to the server with a JSON-RPC
/// error, sent as the agent's own answer would be (same URL, same hop credential and session), so
/// the tool call it belongs to ends with an error instead of waiting for an answer. A JSON answer
/// is judged the same way, whole: its input requests (MCP 2026-07-28 multi round-trip requests,
/// where the server's questions travel inside its answer) must be ones the grant lists. A
/// compressed stream cannot be read as it passes, so it is not passed: 502.
/// </summary>
internal sealed partial class McpServerStreamTransform(AuditLog audit, TimeProvider time, ILogger<McpServerStreamTransform> logger) : ResponseTransform
{
    /// <summary>The headers of the forwarded request that make an answer the server will accept
    /// as the client's: its session, the protocol version. The hop credential's header is added per request.</summary>
    private static readonly string[] AnswerHeaders = ["Mcp-Session-Id", "MCP-Protocol-Version"];

    private static readonly TimeSpan AnswerTimeout = TimeSpan.FromSeconds(10);

    /// <summary>The decision recorded for a refused server request (metric, span, audit).</summary>
    internal const string Refused = "mcp-server-request-denied";

    public override async ValueTask ApplyAsync(ResponseTransformContext context)
    {
        var mediaType = context.ProxyResponse?.Content.Headers.ContentType?.MediaType;
        if (context.ProxyResponse is not { IsSuccessStatusCode: true } response
            || mediaType is not ("text/event-stream" or "application/json")
            || context.HttpContext.Features.Get<GatewayRequestFeature>() is not { Decision.Grant: { RestrictsMcp: true } grant } feature)
        {
            return;
        }

        var encoding = response.Content.Headers.ContentEncoding;
        if (encoding.Count > 0 && !encoding.All(e => e.Equals("identity", StringComparison.OrdinalIgnoreCase)))
        {
            Log.CompressedStream(logger, feature.Route.RouteId);
            context.SuppressResponseBody = true;
            await ProblemResponse.WriteAsync(context.HttpContext, Refusal.UpstreamUnavailable(
                "the MCP server sent a compressed event stream, which the gateway cannot inspect as it passes"));
            return;
        }

        var observer = new Observer(audit, time, logger, context.HttpContext, feature, response.RequestMessage, context.HttpContext.GetReverseProxyFeature().Cluster?.HttpClient, Activity.Current);
        var http = context.HttpContext.Response;
        if (mediaType == "text/event-stream")
        {
            http.Body = new McpServerStream(http.Body, grant, feature.Revision.Policy.MaxServerEventBytes, observer);
        }
        else if (feature.Body is not { Method: "tools/list" } || grant.Tools is null || !grant.FilterToolList)
        {
            // A tools/list answer the filter rewrites is read (and, if unreadable, replaced) there.
            await JudgeJsonAnswerAsync(context, response, grant, feature, observer);
        }
    }

    /// <summary>
    /// A JSON answer is one message, read whole (up to the event bound): passed on byte for byte
    /// when it is one strict JSON-RPC message asking nothing the grant refuses, else replaced by a
    /// JSON-RPC error, since the agent's client waits for an answer to its call either way.
    /// </summary>
    private static async Task JudgeJsonAnswerAsync(ResponseTransformContext context, HttpResponseMessage response, Policy.Grant grant, GatewayRequestFeature feature, Observer observer)
    {
        var limit = feature.Revision.Policy.MaxServerEventBytes;
        var bytes = await BoundedContent.ReadAsync(response.Content, limit, context.CancellationToken);
        var output = bytes;
        if (bytes is null)
        {
            observer.Broken($"an answer larger than {limit} bytes (Gateway:Policy:MaxServerEventBytes)");
            output = UnreadableError(feature.Body?.Id);
        }
        else if (bytes.Length > 0)
        {
            var (message, why) = ServerMessage.Read(bytes);
            if (message is null)
            {
                observer.Broken("an answer that is not one strict JSON-RPC message: " + why);
                output = UnreadableError(feature.Body?.Id);
            }
            else if (message.FirstRefused(grant.AllowsServerRequest) is { } asked)
            {
                var refused = Policy.PolicyEngine.Printable(asked);
                await observer.RefusedAsync(message, refused, context.CancellationToken);
                output = InputRefusedError(message.Kind == ServerMessageKind.Response ? message.Id : feature.Body?.Id, refused);
            }
        }

        context.SuppressResponseBody = true;
        var http = context.HttpContext.Response;
        http.ContentLength = output!.Length;
        await http.Body.WriteAsync(output, context.CancellationToken);
    }

    /// <summary>The JSON-RPC error the server gets in the agent's place.</summary>
    internal static byte[] RefusalAnswer(ServerMessage request) =>
        // -32601: as far as this server is concerned, the client does not offer the method.
        JsonRpcError(request.Id, -32601, $"The agent gateway's policy does not allow '{Policy.PolicyEngine.Printable(request.Method!)}' from this server.");

    /// <summary>What the agent gets instead of an answer whose input requests policy refuses.</summary>
    internal static byte[] InputRefusedError(string? id, string method) =>
        JsonRpcError(id, -32000, $"The MCP server asked for '{method}' to complete this call, which the agent gateway's policy does not allow.");

    /// <summary>What the agent gets instead of an answer the gateway could not read one way only.</summary>
    internal static byte[] UnreadableError(string? id) =>
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

    private sealed class Observer(
        AuditLog audit, TimeProvider time, ILogger logger, HttpContext http, GatewayRequestFeature feature, HttpRequestMessage? sent, HttpMessageInvoker? invoker, Activity? activity)
        : IMcpServerStreamObserver
    {
        public async ValueTask RefusedAsync(ServerMessage message, string method, CancellationToken cancellationToken)
        {
            Log.ServerRequestRefused(logger, method, feature.Route.RouteId, feature.Agent.Agent.Id, feature.Grant);
            activity?.AddEvent(new ActivityEvent("agentgateway.mcp.server_request", time.GetUtcNow(), new ActivityTagsCollection
            {
                ["agentgateway.mcp.method"] = method,
                [GatewayTelemetry.Tags.Decision] = Refused,
            }));
            GatewayTelemetry.Decisions.Add(1, new KeyValuePair<string, object?>(GatewayTelemetry.Tags.Decision, Refused));
            await audit.ServerRequestRefusedAsync(http, feature, method);
            if (message.Kind == ServerMessageKind.Request)
            {
                await AnswerAsync(message, cancellationToken);
            }
        }

        public void Broken(string why)
        {
            Log.StreamEnded(logger, feature.Route.RouteId, feature.Agent.Agent.Id, why);
            activity?.SetTag(GatewayTelemetry.Tags.ErrorType, "mcp-stream-unreadable");
        }

        private async ValueTask AnswerAsync(ServerMessage request, CancellationToken cancellationToken)
        {
            if (sent?.RequestUri is not { } uri || invoker is null)
            {
                return;
            }

            using var answer = new HttpRequestMessage(HttpMethod.Post, uri)
            {
                Version = sent.Version,
                VersionPolicy = sent.VersionPolicy,
                Content = new ByteArrayContent(RefusalAnswer(request)),
            };
            answer.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            answer.Headers.Accept.ParseAdd("application/json, text/event-stream");
            foreach (var name in feature.Injected?.HeaderName is { } hop ? [.. AnswerHeaders, hop] : AnswerHeaders)
            {
                if (sent.Headers.TryGetValues(name, out var values))
                {
                    answer.Headers.TryAddWithoutValidation(name, values);
                }
            }

            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(AnswerTimeout);
            try
            {
                using var response = await invoker.SendAsync(answer, timeout.Token);
                if (!response.IsSuccessStatusCode)
                {
                    Log.AnswerRefused(logger, request.Method!, feature.Route.RouteId, (int)response.StatusCode);
                }
            }
            catch (Exception ex) when (ex is HttpRequestException || (ex is OperationCanceledException && !cancellationToken.IsCancellationRequested))
            {
                Log.AnswerFailed(logger, request.Method!, feature.Route.RouteId, ex.GetType().Name);
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 2510, Level = LogLevel.Warning, Message = "The MCP server of route {RouteId} asked agent {AgentId} for {Method}, which grant {Grant} does not allow; kept from the agent and refused to the server")]
        public static partial void ServerRequestRefused(ILogger logger, string method, string routeId, string agentId, string? grant);

        [LoggerMessage(EventId = 2511, Level = LogLevel.Warning, Message = "The MCP event stream of route {RouteId} to agent {AgentId} was ended: {Why}")]
        public static partial void StreamEnded(ILogger logger, string routeId, string agentId, string why);

        [LoggerMessage(EventId = 2512, Level = LogLevel.Warning, Message = "The MCP server of route {RouteId} was sent the refusal of its {Method} request and answered {Status}")]
        public static partial void AnswerRefused(ILogger logger, string method, string routeId, int status);

        [LoggerMessage(EventId = 2513, Level = LogLevel.Warning, Message = "The refusal of a {Method} request could not be sent to the MCP server of route {RouteId} ({Error}); the server may wait for its own timeout")]
        public static partial void AnswerFailed(ILogger logger, string method, string routeId, string error);

        [LoggerMessage(EventId = 2514, Level = LogLevel.Warning, Message = "The MCP server of route {RouteId} sent a compressed event stream, which cannot be inspected; answered 502")]
        public static partial void CompressedStream(ILogger logger, string routeId);
    }
}
