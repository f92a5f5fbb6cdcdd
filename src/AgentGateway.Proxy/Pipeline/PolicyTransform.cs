using System.Diagnostics;
using AgentGateway.Proxy.Policy;
using AgentGateway.Proxy.Problems;
using AgentGateway.Proxy.Telemetry;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Transforms;

namespace AgentGateway.Proxy.Pipeline;

/// <summary>
/// Takes the policy decision on the outgoing request, after the route's own transforms, so path
/// rules (and models named in paths or queries) are decided on exactly the path and query that
/// will be forwarded. A refusal is answered here and
/// the request is not sent; an allowed request carries its decision on to the injection step.
/// A retry after an upstream 401 reuses the decision (it is the same request, counted once).
/// One per route and revision, deciding with that revision's policy plan; the first step of the
/// route's <see cref="RouteRequestTransform"/>.
/// </summary>
internal sealed partial class PolicyTransform(RoutePlan plan, PolicyEngine engine, RefusalWriter refusals, ILogger<PolicyTransform> logger)
{
    public async ValueTask ApplyAsync(RequestTransformContext context)
    {
        var feature = context.HttpContext.Features.Get<GatewayRequestFeature>();
        if (feature is null)
        {
            // Only reachable if the gateway middleware did not run: fail closed.
            await ProblemResponse.WriteAsync(context.HttpContext, Refusal.Unauthenticated("the request was not identified"));
            return;
        }

        if (feature.Decision is null)
        {
            var request = new PolicyRequest(
                feature.Agent.Agent,
                feature.Route.RouteId,
                // Decided on what goes, like the path: a route transform may change the method. A
                // WebSocket handshake is the same GET over HTTP/1.1 and HTTP/2 (which carries it as CONNECT).
                feature.WebSocket ? Microsoft.AspNetCore.Http.HttpMethods.Get : context.ProxyRequest.Method.Method,
                context.Path.Value ?? "/",
                feature.Delegation is not null,
                feature.Body,
                feature.Task)
            {
                Instance = feature.Agent.Instance,
                Query = context.Query.QueryString.Value,
                Provider = feature.Route.LlmProvider,
            };
            PolicyDecision decision;
            try
            {
                decision = await engine.DecideAsync(request, plan.Shared.Policy, context.CancellationToken);
            }
            catch (PolicyStateUnavailableException ex)
            {
                decision = new PolicyDecision(null, Refusal.PolicyUnavailable(ex.Message), [], null);
            }

            feature.Decision = decision;
            if (decision is { Allowed: true, Grant: { } grant })
            {
                feature.Session?.Allowed(grant, plan.Revision);
                if (feature.Session?.EndedBy is { } ended)
                {
                    // A newer revision, published after this route was built, no longer allows it.
                    decision = feature.Decision = decision with { Refusal = Refusal.GrantMissing(ended.Message) };
                }
            }

            Record(GatewayTelemetry.RequestSpan(context.HttpContext), decision, feature);
        }

        if (feature.Decision.Refusal is { } refusal)
        {
            await refusals.WriteAsync(context.HttpContext, refusal, feature.Route.RouteId, feature.Agent.Agent.Id);
        }
    }

    /// <summary>The decision on the request's span (its attributes, not a span of its own) and
    /// what shadow policy would have refused in the log.</summary>
    private void Record(Activity? span, PolicyDecision decision, GatewayRequestFeature feature)
    {
        foreach (var shadow in decision.ShadowDenials)
        {
            Log.ShadowDenied(logger, feature.Agent.Agent.Id, feature.Route.RouteId, shadow);
        }

        if (span is null)
        {
            return;
        }

        span.SetTag(GatewayTelemetry.Tags.Grant, decision.Grant?.Name);
        span.SetTag(GatewayTelemetry.Tags.PolicyRule, decision.Rule);
        span.SetTag(GatewayTelemetry.Tags.PolicyDecision, decision.Refusal?.Reason ?? "allowed");
        if (decision.ShadowDenials.Count > 0)
        {
            span.SetTag(GatewayTelemetry.Tags.PolicyShadow, string.Join("; ", decision.ShadowDenials));
        }

        if (feature.Task is { } task)
        {
            span.SetTag(GatewayTelemetry.Tags.Task, task);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 2201, Level = LogLevel.Information, Message = "Shadow policy would refuse agent {AgentId} on route {RouteId}: {Shadow}; not enforced")]
        public static partial void ShadowDenied(ILogger logger, string agentId, string routeId, string shadow);
    }
}
