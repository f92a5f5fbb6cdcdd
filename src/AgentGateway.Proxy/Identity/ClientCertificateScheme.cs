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
    public bool IsPresented(HttpRequest request, GatewayRevision revision) => revision.Inbound.Certificates.Enabled;

    public async ValueTask<AuthenticationOutcome> AuthenticateAsync(HttpRequest request, GatewayRevision revision, CancellationToken cancellationToken) =>
        await request.HttpContext.Connection.GetClientCertificateAsync(cancellationToken) is { } certificate
            ? Identify(certificate, revision)
            : AuthenticationOutcome.Fail(Refusal.Unauthenticated("no access token; send 'Authorization: Bearer <token>'"));

    public AuthenticationOutcome Identify(X509Certificate2 certificate, GatewayRevision revision)
    {
        if (!revision.Inbound.Certificates.Enabled)
        {
            return AuthenticationOutcome.Fail(Refusal.Unauthenticated("client certificates are not accepted here"));
        }

        var (candidates, refusal) = CertificateIdentity.Identify(certificate, revision.Inbound.Certificates, admission.Time.GetUtcNow());
        if (refusal is { } refused)
        {
            return AuthenticationOutcome.Fail(refused);
        }

        foreach (var key in candidates)
        {
            if (admission.Knows(revision, key))
            {
                // The certificate proves nothing after its end: a stream or session opened with it
                // (HTTP or database) ends then, as one opened with a token ends at its exp.
                return admission.Admit(revision, key, key.Issuer, new DateTimeOffset(certificate.NotAfter.ToUniversalTime(), TimeSpan.Zero));
            }
        }

        return AuthenticationOutcome.Fail(Refusal.AgentUnknown("no agent of the inventory has this certificate's identity"));
    }
}
