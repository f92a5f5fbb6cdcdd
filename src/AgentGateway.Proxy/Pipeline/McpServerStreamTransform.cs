using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text.Json;
using AgentGateway.Proxy.Audit;
using AgentGateway.Proxy.Inspection;
using AgentGateway.Proxy.Problems;
using AgentGateway.Proxy.Telemetry;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Transforms;

namespace AgentGateway.Proxy.Pipeline;

/// <summary>
/// Judges every successful answer on a route and grant that restrict MCP before the agent sees
/// any of it, on the one decision of what the answer is (<see cref="AnswerMediaType"/>):
/// <list type="bullet">
/// <item>an event stream — the stream of a <c>POST</c>, where a server asks for sampling or
/// elicitation in the middle of a tool call, and the standalone <c>GET</c> stream alike — goes
/// through an <see cref="McpServerStream"/>;</item>
/// <item>a JSON answer is read whole and judged the same way: its input requests (MCP 2026-07-28
/// multi round-trip requests, where the server's questions travel inside its answer) must be ones
/// the grant lists;</item>
/// <item>either way a tool list loses the tools the grant does not allow (<c>FilterToolList</c>), on
/// the same parse;</item>
/// <item>an answer of any other type, or of a type that is not one well-formed media type, passes
/// only if it has no body (a <c>202</c>); else it is refused with 502, and so is a redirect (it
/// would send the agent, with its own credential and its next message, wherever the server chose).
/// Clients read any successful answer to a <c>GET</c> as an event stream whatever its type, and
/// some look for type names anywhere in the header, so "not recognised" cannot mean "passed".</item>
/// </list>
/// A judged answer goes on with the canonical type, so no client can read it as something else.
/// A refused server request is answered to the server with a JSON-RPC error, sent as the agent's
/// own answer would be (same URL, same hop credential and session), so the tool call it belongs to
/// ends with an error instead of waiting for an answer. Content codings never get here: the
/// response guard has decoded them, or refused the answer.
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
        if (context.SuppressResponseBody
            || context.ProxyResponse is not { } response
            || context.HttpContext.Features.Get<GatewayRequestFeature>() is not { Decision.Grant: { RestrictsMcp: true } grant } feature)
        {
            return;
        }

        var status = (int)response.StatusCode;
        if (status is >= 300 and < 400)
        {
            await RefuseAsync(context, feature, $"a redirect ({status})");
            return;
        }

        if (status is < 200 or >= 300)
        {
            // Error answers: no MCP client takes their bodies for messages to act on.
            return;
        }

        var toolFilter = grant is { Tools: { } tools, FilterToolList: true } ? tools : null;
        var http = context.HttpContext.Response;
        var (kind, unreadable) = AnswerMediaType.Of(response.Content.Headers);
        switch (kind)
        {
            case AnswerKind.EventStream:
                // Events are written on in canonical form, and refused ones dropped: the upstream's length no longer holds.
                ResponseBody.Rewritten(context.HttpContext);
                http.ContentType = AnswerMediaType.EventStream;
                http.Body = new McpServerStream(http.Body, grant, feature.Revision.Policy.MaxServerEventBytes, Observe(context, feature, response), toolFilter);
                break;
            case AnswerKind.Json:
                await JudgeJsonAnswerAsync(context, response, grant, feature, toolFilter);
                break;
            case AnswerKind.Unreadable:
                await RefuseAsync(context, feature, unreadable!);
                break;
            default:
                if (await BoundedContent.ReadAsync(response.Content, 0, context.CancellationToken) is null)
                {
                    await RefuseAsync(context, feature, kind == AnswerKind.Absent ? "a body without a Content-Type" : "a body that is neither JSON nor an event stream");
                    return;
                }

                // Nothing to judge (a 202 or 204); the empty body has been read.
                context.SuppressResponseBody = true;
                break;
        }
    }

    private async Task RefuseAsync(ResponseTransformContext context, GatewayRequestFeature feature, string what)
    {
        Log.AnswerNotJudged(logger, feature.Route.RouteId, feature.Agent.Agent.Id, what);
        Activity.Current?.SetTag(GatewayTelemetry.Tags.ErrorType, "mcp-answer-unreadable");
        context.SuppressResponseBody = true;
        await ProblemResponse.WriteAsync(context.HttpContext, Refusal.UpstreamUnavailable(
            $"the MCP server of route '{feature.Route.RouteId}' answered with {what}, which the gateway cannot judge, so it was not passed on"));
    }

    /// <summary>
    /// A JSON answer is one message, read whole (up to the event bound): passed on byte for byte
    /// when it is one strict JSON-RPC message asking nothing the grant refuses (a tool list
    /// filtered), else replaced by a JSON-RPC error, since the agent's client waits for an answer
    /// to its call either way.
    /// </summary>
    private async Task JudgeJsonAnswerAsync(
        ResponseTransformContext context, HttpResponseMessage response, Policy.Grant grant, GatewayRequestFeature feature, IReadOnlyList<Policy.GlobPattern>? toolFilter)
    {
        var limit = feature.Revision.Policy.MaxServerEventBytes;
        var bytes = await BoundedContent.ReadAsync(response.Content, limit, context.CancellationToken);
        // The answer to tools/list must be its result: anything else in its place is unreadable to a client listing tools.
        var listing = toolFilter is not null && feature.Body?.Method == "tools/list";
        var output = bytes;
        if (bytes is null)
        {
            Observe(context, feature, response).Broken($"an answer larger than {limit} bytes (Gateway:Policy:MaxServerEventBytes)");
            output = McpErrors.UnreadableError(feature.Body?.Id);
        }
        else if (bytes.Length > 0)
        {
            var (message, why) = ServerMessage.Read(bytes);
            if (message is null)
            {
                Observe(context, feature, response).Broken("an answer that is not one strict JSON-RPC message: " + why);
                output = McpErrors.UnreadableError(feature.Body?.Id);
            }
            else if (message.FirstRefused(grant) is { } asked)
            {
                var refused = Policy.PolicyEngine.Printable(asked);
                await Observe(context, feature, response).RefusedAsync(message, refused, context.CancellationToken);
                output = listing ? McpErrors.UnreadableError(feature.Body?.Id)
                    : McpErrors.InputRefusedError(message.Kind == ServerMessageKind.Response ? message.Id : feature.Body?.Id, refused);
            }
            else if (listing && message.Kind != ServerMessageKind.Response)
            {
                Observe(context, feature, response).Broken("an answer to tools/list that is not a response");
                output = McpErrors.UnreadableError(feature.Body?.Id);
            }
            else if (toolFilter is not null && message is { Kind: ServerMessageKind.Response, ListsTools: true })
            {
                output = ToolListFilter.Apply(bytes, toolFilter, out var removed);
                if (output is null)
                {
                    Observe(context, feature, response).Broken("a tool list whose 'tools' is not an array");
                    output = McpErrors.UnreadableError(feature.Body?.Id);
                }
                else
                {
                    Observe(context, feature, response).Filtered(removed);
                }
            }
        }

        context.SuppressResponseBody = true;
        ResponseBody.Rewritten(context.HttpContext);
        var http = context.HttpContext.Response;
        http.ContentType = AnswerMediaType.Json;
        http.ContentLength = output!.Length;
        // The whole answer in one write: the masking stream (on every MCP route) need hold nothing back.
        await (http.Body is SecretMaskingStream masking
            ? masking.WriteLastAsync(output, context.CancellationToken)
            : http.Body.WriteAsync(output, context.CancellationToken));
    }

    /// <summary>What records a refused or broken answer: made for a stream, and for a JSON answer
    /// only when there is something to record, not for every answer passed on.</summary>
    private Observer Observe(ResponseTransformContext context, GatewayRequestFeature feature, HttpResponseMessage response) =>
        new(audit, time, logger, context.HttpContext, feature, response.RequestMessage, context.HttpContext.GetReverseProxyFeature().Cluster?.HttpClient, Activity.Current);

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

        public void Filtered(int removed) => Log.Filtered(logger, feature.Grant, removed);

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
                Content = new ByteArrayContent(McpErrors.RefusalAnswer(request)),
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

            if (Activity.Current is null)
            {
                // Nothing exports, so the HTTP client propagates nothing: the server is told the
                // request's own trace, as the forwarded call was (HopTraceParent).
                answer.Headers.TryAddWithoutValidation(OwnTracePropagator.TraceParent, HopTraceParent.Header(RequestTrace.Id(http)));
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

        [LoggerMessage(EventId = 2514, Level = LogLevel.Warning, Message = "The MCP server of route {RouteId} answered agent {AgentId} with {What}, which cannot be judged; answered 502")]
        public static partial void AnswerNotJudged(ILogger logger, string routeId, string agentId, string what);

        [LoggerMessage(EventId = 2501, Level = LogLevel.Debug, Message = "A tool list was filtered for grant {Grant}: {Removed} tool(s) removed")]
        public static partial void Filtered(ILogger logger, string? grant, int removed);
    }
}
