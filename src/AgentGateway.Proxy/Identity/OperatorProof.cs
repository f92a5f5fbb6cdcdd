using AgentGateway.Proxy.Configuration;
using AgentGateway.Proxy.Problems;
using Microsoft.AspNetCore.Http;

namespace AgentGateway.Proxy.Identity;

/// <summary>An operator of the admin API, proven by the agents' token rules
/// (<see cref="AccessTokenRules"/>) for the admin listener's origins.</summary>
internal sealed class OperatorProof(AccessTokenRules tokens)
{
    /// <summary>An operator calling the admin API: an access token proven by the same rules as an
    /// agent's (binding and DPoP proof for the admin listener's origin, lifetime, types, skew),
    /// from the admin issuer, whose holder is one of the operators.</summary>
    public async ValueTask<(string? Caller, Refusal Refusal)> ProveAsync(HttpRequest request, GatewayRevision revision, CancellationToken cancellationToken)
    {
        var presented = AccessTokenRules.Read(request, revision);
        if (!presented.HasToken)
        {
            return (null, presented.Failed
                ? presented.Refusal
                : Refusal.Unauthenticated("the admin API needs an operator's access token: 'Authorization: Bearer <token>', or 'DPoP <token>' with a DPoP proof"));
        }

        var (proven, refusal) = await tokens.ProveAsync(request, presented, revision, revision.Admin.PublicOrigins, cancellationToken);
        if (proven is null)
        {
            return (null, refusal);
        }

        if (!string.Equals(proven.Issuer.Name, revision.Admin.Issuer, StringComparison.OrdinalIgnoreCase) || !revision.Admin.Subjects.Contains(proven.Subject))
        {
            return (null, Refusal.AdminForbidden("the token does not name an operator of this gateway (Gateway:Admin:Subjects)"));
        }

        if (revision.Admin.RequireDpop && !proven.KeyBound)
        {
            return (null, Refusal.Unauthenticated("operators must present DPoP-bound tokens (Gateway:Admin:RequireDpop)"));
        }

        return (proven.Subject, default);
    }
}
