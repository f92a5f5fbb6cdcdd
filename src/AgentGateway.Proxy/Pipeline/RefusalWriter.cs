using AgentGateway.Proxy.Audit;
using AgentGateway.Proxy.Problems;
using AgentGateway.Proxy.Telemetry;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace AgentGateway.Proxy.Pipeline;

/// <summary>Answers a request with a refusal, the same way wherever in the pipeline it is refused:
/// the decision on the span and in the metric, one log line, the problem body.</summary>
internal sealed partial class RefusalWriter(AuditLog audit, ILogger<RefusalWriter> logger)
{
    public async Task WriteAsync(HttpContext context, Refusal refusal, string routeId, string? agentId)
    {
        GatewayTelemetry.Refused(GatewayTelemetry.RequestSpan(context), refusal.Reason, refusal.Status, refusal.Detail);
        GatewayTelemetry.Decisions.Add(1, new KeyValuePair<string, object?>(GatewayTelemetry.Tags.Decision, refusal.Reason));
        if (refusal.Reason == "secret-in-request")
        {
            Log.SecretInRequest(logger, agentId, routeId, refusal.Detail);
        }
        else
        {
            Log.Refused(logger, refusal.Reason, agentId, routeId, refusal.Detail);
        }

        await audit.RefusedAsync(context, refusal, routeId, agentId);
        await ProblemResponse.WriteAsync(context, refusal);
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 2001, Level = LogLevel.Information, Message = "Refused {Decision} for agent {AgentId} on route {RouteId}: {Detail}")]
        public static partial void Refused(ILogger logger, string decision, string? agentId, string routeId, string detail);

        [LoggerMessage(EventId = 2002, Level = LogLevel.Warning, Message = "SECURITY: agent {AgentId} sent a secret the gateway holds, on route {RouteId} ({Detail}); refused. The secret has leaked to the agent and should be rotated")]
        public static partial void SecretInRequest(ILogger logger, string? agentId, string routeId, string detail);
    }
}
