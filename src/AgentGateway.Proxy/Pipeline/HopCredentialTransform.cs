using System.Buffers;
using System.Diagnostics;
using System.Net.Http.Headers;
using AgentGateway.Credentials;
using AgentGateway.Proxy.Audit;
using AgentGateway.Proxy.Inventory;
using AgentGateway.Proxy.Policy;
using AgentGateway.Proxy.Problems;
using AgentGateway.Proxy.Stripping;
using AgentGateway.Proxy.Telemetry;
using AgentGateway.Proxy.Upstream;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Transforms;

namespace AgentGateway.Proxy.Pipeline;

/// <summary>
/// On the outgoing request: remove every credential the agent brought (headers in every spelling,
/// query parameters), every identity or forwarding claim it made and every method override it asked
/// for, then ask the broker for the hop's credential and inject it. If the broker cannot supply it,
/// the request is answered with 503 and never forwarded. One per route and revision: what is
/// stripped and which credential is injected were compiled with the route (<see cref="RoutePlan"/>);
/// the second step of the route's <see cref="RouteRequestTransform"/>.
/// </summary>
internal sealed partial class HopCredentialTransform(
    RoutePlan plan, SecretIndex secrets, RefusalWriter refusals, AuditLog audit, AgentActivity activity, ILogger<HopCredentialTransform> logger)
{
    private Described? _described;

    public async ValueTask ApplyAsync(RequestTransformContext context)
    {
        var feature = context.HttpContext.Features.Get<GatewayRequestFeature>();
        if (feature?.Decision is not { Allowed: true })
        {
            // Refused (and answered) by the policy step, or never decided: nothing is injected.
            return;
        }

        var strip = plan.Strip;
        StripHeaders(context.ProxyRequest.Headers, strip);
        if (context.ProxyRequest.Content is { } content)
        {
            StripHeaders(content.Headers, strip);
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

        // The agent's trace context went with the strip; the gateway's goes on.
        HopTraceParent.Add(context);

        if (plan.Route.Credential is not { } source)
        {
            AddProvenance(context, feature, credentialName: null);
            return;
        }

        CredentialResult result;
        HopCredential? credential;
        // One span for the whole use: the acquisition (with token-endpoint calls as its children,
        // made only on a cache miss) and the injection.
        using (var span = GatewayTelemetry.Source.StartActivity(GatewayTelemetry.CredentialSpan))
        {
            var traced = GatewayTelemetry.Recorded(span);
            if (traced is not null)
            {
                Stamp(traced, feature);
                traced.AddTag(GatewayTelemetry.Tags.CredentialName, source.Name);
                traced.AddTag(GatewayTelemetry.Tags.CredentialKind, source.Kind.ToString());
            }

            result = await source.GetAsync(feature.CredentialRequest, context.CancellationToken);
            credential = result.Credential;
            if (credential is { HeaderName: { } header, HeaderValue: { } value })
            {
                context.ProxyRequest.Headers.TryAddWithoutValidation(header, value);
            }

            if (traced is not null)
            {
                Describe(traced, credential, context.DestinationPrefix, ref _described);
            }
        }

        if (credential is null)
        {
            Log.CredentialUnavailable(logger, source.Name, feature.Agent.Agent.Id, result.Error!.Detail);
            await refusals.WriteAsync(context.HttpContext, Refusal.CredentialUnavailable(result.Error.Detail), feature.Route.RouteId, feature.Agent.Agent.Id);
            return;
        }

        if (credential.Signer is { } signer && await RequestSigning.PrepareAsync(context, signer, credential.CredentialName, feature.Route.RouteId) is { } unsignable)
        {
            await refusals.WriteAsync(context.HttpContext, unsignable, feature.Route.RouteId, feature.Agent.Agent.Id);
            return;
        }

        feature.Injected = credential;
        AddProvenance(context, feature, credential.CredentialName);
        secrets.Remember(credential);
        activity.Used(feature.Agent.Agent.Id, feature.Agent.Instance, credential.Kind);
        if (GatewayTelemetry.CredentialUses.Enabled)
        {
            GatewayTelemetry.CredentialUses.Add(
                1,
                new KeyValuePair<string, object?>(GatewayTelemetry.Tags.CredentialKind, credential.Kind.ToString()),
                new KeyValuePair<string, object?>(GatewayTelemetry.Tags.CredentialSource, credential.Source.ToString()));
        }

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

    /// <summary>Who acts and where, on each of the gateway's spans. Each credential span is new
    /// and each attribute set once, so they are appended rather than searched for to replace.</summary>
    private static void Stamp(Activity span, GatewayRequestFeature feature)
    {
        GatewayTelemetry.Stamp(span, feature.Agent.Agent.Id, feature.Delegation?.Subject);
        span.AddTag(GatewayTelemetry.Tags.RouteId, feature.Route.RouteId);
        span.AddTag(GatewayTelemetry.Tags.Grant, feature.Grant);
    }

    /// <summary>What was used and where it went (names, fingerprint, header name; never a value), or that nothing could be.</summary>
    /// <param name="last">The values this route's last traced use derived (its expiry's text, the
    /// destination's host and boxed port): a route mostly uses one token towards one destination,
    /// so they are reused while they still apply instead of formatted and parsed per request.</param>
    private static void Describe(Activity span, HopCredential? credential, string destinationPrefix, ref Described? last)
    {
        if (credential is null)
        {
            span.SetStatus(ActivityStatusCode.Error, "credential-unavailable");
            span.AddTag(GatewayTelemetry.Tags.ErrorType, "credential-unavailable");
            return;
        }

        var described = Volatile.Read(ref last);
        if (described is null || described.ExpiresAt != credential.ExpiresAt || !string.Equals(described.DestinationPrefix, destinationPrefix, StringComparison.Ordinal))
        {
            described = Described.Of(credential.ExpiresAt, destinationPrefix);
            Volatile.Write(ref last, described);
        }

        span.AddTag(GatewayTelemetry.Tags.CredentialSource, credential.Source.ToString());
        span.AddTag(GatewayTelemetry.Tags.CredentialFingerprint, credential.Fingerprint);
        span.AddTag(GatewayTelemetry.Tags.CredentialExpiresAt, described.ExpiresAtText);
        span.AddTag(GatewayTelemetry.Tags.CredentialHeader, credential.HeaderName);
        if (described.Host is not null)
        {
            span.AddTag(GatewayTelemetry.Tags.ServerAddress, described.Host);
            span.AddTag(GatewayTelemetry.Tags.ServerPort, described.Port);
        }
    }

    /// <summary>A credential use's span values that depend only on the token's expiry and the destination.</summary>
    private sealed record Described(DateTimeOffset? ExpiresAt, string? ExpiresAtText, string DestinationPrefix, string? Host, object? Port)
    {
        public static Described Of(DateTimeOffset? expiresAt, string destinationPrefix)
        {
            var text = expiresAt?.ToString("O", System.Globalization.CultureInfo.InvariantCulture);
            return Uri.TryCreate(destinationPrefix, UriKind.Absolute, out var destination)
                ? new(expiresAt, text, destinationPrefix, destination.Host, destination.Port)
                : new(expiresAt, text, destinationPrefix, null, null);
        }
    }

    /// <param name="headers">The outgoing headers.</param>
    /// <param name="strip">The names removed (<see cref="RoutePlan.Strip"/>).</param>
    private static void StripHeaders(HttpHeaders headers, NamePatterns strip)
    {
        // The agent's own credential is stripped on nearly every request: the names are collected
        // in a pooled array, not a list made per request (headers cannot be removed while enumerated).
        string[]? remove = null;
        var count = 0;
        foreach (var header in headers.NonValidated)
        {
            if (strip.Matches(header.Key))
            {
                (remove ??= ArrayPool<string>.Shared.Rent(headers.NonValidated.Count))[count++] = header.Key;
            }
        }

        if (remove is not null)
        {
            foreach (var name in remove.AsSpan(0, count))
            {
                headers.Remove(name);
            }

            ArrayPool<string>.Shared.Return(remove, clearArray: true);
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
