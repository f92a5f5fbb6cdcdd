using System.Collections.Frozen;
using AgentGateway.Proxy.Configuration;
using AgentGateway.Proxy.Identity;
using AgentGateway.Proxy.Policy;
using AgentGateway.Proxy.Routes;

namespace AgentGateway.Proxy.Tests.Configuration;

/// <summary>A revision holding only what a unit under test reads (its number, and the inbound
/// options when given); every other part is absent, so a test that reaches one fails loudly.</summary>
internal static class BareRevision
{
    public static GatewayRevision Of(long number, InboundOptions? inbound = null) => new()
    {
        Number = number,
        LoadedAt = default,
        Routes = [],
        Clusters = [],
        GatewayRoutes = FrozenDictionary<string, GatewayRoute>.Empty,
        Inbound = inbound!,
        Agents = null!,
        Credentials = null!,
        Grants = FrozenDictionary<string, Grant>.Empty,
        Policy = null!,
        Process = null!,
        Provenance = null!,
    };
}
