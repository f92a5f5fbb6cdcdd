using AgentGateway.Proxy.Audit;
using AgentGateway.Proxy.Inspection;
using AgentGateway.Proxy.Inventory;
using AgentGateway.Proxy.Policy;
using AgentGateway.Proxy.Stripping;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;

namespace AgentGateway.Proxy.Pipeline;

/// <summary>
/// Gives every route, as YARP builds it from a revision, its own request transform (policy, then
/// strip-then-inject, in one YARP transform call: <see cref="RouteRequestTransform"/>) and
/// response guard transforms, holding what that revision compiled for the route
/// (<see cref="RoutePlan"/>): built once per route per revision, never looked up per request.
/// Route metadata is checked by the loader (a route without a <c>Credential</c> is a load error
/// rather than a request-time surprise).
/// </summary>
internal sealed class CredentialTransformProvider(
    RoutePlans plans,
    PolicyEngine engine,
    SecretIndex secrets,
    RefusalWriter refusals,
    AuditLog audit,
    AgentActivity activity,
    ILoggerFactory loggers,
    UnauthorizedResponseTransform unauthorized,
    McpServerStreamTransform mcpStream) : ITransformProvider
{
    // Routes are validated by the gateway's loader, which refuses a revision before YARP sees it;
    // this provider only builds, so it needs nothing that `validate` would have to construct.
    public void ValidateRoute(TransformRouteValidationContext context)
    {
    }

    public void ValidateCluster(TransformClusterValidationContext context)
    {
    }

    public void Apply(TransformBuilderContext context)
    {
        var plan = plans.For(context.Route);
        if (context.Route.Metadata?.TryGetValue(ForwardHeaders.MetadataKey, out var forward) == true)
        {
            // First of all, on the agent's headers alone: what the route's transforms set after it
            // is the gateway's. The loader refused an invalid list; should one get here, nothing passes.
            var allowed = ForwardHeaders.Parse(forward, [], out _) ?? ForwardHeaders.None;
            context.RequestTransforms.Insert(0, allowed.Transform());
        }

        // Forwarding headers the route configures itself are the gateway's to set: they go after
        // the strip, which removes every X-Forwarded-* and Forwarded the agent sent (YARP's
        // defaults are added after every provider anyway).
        var forwarding = context.RequestTransforms.Where(IsForwarding).ToList();
        foreach (var configured in forwarding)
        {
            context.RequestTransforms.Remove(configured);
        }

        // Added by a provider, so it runs after every transform the route configures itself: policy
        // decides on the path and method as forwarded, and nothing a route transform copies in
        // survives the strip. The strip also takes the agent's trace context and Accept-Encoding
        // (RoutePlan.Strip): the agent does not choose how the upstream codes its answer, since a
        // coded answer is one the guard must decode before it can search it, and refuse when it
        // cannot; not asking keeps the common case a plain body, and the guard handles an upstream
        // that codes unasked. The forwarding headers the route configures come after: they are the
        // gateway's, and touch neither the trace nor the coding.
        context.RequestTransforms.Add(new RouteRequestTransform(
            new PolicyTransform(plan, engine, refusals, loggers.CreateLogger<PolicyTransform>()),
            new HopCredentialTransform(plan, secrets, refusals, audit, activity, loggers.CreateLogger<HopCredentialTransform>())));
        foreach (var configured in forwarding)
        {
            context.RequestTransforms.Add(configured);
        }

        // First, so the body is decoded and guarded before any later transform reads or writes it.
        var guard = new ResponseGuardTransform(plan, secrets, loggers.CreateLogger<ResponseGuardTransform>());
        context.ResponseTransforms.Add(guard);
        context.ResponseTransforms.Add(unauthorized);
        context.ResponseTrailersTransforms.Add(new ResponseTrailerGuardTransform(plan, guard, loggers.CreateLogger<ResponseTrailerGuardTransform>()));
        if (plan.Route.Inspect == BodyKind.Mcp)
        {
            context.ResponseTransforms.Add(mcpStream);
        }
    }

    private static bool IsForwarding(RequestTransform transform) => transform is RequestHeaderXForwardedForTransform
        or RequestHeaderXForwardedHostTransform or RequestHeaderXForwardedProtoTransform or RequestHeaderXForwardedPrefixTransform
        or RequestHeaderForwardedTransform;
}
