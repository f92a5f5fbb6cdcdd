using Yarp.ReverseProxy.Transforms;

namespace AgentGateway.Proxy.Pipeline;

/// <summary>
/// Everything the gateway does to a route's outgoing request, as one YARP transform: the policy
/// decision on the request as it will be forwarded (<see cref="PolicyTransform"/>), then, when it
/// allows, one pass over the outgoing headers that removes the agent's credentials, untrusted and
/// control headers, trace context and <c>Accept-Encoding</c> (<see cref="RoutePlan.Strip"/>), and the
/// injection of the hop's credential and trace (<see cref="HopCredentialTransform"/>). Built once per
/// route and revision (<see cref="CredentialTransformProvider"/>).
/// </summary>
internal sealed class RouteRequestTransform(PolicyTransform policy, HopCredentialTransform hop) : RequestTransform
{
    public override ValueTask ApplyAsync(RequestTransformContext context)
    {
        // Most decisions wait for nothing (no rate limit or separation rule): then no state machine here.
        var deciding = policy.ApplyAsync(context);
        if (!deciding.IsCompletedSuccessfully)
        {
            return InjectAfterAsync(deciding, context);
        }

        deciding.GetAwaiter().GetResult();
        return hop.ApplyAsync(context);
    }

    private async ValueTask InjectAfterAsync(ValueTask deciding, RequestTransformContext context)
    {
        await deciding;
        await hop.ApplyAsync(context);
    }
}
