using System.Diagnostics;
using System.Net.Http.Headers;
using AgentGateway.Credentials;
using AgentGateway.Proxy.Policy;
using AgentGateway.Proxy.Problems;
using AgentGateway.Proxy.Stripping;
using AgentGateway.Proxy.Telemetry;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Transforms;

namespace AgentGateway.Proxy.Pipeline;

/// <summary>
/// On the outgoing request: remove every credential the agent brought (headers in every spelling,
/// query parameters), then ask the broker for the hop's credential and inject it. If the broker
/// cannot supply it, the request is answered with 503 and never forwarded. Stateless; one instance
/// serves every route.
/// </summary>
internal sealed partial class HopCredentialTransform(SecretIndex secrets, ILogger<HopCredentialTransform> logger) : RequestTransform
{
    public override async ValueTask ApplyAsync(RequestTransformContext context)
    {
        var feature = context.HttpContext.Features.Get<GatewayRequestFeature>();
        if (feature?.Decision is not { Allowed: true })
        {
            // Refused (and answered) by the policy step, or never decided: nothing is injected.
            return;
        }

        string[] control = [feature.Revision.Inbound.Delegation.Header, feature.Revision.Policy.TaskHeader];
        StripHeaders(context.ProxyRequest.Headers, feature.Route.Credential?.HeaderName, control);
        if (context.ProxyRequest.Content is { } content)
        {
            StripHeaders(content.Headers, feature.Route.Credential?.HeaderName, control);
        }

        if (context.HttpContext.Request.QueryString.HasValue)
        {
            StripQuery(context.Query.Collection);
        }

        if (feature.Route.Credential is not { } source)
        {
            return;
        }

        using var activity = GatewayTelemetry.Source.StartActivity("agentgateway.credential");
        var result = await source.GetAsync(feature.CredentialRequest, context.CancellationToken);
        if (result.Credential is not { } credential)
        {
            activity?.SetStatus(ActivityStatusCode.Error, "credential-unavailable");
            Log.CredentialUnavailable(logger, source.Name, feature.Agent.Agent.Id, result.Error!.Detail);
            GatewayTelemetry.Decisions.Add(1, new KeyValuePair<string, object?>(GatewayTelemetry.Tags.Decision, "credential-unavailable"));
            await ProblemResponse.WriteAsync(context.HttpContext, Refusal.CredentialUnavailable(result.Error.Detail));
            return;
        }

        if (credential.HeaderName is { } header)
        {
            context.ProxyRequest.Headers.TryAddWithoutValidation(header, credential.HeaderValue);
        }

        feature.Injected = credential;
        secrets.Remember(credential);
        Record(activity, credential, feature);
    }

    /// <param name="headers">The outgoing headers.</param>
    /// <param name="inject">The header about to be injected: no spelling of it may survive.</param>
    /// <param name="control">Headers addressed to the gateway itself (the delegation, the task).</param>
    private static void StripHeaders(HttpHeaders headers, string? inject, string[] control)
    {
        List<string>? remove = null;
        foreach (var header in headers)
        {
            if (InboundCredentials.IsCredentialHeader(header.Key)
                || InboundCredentials.SameHeader(header.Key, control[0])
                || InboundCredentials.SameHeader(header.Key, control[1])
                || (inject is not null && InboundCredentials.SameHeader(header.Key, inject)))
            {
                (remove ??= []).Add(header.Key);
            }
        }

        if (remove is not null)
        {
            foreach (var name in remove)
            {
                headers.Remove(name);
            }
        }
    }

    private static void StripQuery(IDictionary<string, Microsoft.Extensions.Primitives.StringValues> query)
    {
        List<string>? remove = null;
        foreach (var name in query.Keys)
        {
            if (InboundCredentials.IsCredentialQueryParameter(name))
            {
                (remove ??= []).Add(name);
            }
        }

        if (remove is not null)
        {
            foreach (var name in remove)
            {
                query.Remove(name);
            }
        }
    }

    private static void Record(Activity? activity, HopCredential credential, GatewayRequestFeature feature)
    {
        var kind = credential.Kind.ToString();
        var source = credential.Source.ToString();
        GatewayTelemetry.CredentialUses.Add(
            1,
            new KeyValuePair<string, object?>(GatewayTelemetry.Tags.CredentialKind, kind),
            new KeyValuePair<string, object?>(GatewayTelemetry.Tags.CredentialSource, source));
        GatewayTelemetry.Decisions.Add(1, new KeyValuePair<string, object?>(GatewayTelemetry.Tags.Decision, "forwarded"));
        if (activity is null)
        {
            return;
        }

        activity.SetTag(GatewayTelemetry.Tags.AgentId, feature.Agent.Agent.Id);
        activity.SetTag(GatewayTelemetry.Tags.RouteId, feature.Route.RouteId);
        activity.SetTag(GatewayTelemetry.Tags.Grant, feature.Grant);
        if (feature.Delegation is { } delegation)
        {
            activity.SetTag(GatewayTelemetry.Tags.OnBehalfOf, delegation.Subject);
        }

        activity.SetTag(GatewayTelemetry.Tags.CredentialName, credential.CredentialName);
        activity.SetTag(GatewayTelemetry.Tags.CredentialKind, kind);
        activity.SetTag(GatewayTelemetry.Tags.CredentialSource, source);
        activity.SetTag(GatewayTelemetry.Tags.CredentialFingerprint, credential.Fingerprint);
        activity.SetTag(GatewayTelemetry.Tags.CredentialHeader, credential.HeaderName);
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 2101, Level = LogLevel.Warning, Message = "Credential {CredentialName} unavailable for agent {AgentId}; not forwarded: {Detail}")]
        public static partial void CredentialUnavailable(ILogger logger, string credentialName, string agentId, string detail);
    }
}
