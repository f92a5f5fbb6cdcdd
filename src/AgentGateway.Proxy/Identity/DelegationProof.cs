using AgentGateway.Credentials;
using AgentGateway.Proxy.Configuration;
using AgentGateway.Proxy.Problems;
using Microsoft.AspNetCore.Http;
using Microsoft.IdentityModel.JsonWebTokens;

namespace AgentGateway.Proxy.Identity;

/// <summary>The user an agent acts for: a user's access token in the delegation header, by the
/// token rules of <see cref="AccessTokenRules"/>.</summary>
internal sealed class DelegationProof(AccessTokenRules tokens)
{
    /// <summary>
    /// Verifies the delegation an agent presents: the user's access token in the configured header,
    /// from an issuer trusted for delegation, valid by the same rules as agent tokens, naming a
    /// user other than the agent — and, unless switched off, issued to this very agent (its
    /// <c>azp</c> or <c>client_id</c> is the agent's identity), so a user token lifted from another
    /// application cannot be replayed through an agent.
    /// </summary>
    /// <returns>No delegation when the header is absent; a refusal when it is present but not valid.</returns>
    public async ValueTask<DelegationOutcome> VerifyAsync(HttpRequest request, GatewayRevision revision, AuthenticatedAgent agent, CancellationToken cancellationToken)
    {
        var policy = revision.Inbound.Delegation;
        var values = request.Headers[policy.Header];
        if (values.Count == 0)
        {
            return default;
        }

        if (values.Count > 1)
        {
            return DelegationOutcome.Fail(Refusal.BadRequest($"more than one {policy.Header} header"));
        }

        if (!policy.Enabled)
        {
            return DelegationOutcome.Fail(Refusal.DelegationInvalid($"the request carries {policy.Header}, and this gateway accepts no delegations"));
        }

        var token = values[0];
        if (string.IsNullOrEmpty(token) || token.Length > revision.Inbound.MaxTokenBytes)
        {
            return DelegationOutcome.Fail(Refusal.DelegationInvalid("the delegation token is empty or too large"));
        }

        var check = await tokens.ValidateAsync(token.AsMemory(), revision, cancellationToken);
        if (check.Jwt is not { } jwt)
        {
            return DelegationOutcome.Fail(check.Refusal.Status == 401 ? Refusal.DelegationInvalid("delegation token: " + check.Refusal.Detail) : check.Refusal);
        }

        var issuer = check.Issuer!;
        if (!policy.Issuers.Contains(issuer.Name))
        {
            return DelegationOutcome.Fail(Refusal.DelegationInvalid($"issuer '{issuer.Name}' is not trusted for delegation"));
        }

        if (!jwt.TryGetPayloadValue<string>(JwtRegisteredClaimNames.Sub, out var user) || string.IsNullOrEmpty(user))
        {
            return DelegationOutcome.Fail(Refusal.DelegationInvalid("the delegation token names no user (sub)"));
        }

        if (ReferenceEquals(issuer, agent.Issuer) && string.Equals(user, agent.Subject, StringComparison.Ordinal))
        {
            return DelegationOutcome.Fail(Refusal.DelegationInvalid("an agent cannot act on behalf of itself"));
        }

        if (jwt.TryGetPayloadValue<System.Text.Json.JsonElement>("cnf", out _))
        {
            // RFC 9449 §7.1 (and RFC 8705 §3): a token bound to a key is only ever accepted with
            // proof of that key, and the user's key is not the agent's to prove.
            return DelegationOutcome.Fail(Refusal.DelegationInvalid("the user's token is bound to a key (cnf) and is not accepted as a bearer delegation"));
        }

        if (policy.RequireAuthorizedParty && !IssuedTo(jwt, issuer, agent))
        {
            return DelegationOutcome.Fail(Refusal.DelegationInvalid("the user's token was not issued to this agent (azp/client_id)"));
        }

        return new DelegationOutcome(new Delegation(issuer.Name, user, token, new DateTimeOffset(jwt.ValidTo, TimeSpan.Zero)), default);
    }

    private static bool IssuedTo(JsonWebToken jwt, TrustedIssuer issuer, AuthenticatedAgent agent)
    {
        // Client identifiers are only meaningful within the issuer that assigned them.
        if (!ReferenceEquals(issuer, agent.Issuer))
        {
            return false;
        }

        var party = jwt.TryGetPayloadValue<string>("azp", out var azp) ? azp
            : jwt.TryGetPayloadValue<string>("client_id", out var clientId) ? clientId
            : null;
        return string.Equals(party, agent.Subject, StringComparison.Ordinal);
    }
}
