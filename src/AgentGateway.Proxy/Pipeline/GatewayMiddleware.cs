using System.Diagnostics;
using AgentGateway.Proxy.Configuration;
using AgentGateway.Proxy.Identity;
using AgentGateway.Proxy.Problems;
using AgentGateway.Proxy.Telemetry;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Model;

namespace AgentGateway.Proxy.Pipeline;

/// <summary>
/// The gateway's step in YARP's proxy pipeline, after a route matched and before forwarding:
/// identify the agent by its own credential, check that one of its grants opens the route, and
/// verify the user it acts for when it names one (required on on-behalf-of hops).
/// Anything short of that is answered here with a problem and never forwarded.
/// </summary>
internal sealed partial class GatewayMiddleware(
    RequestDelegate next,
    GatewayConfigProvider config,
    AgentAuthenticator authenticator,
    ILogger<GatewayMiddleware> logger)
{
    public async Task InvokeAsync(HttpContext context)
    {
        var revision = config.Current;
        var routeId = context.GetReverseProxyFeature().Route.Config.RouteId;
        var activity = Activity.Current;
        activity?.SetTag(GatewayTelemetry.Tags.RouteId, routeId);
        activity?.SetTag(GatewayTelemetry.Tags.ConfigRevision, revision.Number);

        if (!revision.GatewayRoutes.TryGetValue(routeId, out var route))
        {
            // YARP is still switching to the revision that dropped this route.
            await RefuseAsync(context, Refusal.ConfigurationChanging($"route '{routeId}' is being reconfigured; retry"), routeId, agentId: null);
            return;
        }

        AuthenticationOutcome outcome;
        using (GatewayTelemetry.Source.StartActivity("agentgateway.identify"))
        {
            outcome = await authenticator.AuthenticateAsync(context.Request, revision, context.RequestAborted);
        }

        if (outcome.Agent is not { } agent)
        {
            await RefuseAsync(context, outcome.Refusal, routeId, agentId: null);
            return;
        }

        activity?.SetTag(GatewayTelemetry.Tags.AgentId, agent.Agent.Id);
        activity?.SetTag(GatewayTelemetry.Tags.AgentIssuer, agent.Issuer.Name);
        if (!agent.Agent.RouteGrants.TryGetValue(routeId, out var grant))
        {
            await RefuseAsync(context, Refusal.GrantMissing($"agent '{agent.Agent.Id}' holds no grant for route '{routeId}'"), routeId, agent.Agent.Id);
            return;
        }

        activity?.SetTag(GatewayTelemetry.Tags.Grant, grant);
        var delegation = await authenticator.AuthenticateDelegationAsync(context.Request, revision, agent, context.RequestAborted);
        if (delegation.Failed)
        {
            await RefuseAsync(context, delegation.Refusal, routeId, agent.Agent.Id);
            return;
        }

        if (delegation.Delegation is { } user)
        {
            activity?.SetTag(GatewayTelemetry.Tags.OnBehalfOf, user.Subject);
        }
        else if (route.Credential?.RequiresDelegation == true)
        {
            await RefuseAsync(
                context,
                Refusal.DelegationRequired($"route '{routeId}' acts on behalf of a user: send the user's access token in {revision.Inbound.Delegation.Header}"),
                routeId,
                agent.Agent.Id);
            return;
        }

        var feature = new GatewayRequestFeature(revision, agent, route, grant, delegation.Delegation);
        context.Features.Set(feature);
        await next(context);
        if (feature.RetryWithFreshCredential && !context.Response.HasStarted)
        {
            // The upstream refused a cached credential, which is now dropped; its 401 was held
            // back. Send once more: the transform fetches a fresh credential.
            feature.RetryWithFreshCredential = false;
            feature.Retried = true;
            context.Response.Clear();
            await next(context);
        }
    }

    private async Task RefuseAsync(HttpContext context, Refusal refusal, string routeId, string? agentId)
    {
        var activity = Activity.Current;
        activity?.SetTag(GatewayTelemetry.Tags.Decision, refusal.Reason);
        activity?.SetStatus(ActivityStatusCode.Error, refusal.Reason);
        GatewayTelemetry.Decisions.Add(1, new KeyValuePair<string, object?>(GatewayTelemetry.Tags.Decision, refusal.Reason));
        Log.Refused(logger, refusal.Reason, agentId, routeId, refusal.Detail);
        await ProblemResponse.WriteAsync(context, refusal);
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 2001, Level = LogLevel.Information, Message = "Refused {Decision} for agent {AgentId} on route {RouteId}: {Detail}")]
        public static partial void Refused(ILogger logger, string decision, string? agentId, string routeId, string detail);
    }
}
