using System.Buffers;
using AgentGateway.Proxy.Configuration;
using AgentGateway.Proxy.Identity;
using AgentGateway.Proxy.Inspection;
using AgentGateway.Proxy.Inventory;
using AgentGateway.Proxy.Policy;
using AgentGateway.Proxy.Problems;
using AgentGateway.Proxy.Routes;
using AgentGateway.Proxy.Sessions;
using AgentGateway.Proxy.Telemetry;
using AgentGateway.Proxy.Tunnels;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Model;

namespace AgentGateway.Proxy.Pipeline;

/// <summary>
/// The gateway's step in YARP's proxy pipeline, after a route matched and before forwarding:
/// identify the agent by its own credential, verify the user it acts for when it names one, read
/// and strictly parse the body on inspected routes, refuse any request carrying one of the
/// gateway's own secrets, and note the task. The policy decision itself is taken by
/// <see cref="PolicyTransform"/> on the path exactly as it will be forwarded. Anything short of
/// that is answered here with a problem and never forwarded. Everything is decided by the revision
/// the matched route was built from (its <see cref="RoutePlan"/>), never by whichever is current.
/// </summary>
internal sealed class GatewayMiddleware(
    RequestDelegate next,
    RoutePlans plans,
    AgentAuthenticator authenticator,
    SecretIndex secrets,
    RevocationStore revocations,
    AgentActivity activityLog,
    RefusalWriter refusals,
    LiveSessionRegistry sessions,
    AgentResolver resolver,
    Audit.AuditLog audit,
    WebSocketTunnels tunnels,
    TimeProvider time)
{
    private static readonly SearchValues<char> TaskIdCharacters =
        SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-");

    public async Task InvokeAsync(HttpContext context)
    {
        // The route YARP matched was built from one revision, and carries what it compiled.
        var plan = plans.For(context.GetReverseProxyFeature().Route.Config);
        var revision = plan.Revision;
        var route = plan.Route;
        var routeId = route.RouteId;
        // Identify and policy results are attributes of the request's span, not spans of their own.
        // Set here once per request, so appended (SetTag would search the span's list to replace).
        var activity = GatewayTelemetry.RequestSpan(context);
        activity?.AddTag(GatewayTelemetry.Tags.RouteId, routeId);
        activity?.AddTag(GatewayTelemetry.Tags.ConfigRevision, revision.Number);
        if (activity is not null && RequestTrace.AgentTraceId(context.Request) is { } agentTrace)
        {
            // The request's trace is the gateway's own; what the agent called it is noted beside it.
            activity.AddTag(GatewayTelemetry.Tags.AgentTraceId, agentTrace);
        }

        if (RequestFraming.Ambiguity(context.Request) is { } ambiguity)
        {
            // Before anything else, on every route: which bytes are this request's is in doubt.
            CloseConnectionAfter(context);
            await refusals.WriteAsync(context, Refusal.BadRequest($"ambiguous framing ({ambiguity}) is never forwarded"), routeId, agentId: null);
            return;
        }

        if (IsEchoMethod(context.Request.Method))
        {
            // TRACE/TRACK make the upstream send the request back, with the credential the
            // gateway would inject in it. Refused before anything else; no grant can open them.
            await refusals.WriteAsync(context, Refusal.MethodNotAllowed($"{PolicyEngine.Printable(context.Request.Method)} echoes the request, and with it the hop credential"), routeId, agentId: null);
            return;
        }

        var (switching, what) = ProtocolSwitch.Classify(context);
        if (switching == SwitchKind.Other || (switching == SwitchKind.WebSocket && !route.WebSockets))
        {
            // A tunnel carries whatever its ends like past every check made on requests: only a
            // route that opted in gets one, and only a WebSocket, whose messages the gateway reads.
            CloseConnectionAfter(context);
            await refusals.WriteAsync(
                context,
                HttpMethods.IsConnect(context.Request.Method) && switching == SwitchKind.Other
                    ? Refusal.MethodNotAllowed("CONNECT opens a tunnel, which the gateway never forwards")
                    : Refusal.BadRequest($"route '{routeId}' does not let {what} through" + (route.Inspect != BodyKind.None ? ": its messages would not be inspected" : "")),
                routeId,
                agentId: null);
            return;
        }

        if (switching == SwitchKind.Declined)
        {
            // Answered in HTTP/1.1; an upstream that switches protocols anyway gets no tunnel.
            context.Features.Set<Microsoft.AspNetCore.Http.Features.IHttpUpgradeFeature>(NoUpgrade.Instance);
        }

        var outcome = await authenticator.AuthenticateAsync(context.Request, revision, context.RequestAborted);
        if (outcome.Agent is not { } agent)
        {
            await refusals.WriteAsync(context, outcome.Refusal, routeId, agentId: null);
            return;
        }

        GatewayTelemetry.Stamp(activity, agent.Agent.Id, user: null);
        activity?.AddTag(GatewayTelemetry.Tags.AgentIssuer, agent.Kind);

        // Registered before the revocation check below, so a revocation arriving in between still
        // finds it; from here to the last byte, revocation, expiry and reloads reach this request.
        var session = new HttpSession(context, agent, routeId, resolver, audit, time);
        using var registration = sessions.Register(session);
        session.Registration = registration;
        if (agent.Agent.ExpiresAt is { } agentExpiry)
        {
            registration.EndNoLaterThan(agentExpiry, SessionEnd.AgentExpired(agent.Agent.Id));
        }

        if (agent.ExpiresAt is { } proofExpiry)
        {
            // As long as the gateway would still accept the token: its exp plus the issuer's clock skew.
            registration.EndNoLaterThan(proofExpiry + (agent.Issuer?.ClockSkew ?? TimeSpan.Zero), SessionEnd.Expired);
        }

        if (revocations.Refuse(agent.Agent.Id, agent.Instance) is { } revoked)
        {
            await refusals.WriteAsync(context, revoked, routeId, agent.Agent.Id);
            return;
        }

        activityLog.Seen(agent.Agent.Id, agent.Instance);
        if (!agent.Agent.RouteGrants.ContainsKey(routeId))
        {
            // Decided before anything else is read: an agent with no business here gets nothing more.
            await refusals.WriteAsync(context, Refusal.GrantMissing($"agent '{agent.Agent.Id}' holds no grant for route '{routeId}'"), routeId, agent.Agent.Id);
            return;
        }

        if (SecretInRequestText(plan.Secrets, context.Request) is { } leaked)
        {
            await refusals.WriteAsync(context, leaked, routeId, agent.Agent.Id);
            return;
        }

        var (ok, delegation, body, task) = await ReadFactsAsync(context, plan, agent);
        if (!ok)
        {
            return;
        }

        if (delegation?.ExpiresAt is { } userExpiry)
        {
            registration.EndNoLaterThan(userExpiry + (agent.Issuer?.ClockSkew ?? TimeSpan.Zero), SessionEnd.Expired);
        }

        var feature = new GatewayRequestFeature(plan, agent, delegation, body, task) { Session = session, WebSocket = switching == SwitchKind.WebSocket };
        session.Feature = feature;
        context.Features.Set(feature);
        // What YARP's forwarders copy as the original host is a fact, never the agent's Host.
        Stripping.ForwardedHost.Apply(context.Request, revision.Inbound.PublicOrigins);
        if (feature.WebSocket)
        {
            tunnels.Prepare(context, feature);
        }

        var agentBody = context.Response.Body;
        try
        {
            await next(context);
            if (feature.RetryWithFreshCredential && !context.Response.HasStarted)
            {
                // The upstream refused a cached credential, which is now dropped; its 401 was held
                // back. Send once more: the transform fetches a fresh credential.
                feature.RetryWithFreshCredential = false;
                feature.Retried = true;
                context.Response.Clear();
                // The response transforms wrap the body afresh for the new attempt.
                context.Response.Body = agentBody;
                feature.Masking = null;
                feature.BodyRewritten = false;
                await next(context);
            }

            if (feature.Masking is { } masking)
            {
                // Other streams may sit in front of it; what it holds back is the tail of the body.
                await masking.CompleteAsync(context.RequestAborted);
            }
        }
        finally
        {
            context.Response.Body = agentBody;
        }

        if (session.EndedBy is not null || context.RequestAborted.IsCancellationRequested)
        {
            // Ended by the gateway (revoked, expired, grant removed: already recorded), or by the
            // agent, which went away (an event stream it closed): nobody is left to answer, and
            // nothing was refused.
            return;
        }

        if (context.Features.Get<IForwarderErrorFeature>() is { } failure && !context.Response.HasStarted)
        {
            await refusals.WriteAsync(context, UpstreamFailure(failure, route.RouteId), routeId, agent.Agent.Id);
            return;
        }

        if (feature.Decision is { Allowed: true } && (route.Credential is null || feature.Injected is not null))
        {
            // Counted once per request, whatever the retries.
            GatewayTelemetry.Decisions.Add(1, new KeyValuePair<string, object?>(GatewayTelemetry.Tags.Decision, "forwarded"));
            if (GatewayTelemetry.UpstreamResponses.Enabled)
            {
                // Only a listening meter needs the tags; the status is boxed once per process.
                GatewayTelemetry.UpstreamResponses.Add(
                    1,
                    new KeyValuePair<string, object?>(GatewayTelemetry.Tags.RouteId, route.RouteId),
                    new KeyValuePair<string, object?>(GatewayTelemetry.Tags.HttpStatusCode, ServerSpan.Boxed(context.Response.StatusCode)));
            }

            activity?.SetTag(GatewayTelemetry.Tags.Decision, "forwarded");
        }
    }

    /// <summary>After a refusal whose request bytes are in doubt (framing, a protocol switch), the
    /// HTTP/1.x connection is not used again: what follows on it might be read as another request.</summary>
    private static void CloseConnectionAfter(HttpContext context)
    {
        if (!HttpProtocol.IsHttp2(context.Request.Protocol) && !HttpProtocol.IsHttp3(context.Request.Protocol))
        {
            context.Response.OnStarting(static state =>
            {
                ((HttpResponse)state).Headers.Connection = "close";
                return Task.CompletedTask;
            }, context.Response);
        }
    }

    private static bool IsEchoMethod(string method) =>
        HttpMethods.IsTrace(method) || method.Equals("TRACK", StringComparison.OrdinalIgnoreCase);

    /// <summary>A forwarding failure as a problem, never the exception's text (it can name hosts and addresses).</summary>
    private static Refusal UpstreamFailure(IForwarderErrorFeature failure, string routeId) => failure.Error switch
    {
        ForwarderError.RequestBodyClient when failure.Exception?.InnerException is Microsoft.AspNetCore.Http.BadHttpRequestException { StatusCode: 413 }
            || failure.Exception is Microsoft.AspNetCore.Http.BadHttpRequestException { StatusCode: 413 }
            => Refusal.BodyTooLarge($"the body is larger than route '{routeId}' accepts (MaxRequestBodySize)"),
        ForwarderError.Request when failure.Exception is AgentGateway.Proxy.Upstream.RequestNotSignableException unsignable => Refusal.BadRequest(unsignable.Message),
        ForwarderError.RequestTimedOut => Refusal.UpstreamTimeout($"the upstream of route '{routeId}' did not answer within the cluster's activity timeout"),
        ForwarderError.RequestCanceled or ForwarderError.RequestBodyClient or ForwarderError.ResponseBodyClient => Refusal.BadRequest("the agent's side of the connection failed while forwarding"),
        var error => Refusal.UpstreamUnavailable($"forwarding to the upstream of route '{routeId}' failed ({error})"),
    };

    /// <summary>A gateway secret anywhere the request carries text to the upstream besides the body
    /// (searched once it is inspected): the path and the query as sent and as the server decoded
    /// them, the method, header names and values — each also percent-decoded as often as it was encoded, since
    /// an upstream may decode it. Or null.</summary>
    private Refusal? SecretInRequestText(ConfiguredSecrets configured, HttpRequest request)
    {
        var target = request.HttpContext.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpRequestFeature>()?.RawTarget;
        var query = target?.IndexOf('?', StringComparison.Ordinal) ?? -1;
        if (ContainsSecret(configured, query < 0 ? target : target![..query]) || secrets.Contains(configured, request.PathBase.Value + request.Path.Value))
        {
            return Refusal.SecretInRequest("the path");
        }

        if (query >= 0 && ContainsSecret(configured, target![query..]))
        {
            return Refusal.SecretInRequest("the query string");
        }

        // A method is any token to the server, and YARP forwards it as it came.
        if (ContainsSecret(configured, request.Method))
        {
            return Refusal.SecretInRequest("the method");
        }

        foreach (var header in request.Headers)
        {
            if (ContainsSecret(configured, header.Key))
            {
                return Refusal.SecretInRequest("a header name");
            }

            foreach (var value in header.Value)
            {
                if (ContainsSecret(configured, value))
                {
                    return Refusal.SecretInRequest($"header '{header.Key}'");
                }
            }
        }

        return null;
    }

    /// <summary>Whether <paramref name="text"/>, or any percent-decoding of it, holds a secret.</summary>
    private bool ContainsSecret(ConfiguredSecrets configured, string? text)
    {
        // Bounded: a secret hidden under more layers than this would reach no upstream intact either.
        for (var layer = 0; layer < 4 && text is not null; layer++)
        {
            if (secrets.Contains(configured, text))
            {
                return true;
            }

            if (!text.Contains('%', StringComparison.Ordinal))
            {
                return false;
            }

            var decoded = Uri.UnescapeDataString(text);
            if (decoded == text)
            {
                return false;
            }

            text = decoded;
        }

        return false;
    }

    /// <summary>The delegation, the inspected body and the task; on a refusal the response is
    /// written and <c>Ok</c> is false.</summary>
    /// <remarks>A <see cref="ValueTask{TResult}"/>: without a delegation header or an inspected
    /// body nothing here waits, and a Task of this tuple would be allocated on every request.</remarks>
    private async ValueTask<(bool Ok, Credentials.Delegation? Delegation, InspectedBody? Body, string? Task)> ReadFactsAsync(
        HttpContext context, RoutePlan plan, AuthenticatedAgent agent)
    {
        var (revision, route) = (plan.Revision, plan.Route);
        var routeId = route.RouteId;
        var delegation = await authenticator.AuthenticateDelegationAsync(context.Request, revision, agent, context.RequestAborted);
        if (delegation.Failed)
        {
            await refusals.WriteAsync(context, delegation.Refusal, routeId, agent.Agent.Id);
            return default;
        }

        if (delegation.Delegation is { } user)
        {
            GatewayTelemetry.StampUser(GatewayTelemetry.RequestSpan(context), agent.Agent.Id, user.Subject);
        }
        else if (route.Credential?.RequiresDelegation == true)
        {
            await refusals.WriteAsync(
                context,
                Refusal.DelegationRequired($"route '{routeId}' acts on behalf of a user: send the user's access token in {revision.Inbound.Delegation.Header}"),
                routeId,
                agent.Agent.Id);
            return default;
        }

        var (task, taskRefusal) = ReadTask(context.Request, revision.Policy, agent);
        if (taskRefusal is { } badTask)
        {
            await refusals.WriteAsync(context, badTask, routeId, agent.Agent.Id);
            return default;
        }

        InspectedBody? body = null;
        if (route.Inspect != BodyKind.None)
        {
            // Searched for the gateway's secrets as it is parsed, once.
            var (inspected, bodyRefusal) = await BodyInspector.InspectAsync(context.Request, route.Inspect, revision.Policy.MaxInspectedBodyBytes, plan.Shared, context.RequestAborted);
            if (inspected is null)
            {
                await refusals.WriteAsync(context, bodyRefusal, routeId, agent.Agent.Id);
                return default;
            }

            body = inspected;
        }

        return (true, delegation.Delegation, body, task);
    }

    /// <summary>The task: from the token's claim when one is configured (signed), else from the
    /// header. With a claim configured the header never stands in for it — a token without the claim
    /// names no task, and a header that contradicts the claim, or comes without it, is refused.</summary>
    private static (string? Task, Refusal? Refusal) ReadTask(HttpRequest request, PolicyOptions policy, AuthenticatedAgent agent)
    {
        var values = request.Headers[policy.TaskHeader];
        if (values.Count > 1)
        {
            return (null, Refusal.BadRequest($"more than one {policy.TaskHeader} header"));
        }

        var header = values.Count == 1 ? values[0] : null;
        if (header is not null && !IsTaskId(header))
        {
            return (null, Refusal.BadRequest($"{policy.TaskHeader} must be 1-128 of letters, digits, '.', '_', ':' or '-'"));
        }

        if (policy.TaskClaim is not { } claim)
        {
            return (header, null);
        }

        if (agent.Task is not { } claimed)
        {
            return header is null
                ? (null, null)
                : (null, Refusal.BadRequest($"tasks are named by the token's '{claim}' claim, which this token does not carry; {policy.TaskHeader} does not stand in for it"));
        }

        if (!IsTaskId(claimed))
        {
            return (null, Refusal.BadRequest("the token's task claim is not a valid task id"));
        }

        return header is not null && header != claimed
            ? (null, Refusal.BadRequest($"{policy.TaskHeader} disagrees with the token's task claim"))
            : (claimed, null);
    }

    /// <summary>1–128 of ASCII letters, digits, '.', '_', ':' and '-' (one vectorised search; this runs per request).</summary>
    internal static bool IsTaskId(string? text) =>
        text is { Length: > 0 and <= 128 } && !text.AsSpan().ContainsAnyExcept(TaskIdCharacters);
}
