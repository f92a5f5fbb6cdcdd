using AgentGateway.Credentials;
using AgentGateway.Proxy.Configuration;
using AgentGateway.Proxy.Identity;
using AgentGateway.Proxy.Inspection;
using AgentGateway.Proxy.Policy;
using AgentGateway.Proxy.Routes;

namespace AgentGateway.Proxy.Pipeline;

/// <summary>What the gateway knows and decided about a request, from one revision — the one its
/// route was built from: set by the middleware (identity, delegation, inspected body, task),
/// completed by the policy transform (the decision), used by the injection transform and telemetry.</summary>
public sealed class GatewayRequestFeature
{
    internal GatewayRequestFeature(RoutePlan plan, AuthenticatedAgent agent, Delegation? delegation, InspectedBody? body, string? task)
    {
        Plan = plan;
        Agent = agent;
        Delegation = delegation;
        Body = body;
        Task = task;
    }

    public GatewayRevision Revision => Plan.Revision;

    public AuthenticatedAgent Agent { get; }

    public GatewayRoute Route => Plan.Route;

    /// <summary>The matched route as its revision compiled it.</summary>
    internal RoutePlan Plan { get; }

    /// <summary>The user the agent acts for on this request, when it presented a valid delegation.</summary>
    public Delegation? Delegation { get; }

    /// <summary>The strictly parsed body, on routes that inspect bodies.</summary>
    public InspectedBody? Body { get; }

    /// <summary>The task the request belongs to, if it names one.</summary>
    public string? Task { get; }

    /// <summary>The policy decision, taken once per request (a retry reuses it).</summary>
    public PolicyDecision? Decision { get; set; }

    /// <summary>The grant that allowed the request, once decided.</summary>
    public string? Grant => Decision?.Grant?.Name;

    /// <summary>The hop credential injected on the latest attempt.</summary>
    public HopCredential? Injected { get; set; }

    /// <summary>Set when the upstream refused a cached credential and the request may be sent once more.</summary>
    public bool RetryWithFreshCredential { get; set; }

    /// <summary>Whether the one retry has been used.</summary>
    public bool Retried { get; set; }

    /// <summary>A WebSocket handshake (HTTP/1.1 GET upgrade or HTTP/2 extended CONNECT), decided as the GET it is.</summary>
    public bool WebSocket { get; init; }

    /// <summary>The request as a live session: ended on revocation, expiry or a reload that removes its grant.</summary>
    internal HttpSession? Session { get; init; }

    /// <summary>The stream masking echoed secrets in the agent's response body, once the response guard has put it there.</summary>
    internal SecretMaskingStream? Masking { get; set; }

    /// <summary>Set when the agent gets other bytes than the upstream sent (see <see cref="ResponseBody"/>).</summary>
    internal bool BodyRewritten { get; set; }

    public CredentialRequest CredentialRequest => new(Agent.Agent.Id, Agent.Token, Delegation);
}
