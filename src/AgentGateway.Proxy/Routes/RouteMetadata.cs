namespace AgentGateway.Proxy.Routes;

/// <summary>The keys of the gateway's settings in a YARP route's <c>Metadata</c>.</summary>
public static class RouteMetadata
{
    /// <summary>The hop credential's name under <c>Gateway:Credentials</c>, or <c>None</c>; required.</summary>
    public const string Credential = "Credential";

    /// <summary>Which bodies the gateway reads and decides on (<c>Mcp</c>, <c>Llm</c>); absent, none.</summary>
    public const string Inspect = "Inspect";

    /// <summary><c>true</c>: the upstream receives a signed provenance assertion.</summary>
    public const string Provenance = "Provenance";

    /// <summary>On LLM routes, whose request shapes the route speaks.</summary>
    public const string LlmProvider = "LlmProvider";

    /// <summary>The protocol upgrade a route lets through (<c>WebSocket</c>); absent, none.</summary>
    public const string Upgrade = "Upgrade";
}
