using AgentGateway.Configuration;
using AgentGateway.Credentials.Configuration;
using AgentGateway.Credentials.Secrets;
using Microsoft.Extensions.Logging;

namespace AgentGateway.Credentials.Certificates;

/// <summary><c>Kind: MtlsClientCertificate</c>: loaded (and checked) at load, re-read on rotation.</summary>
internal sealed class MtlsClientCertificateKind(CredentialFingerprint fingerprint, TimeProvider time, ILoggerFactory loggers)
    : CredentialKindBase<MtlsClientCertificateSettings, MtlsClientCertificateOptions>
{
    public override CredentialKind Kind => CredentialKind.MtlsClientCertificate;

    protected override MtlsClientCertificateOptions? Validate(string name, string path, MtlsClientCertificateSettings s, ConfigProblems problems)
    {
        var ok = CredentialConfigReader.TryReadSecret(path + ":Certificate", s.Certificate, problems, out var certificate);
        ok &= CredentialConfigReader.TryReadSecret(path + ":PrivateKey", s.PrivateKey, problems, out var key);
        SecretReference? authority = null;
        if (s.ServerCertificateAuthority is not null)
        {
            ok &= CredentialConfigReader.TryReadSecret(path + ":ServerCertificateAuthority", s.ServerCertificateAuthority, problems, out var ca);
            authority = ca;
        }

        if (s.ReloadInterval < TimeSpan.FromSeconds(1) || s.ReloadInterval > TimeSpan.FromHours(1))
        {
            problems.Add(path + ":ReloadInterval", "must be between 00:00:01 and 01:00:00");
            ok = false;
        }

        return ok ? new MtlsClientCertificateOptions(name, certificate, key, authority, s.ReloadInterval) : null;
    }

    protected override ICredentialSource? Build(MtlsClientCertificateOptions options, CredentialBuildContext context, ConfigProblems problems) =>
        ClientCertificateSource.Create(options, context.Path, fingerprint, time, loggers.CreateLogger<ClientCertificateSource>(), problems);
}
