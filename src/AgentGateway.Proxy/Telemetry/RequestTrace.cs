using System.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace AgentGateway.Proxy.Telemetry;

/// <summary>
/// The gateway's own trace of a request. Every request starts a fresh trace the agent cannot
/// choose (<see cref="OwnTracePropagator"/>): its id is the one the audit trail, problem bodies,
/// provenance assertions and the upstream's <c>traceparent</c> carry, so an agent cannot make its
/// request look like part of another one, or scatter its requests over traces of its choosing. The
/// trace id the agent sent, if it sent a well-formed one, is kept apart as what it is: a claim.
/// </summary>
public static class RequestTrace
{
    /// <summary>This request's trace id as the gateway records it: its request activity's, or — when
    /// no listener made one — one made for the request and kept for all its records.</summary>
    public static string Id(HttpContext context)
    {
        if (context.Features.Get<IHttpActivityFeature>()?.Activity is { } activity)
        {
            return activity.TraceId.ToHexString();
        }

        // Kept as a request feature, not in HttpContext.Items, whose dictionary would otherwise be
        // allocated for this alone on every request.
        if (context.Features.Get<OwnTraceId>() is { } own)
        {
            return own.Id;
        }

        own = new OwnTraceId(ActivityTraceId.CreateRandom().ToHexString());
        context.Features.Set(own);
        return own.Id;
    }

    private sealed record OwnTraceId(string Id);

    /// <summary>The trace id of the agent's own <c>traceparent</c> (W3C Trace Context), or null when
    /// it sent none or one that does not parse. Untrusted: the agent chose it.</summary>
    public static string? AgentTraceId(HttpRequest request)
    {
        var values = request.Headers[OwnTracePropagator.TraceParent];
        return values.Count == 1 && ActivityContext.TryParse(values[0], traceState: null, out var context)
            ? context.TraceId.ToHexString()
            : null;
    }
}

/// <summary>
/// Propagates the gateway's trace outwards as the runtime's propagator does, and takes nothing from
/// a request: no parent trace, no trace state, no baggage. ASP.NET Core's hosting asks it when it
/// starts each request's activity, which thereby begins a trace of the gateway's own.
/// </summary>
public sealed class OwnTracePropagator(DistributedContextPropagator outbound) : DistributedContextPropagator
{
    public const string TraceParent = "traceparent";

    public override IReadOnlyCollection<string> Fields => outbound.Fields;

    public override void Inject(Activity? activity, object? carrier, PropagatorSetterCallback? setter) => outbound.Inject(activity, carrier, setter);

    public override void ExtractTraceIdAndState(object? carrier, PropagatorGetterCallback? getter, out string? traceId, out string? traceState)
    {
        traceId = null;
        traceState = null;
    }

    public override IEnumerable<KeyValuePair<string, string?>>? ExtractBaggage(object? carrier, PropagatorGetterCallback? getter) => null;
}
