using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace AgentGateway.Proxy.Telemetry;

/// <summary>The one <see cref="ActivitySource"/> and one <see cref="Meter"/> of the gateway, both
/// named <c>AgentGateway</c> (DESIGN.md), and the attribute names SREs query by.</summary>
public static class GatewayTelemetry
{
    public const string Name = "AgentGateway";

    public static readonly ActivitySource Source = new(Name);

    public static readonly Meter Meter = new(Name);

    /// <summary>Every decision the gateway takes on a request, by reason (<c>forwarded</c> or a refusal reason).</summary>
    public static readonly Counter<long> Decisions = Meter.CreateCounter<long>("agentgateway.decisions", unit: "{request}", description: "Requests by gateway decision");

    /// <summary>Every hop credential injected, by kind and source.</summary>
    public static readonly Counter<long> CredentialUses = Meter.CreateCounter<long>("agentgateway.credential.uses", unit: "{use}", description: "Hop credentials injected");

    public static class Tags
    {
        public const string AgentId = "agentgateway.agent.id";
        public const string AgentIssuer = "agentgateway.agent.issuer";

        /// <summary>The user (subject) the agent acts for, from a verified delegation.</summary>
        public const string OnBehalfOf = "agentgateway.delegation.user";
        public const string RouteId = "agentgateway.route.id";
        public const string Grant = "agentgateway.policy.grant";
        public const string Decision = "agentgateway.decision";
        public const string CredentialName = "agentgateway.credential.name";
        public const string CredentialKind = "agentgateway.credential.kind";
        public const string CredentialSource = "agentgateway.credential.source";
        public const string CredentialFingerprint = "agentgateway.credential.fingerprint";
        public const string CredentialHeader = "agentgateway.credential.header";
        public const string ConfigRevision = "agentgateway.config.revision";

        /// <summary>The policy outcome: <c>allowed</c> or the refusal reason.</summary>
        public const string PolicyDecision = "agentgateway.policy.decision";

        /// <summary>The separation rule that refused, if one did.</summary>
        public const string PolicyRule = "agentgateway.policy.rule";

        /// <summary>What shadow policy would have refused (recorded, not enforced).</summary>
        public const string PolicyShadow = "agentgateway.policy.shadow";

        /// <summary>The task the request belongs to.</summary>
        public const string Task = "agentgateway.task.id";
    }
}
