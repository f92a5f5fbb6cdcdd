using AgentGateway.Proxy.Configuration;
using AgentGateway.Proxy.Problems;
using Microsoft.AspNetCore.Http;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace AgentGateway.Proxy.Identity;

/// <summary>
/// A token in <c>Authorization</c>: an issuer's access token (Bearer, or DPoP with its proof), or
/// a JWT-SVID — both by <see cref="AccessTokenRules"/>. Also the token of a connection that is not
/// HTTP (the database listener), which can carry no DPoP proof.
/// </summary>
internal sealed class TokenProofScheme(AccessTokenRules tokens, AgentAdmission admission) : IProofScheme
{
    /// <summary>Only reads a token's parts to tell a JWT-SVID from an issuer's token.</summary>
    private static readonly JsonWebTokenHandler Reader = new() { MapInboundClaims = false };

    public string Kind => "a token in Authorization";

    public bool IsPresented(HttpRequest request, GatewayRevision revision) => request.Headers.Authorization.Count > 0;

    public ValueTask<AuthenticationOutcome> AuthenticateAsync(HttpRequest request, GatewayRevision revision, CancellationToken cancellationToken)
    {
        var presented = AccessTokenRules.Read(request, revision);
        return presented.Failed || !presented.HasToken
            ? ValueTask.FromResult(AuthenticationOutcome.Fail(presented.Failed ? presented.Refusal : Refusal.Unauthenticated("the Authorization header carries no token")))
            : AuthenticateAsync(presented, request, revision, cancellationToken);
    }

    /// <param name="request">The HTTP request whose DPoP proof is checked; null where no proof can be carried.</param>
    /// <remarks>Not an async method: an issuer's token whose validation is cached, without a DPoP
    /// proof (most requests), is admitted without waiting for anything.</remarks>
    public ValueTask<AuthenticationOutcome> AuthenticateAsync(PresentedToken presented, HttpRequest? request, GatewayRevision revision, CancellationToken cancellationToken)
    {
        if (!presented.DpopScheme && revision.Inbound.Certificates.Spiffe is { JwtKeys: not null } spiffe)
        {
            return AuthenticateSvidOrTokenAsync(presented, spiffe, request, revision, cancellationToken);
        }

        var proving = tokens.ProveAsync(request, presented, revision, revision.Inbound.PublicOrigins, cancellationToken);
        return proving.IsCompletedSuccessfully ? new(Admit(proving.Result, revision)) : AdmitAsync(proving, revision);
    }

    private async ValueTask<AuthenticationOutcome> AuthenticateSvidOrTokenAsync(
        PresentedToken presented, SpiffeTrust spiffe, HttpRequest? request, GatewayRevision revision, CancellationToken cancellationToken) =>
        await TryJwtSvidAsync(presented.Token.ToString(), spiffe, revision)
            ?? Admit(await tokens.ProveAsync(request, presented, revision, revision.Inbound.PublicOrigins, cancellationToken), revision);

    private async ValueTask<AuthenticationOutcome> AdmitAsync(ValueTask<(ProvenToken? Token, Refusal Refusal)> proving, GatewayRevision revision) =>
        Admit(await proving, revision);

    /// <summary>The agent a proven token names, if the revision admits it.</summary>
    private AuthenticationOutcome Admit((ProvenToken? Token, Refusal Refusal) result, GatewayRevision revision)
    {
        var (proven, refusal) = result;
        if (proven is null)
        {
            return AuthenticationOutcome.Fail(refusal);
        }

        var (agent, instance, refused) = admission.Resolve(revision, new AgentIdentityKey(proven.Issuer.Name, proven.Subject), proven.KeyBound);
        if (agent is null)
        {
            return AuthenticationOutcome.Fail(refused);
        }

        return AuthenticationOutcome.Success(new AuthenticatedAgent(agent, proven.Issuer, proven.Subject, proven.Token, proven.Task)
        {
            Instance = instance,
            ExpiresAt = proven.ExpiresAt,
        });
    }

    /// <summary>A JWT-SVID: a token without a trusted issuer whose <c>sub</c> is a SPIFFE ID, checked
    /// by <see cref="AccessTokenRules.ValidateSvidAsync"/>. Null when the token is not one (it is
    /// then validated as an issuer's token).</summary>
    private async ValueTask<AuthenticationOutcome?> TryJwtSvidAsync(string token, SpiffeTrust spiffe, GatewayRevision revision)
    {
        if (!Reader.CanReadToken(token))
        {
            return null;
        }

        JsonWebToken jwt;
        try
        {
            jwt = Reader.ReadJsonWebToken(token);
        }
        catch (Exception ex) when (ex is ArgumentException or SecurityTokenException)
        {
            return null;
        }

        if ((!string.IsNullOrEmpty(jwt.Issuer) && revision.Inbound.TryGetIssuer(jwt.Issuer, out _))
            || !jwt.TryGetPayloadValue<string>(JwtRegisteredClaimNames.Sub, out var subject) || subject?.StartsWith("spiffe://", StringComparison.Ordinal) != true)
        {
            return null;
        }

        if (JwsHeader.NamesCriticalExtensions(jwt))
        {
            return AuthenticationOutcome.Fail(Refusal.Unauthenticated("the JWT-SVID names critical header extensions (crit) the gateway does not understand"));
        }

        var why = CertificateIdentity.CheckSpiffeId(subject, out var trustDomain);
        if (why is not null || trustDomain != spiffe.TrustDomain)
        {
            return AuthenticationOutcome.Fail(Refusal.Unauthenticated("the JWT-SVID's SPIFFE ID is invalid or outside this trust domain" + (why is null ? "" : ": " + why)));
        }

        if (await tokens.ValidateSvidAsync(jwt, token, spiffe, revision) is { Status: not 0 } refused)
        {
            return AuthenticationOutcome.Fail(refused);
        }

        // Accepted until exp plus Inbound:ClockSkew (there is no issuer whose skew a session would
        // add): a stream opened with it lasts as long as the SVID would still be accepted.
        return admission.Admit(revision, new AgentIdentityKey(CertificateIdentity.SpiffeIssuer, subject), "spiffe-jwt", new DateTimeOffset(jwt.ValidTo, TimeSpan.Zero) + revision.Inbound.ClockSkew);
    }
}
