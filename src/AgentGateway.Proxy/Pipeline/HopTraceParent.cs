using System.Diagnostics;
using AgentGateway.Proxy.Telemetry;
using Yarp.ReverseProxy.Transforms;

namespace AgentGateway.Proxy.Pipeline;

/// <summary>
/// The request's trace on the hop when the request has no activity. Exporting neither traces nor
/// logs, the gateway lets ASP.NET Core start none (see <c>AddAgentGateway</c>), and without one
/// the HTTP client neither makes a span nor propagates anything: the agent's own trace headers
/// would pass as they came. So the route's strip removes them (<see cref="PropagationFields"/> are
/// in <see cref="RoutePlan.Strip"/>, the same pass as the agent's credentials), and the gateway's
/// trace — the id the audit record and the problem bodies carry (<see cref="RequestTrace"/>) —
/// goes on as a W3C <c>traceparent</c>, not sampled, since nothing records it. With an activity the
/// HTTP client's propagation writes the fields from the activity instead, and nothing is added here.
/// </summary>
internal static class HopTraceParent
{
    /// <summary>What any of the runtime's propagators writes: never the agent's to set.</summary>
    internal static readonly string[] PropagationFields = [OwnTracePropagator.TraceParent, "tracestate", "baggage", "Request-Id", "Correlation-Context"];

    /// <summary>Adds the gateway's <c>traceparent</c> to a stripped hop, unless the HTTP client will.</summary>
    public static void Add(RequestTransformContext context)
    {
        if (Activity.Current is null)
        {
            context.ProxyRequest.Headers.TryAddWithoutValidation(OwnTracePropagator.TraceParent, Header(RequestTrace.Id(context.HttpContext)));
        }
    }

    /// <summary><c>00-{trace id}-{a new span id}-00</c>: version 0, not sampled.</summary>
    internal static string Header(string traceId) => string.Create(55, traceId, static (chars, trace) =>
    {
        "00-".CopyTo(chars);
        trace.CopyTo(chars[3..]);
        chars[35] = '-';
        Span<byte> span = stackalloc byte[8];
        ActivitySpanId.CreateRandom().CopyTo(span);
        Convert.TryToHexStringLower(span, chars.Slice(36, 16), out _);
        "-00".CopyTo(chars[52..]);
    });
}
