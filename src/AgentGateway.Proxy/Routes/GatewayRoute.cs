using AgentGateway.Credentials;
using AgentGateway.Proxy.Inspection;

namespace AgentGateway.Proxy.Routes;

/// <summary>A proxied route as the gateway sees it: which credential its hop gets, which bodies it inspects.</summary>
/// <param name="RouteId">The YARP route id.</param>
/// <param name="CredentialName">The hop credential's name, or <see cref="CredentialName.None"/>.</param>
/// <param name="Credential">The source, or null when the hop needs none.</param>
/// <param name="Inspect">Which bodies are read and decided on (<c>Metadata:Inspect</c>).</param>
public sealed record GatewayRoute(string RouteId, string CredentialName, ICredentialSource? Credential, BodyKind Inspect)
{
    /// <summary>Send the upstream a signed provenance assertion (<c>Metadata:Provenance = true</c>).</summary>
    public bool Provenance { get; init; }

    /// <summary>On LLM routes: whose request shapes it speaks, so the model is read where that
    /// provider reads it (<c>Metadata:LlmProvider</c>, default OpenAI).</summary>
    public LlmProvider LlmProvider { get; init; }

    /// <summary>WebSockets may open on this route (<c>Metadata:Upgrade = WebSocket</c>); every other
    /// protocol upgrade, and WebSockets elsewhere, are refused.</summary>
    public bool WebSockets { get; init; }
}
