using AgentGateway.Credentials;
using AgentGateway.Proxy.Configuration;
using AgentGateway.Proxy.Identity;

namespace AgentGateway.Proxy.Pipeline;

/// <summary>What the gateway decided about a request, from one revision, for the transform that
/// injects the hop credential (and for telemetry).</summary>
public sealed class GatewayRequestFeature(GatewayRevision revision, AuthenticatedAgent agent, GatewayRoute route, string grant, Delegation? delegation)
{
    public GatewayRevision Revision { get; } = revision;

    public AuthenticatedAgent Agent { get; } = agent;

    public GatewayRoute Route { get; } = route;

    /// <summary>The grant that allowed the request.</summary>
    public string Grant { get; } = grant;

    /// <summary>The user the agent acts for on this request, when it presented a valid delegation.</summary>
    public Delegation? Delegation { get; } = delegation;

    /// <summary>The hop credential injected on the latest attempt.</summary>
    public HopCredential? Injected { get; set; }

    /// <summary>Set when the upstream refused a cached credential and the request may be sent once more.</summary>
    public bool RetryWithFreshCredential { get; set; }

    /// <summary>Whether the one retry has been used.</summary>
    public bool Retried { get; set; }

    public CredentialRequest CredentialRequest => new(Agent.Agent.Id, Agent.Token, Delegation);
}
