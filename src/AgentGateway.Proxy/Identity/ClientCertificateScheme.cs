using System.Security.Cryptography.X509Certificates;
using AgentGateway.Proxy.Configuration;
using AgentGateway.Proxy.Problems;
using Microsoft.AspNetCore.Http;

namespace AgentGateway.Proxy.Identity;

/// <summary>The TLS connection's client certificate (mTLS, X509-SVID), judged by
/// <see cref="CertificateIdentity"/> against the configured trust only; on HTTP and on the
/// database listener alike.</summary>
internal sealed class ClientCertificateScheme(AgentAdmission admission) : IProofScheme
{
    /// <summary>Where a request keeps its certificate's judgement, so a chain is built once per request.</summary>
    private static readonly object JudgedKey = new();

    public string Kind => "a client certificate";

    /// <summary>
    /// The listener asks for client certificates without requiring one, so a client may send a
    /// certificate it does not mean as an agent's proof (a device's, a browser's): it counts as a
    /// proof only when it maps to an agent of the inventory — and then it counts whatever else
    /// the request carries. The certificate is the one of the TLS handshake; no renegotiation.
    /// </summary>
    public bool IsPresented(HttpRequest request, GatewayRevision revision) => Judge(request, revision) is { Maps: true };

    public ValueTask<AuthenticationOutcome> AuthenticateAsync(HttpRequest request, GatewayRevision revision, CancellationToken cancellationToken) =>
        ValueTask.FromResult(Judge(request, revision)?.Outcome
            ?? AuthenticationOutcome.Fail(Refusal.Unauthenticated("no access token; send 'Authorization: Bearer <token>'")));

    public AuthenticationOutcome Identify(X509Certificate2 certificate, GatewayRevision revision) => Judge(certificate, revision).Outcome;

    private Judgement? Judge(HttpRequest request, GatewayRevision revision)
    {
        if (!revision.Inbound.Certificates.Enabled || request.HttpContext.Connection.ClientCertificate is not { } certificate)
        {
            return null;
        }

        var items = request.HttpContext.Items;
        if (items.TryGetValue(JudgedKey, out var kept) && kept is Judgement judged)
        {
            return judged;
        }

        var judgement = Judge(certificate, revision);
        items[JudgedKey] = judgement;
        return judgement;
    }

    private Judgement Judge(X509Certificate2 certificate, GatewayRevision revision)
    {
        if (!revision.Inbound.Certificates.Enabled)
        {
            return new(AuthenticationOutcome.Fail(Refusal.Unauthenticated("client certificates are not accepted here")), Maps: false);
        }

        var (candidates, refusal) = CertificateIdentity.Identify(certificate, revision.Inbound.Certificates, admission.Time.GetUtcNow());
        if (refusal is { } refused)
        {
            return new(AuthenticationOutcome.Fail(refused), Maps: false);
        }

        foreach (var key in candidates)
        {
            if (admission.Knows(revision, key))
            {
                // The certificate proves nothing after its end: a stream or session opened with it
                // (HTTP or database) ends then, as one opened with a token ends at its exp.
                return new(admission.Admit(revision, key, key.Issuer, new DateTimeOffset(certificate.NotAfter.ToUniversalTime(), TimeSpan.Zero)), Maps: true);
            }
        }

        return new(AuthenticationOutcome.Fail(Refusal.AgentUnknown("no agent of the inventory has this certificate's identity")), Maps: false);
    }

    /// <param name="Maps">The certificate names an agent of the inventory (admitted or not: an
    /// expired agent's certificate is still that agent's proof).</param>
    private sealed record Judgement(AuthenticationOutcome Outcome, bool Maps);
}
