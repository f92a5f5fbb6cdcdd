using System.Diagnostics;
using System.Net.Http.Headers;
using AgentGateway.Credentials;
using AgentGateway.Proxy.Audit;
using AgentGateway.Proxy.Inventory;
using AgentGateway.Proxy.Policy;
using AgentGateway.Proxy.Problems;
using AgentGateway.Proxy.Stripping;
using AgentGateway.Proxy.Telemetry;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Transforms;

namespace AgentGateway.Proxy.Pipeline;

/// <summary>
/// On the outgoing request: remove every credential the agent brought (headers in every spelling,
/// query parameters), every identity or forwarding claim it made and every method override it asked
/// for, then ask the broker for the hop's credential and inject it. If the broker cannot supply it,
/// the request is answered with 503 and never forwarded. Stateless; one instance serves every route.
/// </summary>
internal sealed partial class HopCredentialTransform(
    SecretIndex secrets, RefusalWriter refusals, AuditLog audit, AgentActivity activity, ILogger<HopCredentialTransform> logger) : RequestTransform
{
    public override async ValueTask ApplyAsync(RequestTransformContext context)
    {
        var feature = context.HttpContext.Features.Get<GatewayRequestFeature>();
        if (feature?.Decision is not { Allowed: true })
        {
            // Refused (and answered) by the policy step, or never decided: nothing is injected.
            return;
        }

        string[] control =
        [
            feature.Revision.Inbound.Delegation.Header,
            feature.Revision.Policy.TaskHeader,
            feature.Revision.Inbound.StaticKeyHeader ?? feature.Revision.Policy.TaskHeader,
            // The agent can neither supply nor influence the provenance assertion.
            feature.Revision.Provenance.Options.Header,
        ];
        StripHeaders(context.ProxyRequest.Headers, feature.Route.Credential?.HeaderName, control);
        if (context.ProxyRequest.Content is { } content)
        {
            StripHeaders(content.Headers, feature.Route.Credential?.HeaderName, control);
        }

        if (context.HttpContext.Request.Headers.Connection.Count > 0)
        {
            foreach (var nominated in UntrustedHeaders.NominatedHopByHop(context.HttpContext.Request.Headers.Connection))
            {
                context.ProxyRequest.Headers.Remove(nominated);
                context.ProxyRequest.Content?.Headers.Remove(nominated);
            }
        }

        if (context.HttpContext.Request.QueryString.HasValue)
        {
            StripQuery(context.Query.Collection);
        }

        if (feature.Route.Credential is not { } source)
        {
            AddProvenance(context, feature, credentialName: null);
            return;
        }

        CredentialResult result;
        using (var acquire = GatewayTelemetry.Source.StartActivity("agentgateway.credential.acquire"))
        {
            Stamp(acquire, feature);
            acquire?.SetTag(GatewayTelemetry.Tags.CredentialName, source.Name);
            acquire?.SetTag(GatewayTelemetry.Tags.CredentialKind, source.Kind.ToString());
            result = await source.GetAsync(feature.CredentialRequest, context.CancellationToken);
            if (result.Credential is { } acquired)
            {
                acquire?.SetTag(GatewayTelemetry.Tags.CredentialSource, acquired.Source.ToString());
                acquire?.SetTag(GatewayTelemetry.Tags.CredentialFingerprint, acquired.Fingerprint);
                acquire?.SetTag(GatewayTelemetry.Tags.CredentialExpiresAt, acquired.ExpiresAt?.ToString("O", System.Globalization.CultureInfo.InvariantCulture));
            }
            else
            {
                acquire?.SetStatus(ActivityStatusCode.Error, "credential-unavailable");
                acquire?.SetTag(GatewayTelemetry.Tags.ErrorType, "credential-unavailable");
            }
        }

        if (result.Credential is not { } credential)
        {
            Log.CredentialUnavailable(logger, source.Name, feature.Agent.Agent.Id, result.Error!.Detail);
            await refusals.WriteAsync(context.HttpContext, Refusal.CredentialUnavailable(result.Error.Detail), feature.Route.RouteId, feature.Agent.Agent.Id);
            return;
        }

        using (var inject = GatewayTelemetry.Source.StartActivity("agentgateway.credential.inject"))
        {
            Stamp(inject, feature);
            if (credential.HeaderName is { } header)
            {
                context.ProxyRequest.Headers.TryAddWithoutValidation(header, credential.HeaderValue);
            }

            if (inject is not null)
            {
                inject.SetTag(GatewayTelemetry.Tags.CredentialName, credential.CredentialName);
                inject.SetTag(GatewayTelemetry.Tags.CredentialKind, credential.Kind.ToString());
                inject.SetTag(GatewayTelemetry.Tags.CredentialFingerprint, credential.Fingerprint);
                inject.SetTag(GatewayTelemetry.Tags.CredentialHeader, credential.HeaderName);
                if (Uri.TryCreate(context.DestinationPrefix, UriKind.Absolute, out var destination))
                {
                    inject.SetTag(GatewayTelemetry.Tags.ServerAddress, destination.Host);
                    inject.SetTag(GatewayTelemetry.Tags.ServerPort, destination.Port);
                }
            }
        }

        feature.Injected = credential;
        AddProvenance(context, feature, credential.CredentialName);
        secrets.Remember(credential);
        activity.Used(feature.Agent.Agent.Id, feature.Agent.Instance, credential.Kind);
        GatewayTelemetry.CredentialUses.Add(
            1,
            new KeyValuePair<string, object?>(GatewayTelemetry.Tags.CredentialKind, credential.Kind.ToString()),
            new KeyValuePair<string, object?>(GatewayTelemetry.Tags.CredentialSource, credential.Source.ToString()));
        await audit.CredentialUsedAsync(context.HttpContext, feature, credential, context.DestinationPrefix);
    }

    private static void AddProvenance(RequestTransformContext context, GatewayRequestFeature feature, string? credentialName)
    {
        if (!feature.Route.Provenance)
        {
            return;
        }

        var signer = feature.Revision.Provenance;
        var assertion = signer.Sign(feature, credentialName, RequestTrace.Id(context.HttpContext));
        context.ProxyRequest.Headers.Remove(signer.Options.Header);
        context.ProxyRequest.Headers.TryAddWithoutValidation(signer.Options.Header, assertion);
    }

    /// <summary>Who acts and where, on each of the gateway's spans.</summary>
    private static void Stamp(Activity? activity, GatewayRequestFeature feature)
    {
        GatewayTelemetry.Stamp(activity, feature.Agent.Agent.Id, feature.Delegation?.Subject);
        activity?.SetTag(GatewayTelemetry.Tags.RouteId, feature.Route.RouteId);
        activity?.SetTag(GatewayTelemetry.Tags.Grant, feature.Grant);
    }

    /// <param name="headers">The outgoing headers.</param>
    /// <param name="inject">The header about to be injected: no spelling of it may survive.</param>
    /// <param name="control">Headers addressed to the gateway itself (the delegation, the task).</param>
    private static void StripHeaders(HttpHeaders headers, string? inject, string[] control)
    {
        List<string>? remove = null;
        foreach (var header in headers.NonValidated)
        {
            if (InboundCredentials.IsCredentialHeader(header.Key)
                || UntrustedHeaders.IsUntrusted(header.Key)
                || InboundCredentials.SameHeader(header.Key, control[0])
                || InboundCredentials.SameHeader(header.Key, control[1])
                || InboundCredentials.SameHeader(header.Key, control[2])
                || InboundCredentials.SameHeader(header.Key, control[3])
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
            if (InboundCredentials.IsCredentialQueryParameter(name) || UntrustedHeaders.IsMethodOverrideParameter(name))
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

    private static partial class Log
    {
        [LoggerMessage(EventId = 2101, Level = LogLevel.Warning, Message = "Credential {CredentialName} unavailable for agent {AgentId}; not forwarded: {Detail}")]
        public static partial void CredentialUnavailable(ILogger logger, string credentialName, string agentId, string detail);
    }
}
