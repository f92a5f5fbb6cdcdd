using AgentGateway.Proxy.Configuration;
using AgentGateway.Proxy.Problems;
using Microsoft.AspNetCore.Http;

namespace AgentGateway.Proxy.Identity;

/// <summary>A development static key in its header, only when <c>Inbound:StaticKeys</c> is on.</summary>
internal sealed class StaticKeyScheme(AgentAdmission admission) : IProofScheme
{
    public string Kind => "a static key";

    public bool IsPresented(HttpRequest request, GatewayRevision revision) =>
        revision.Inbound.StaticKeyHeader is { } header && request.Headers[header].Count > 0;

    public ValueTask<AuthenticationOutcome> AuthenticateAsync(HttpRequest request, GatewayRevision revision, CancellationToken cancellationToken)
    {
        var header = revision.Inbound.StaticKeyHeader!;
        var keys = request.Headers[header];
        if (keys.Count > 1 || string.IsNullOrEmpty(keys[0]))
        {
            return ValueTask.FromResult(AuthenticationOutcome.Fail(Refusal.BadRequest($"exactly one {header} header")));
        }

        return ValueTask.FromResult(StaticKeys.Match(keys[0]!, revision.Agents.IdentitiesOf(StaticKeys.Issuer)) is { } key
            ? admission.Admit(revision, key, StaticKeys.Issuer)
            : AuthenticationOutcome.Fail(Refusal.AgentUnknown("no agent of the inventory has this key")));
    }
}
