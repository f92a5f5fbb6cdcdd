using AgentGateway.Configuration;
using AgentGateway.Credentials.Secrets;

namespace AgentGateway.Credentials.Certificates;

/// <summary><c>Kind: MtlsClientCertificate</c>: the certificate a cluster's connections present.</summary>
[Setting("A client certificate for mutual TLS, presented by the cluster whose Metadata:ClientCertificate names it.")]
public sealed record MtlsClientCertificateSettings
{
    public string? Kind { get; init; }

    /// <summary>Secret reference to the PEM certificate, leaf first (e.g. <c>file:/run/secrets/tls.crt</c>).</summary>
    [Setting("PEM certificate, leaf first, then intermediates (sent with it).", Required = true, Format = SettingFormat.SecretReference)]
    public string? Certificate { get; init; }

    /// <summary>Secret reference to the PEM private key (e.g. <c>file:/run/secrets/tls.key</c>).</summary>
    [Setting("PEM private key of the leaf.", Required = true, Format = SettingFormat.SecretReference)]
    public string? PrivateKey { get; init; }

    /// <summary>Secret reference to PEM CA certificates: when set, the upstream's server certificate
    /// must chain to one of them (and nothing else is trusted).</summary>
    [Setting("PEM CA certificates: the upstream's server certificate must chain to one of them, and nothing else is trusted. Absent: the system trust store.", Format = SettingFormat.SecretReference)]
    public string? ServerCertificateAuthority { get; init; }

    /// <summary>How often the files are checked for rotation; a rotated pair is used for new connections.</summary>
    [Setting("How often the files are checked for rotation (1 s to 1 h).")]
    public TimeSpan ReloadInterval { get; init; } = TimeSpan.FromMinutes(1);
}

/// <summary>A client certificate for mutual TLS to the upstream, validated. It travels on the
/// connection, not in a header, so it is attached to a cluster (<c>Metadata:ClientCertificate</c>).</summary>
/// <param name="Certificate">Reference to the PEM certificate (leaf first).</param>
/// <param name="PrivateKey">Reference to its PEM private key.</param>
/// <param name="ServerCertificateAuthority">Reference to PEM CA certificates that alone are trusted
/// for the upstream's server certificate (private PKI); null means the system's trust store.</param>
/// <param name="ReloadInterval">How often the files are checked for rotation.</param>
public sealed record MtlsClientCertificateOptions(
    string Name,
    SecretReference Certificate,
    SecretReference PrivateKey,
    SecretReference? ServerCertificateAuthority,
    TimeSpan ReloadInterval)
    : CredentialOptions(Name)
{
    public override CredentialKind Kind => CredentialKind.MtlsClientCertificate;
}
