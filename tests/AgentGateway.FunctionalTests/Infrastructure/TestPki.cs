using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace AgentGateway.FunctionalTests.Infrastructure;

/// <summary>A certificate authority made in the test: issues server and client certificates with
/// the extensions real PKI puts in them, and writes PEM files the way a secret mount holds them.</summary>
public sealed class TestPki : IDisposable
{
    private readonly List<string> _files = [];

    private TestPki(X509Certificate2 authority) => Authority = authority;

    public X509Certificate2 Authority { get; }

    public static TestPki Create(string name)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var now = DateTimeOffset.UtcNow;
        return new TestPki(request.CreateSelfSigned(now.AddDays(-7), now.AddDays(7)));
    }

    /// <summary>A TLS server certificate for 127.0.0.1 and localhost, and any other names given.</summary>
    public X509Certificate2 IssueServer(params string[] dnsNames) =>
        Issue("CN=127.0.0.1", "1.3.6.1.5.5.7.3.1", DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1), san =>
        {
            san.AddIpAddress(IPAddress.Loopback);
            san.AddDnsName("localhost");
            foreach (var name in dnsNames)
            {
                san.AddDnsName(name);
            }
        });

    /// <summary>A TLS client certificate, valid over the given window (default: now until tomorrow).</summary>
    public X509Certificate2 IssueClient(string name, DateTimeOffset? notBefore = null, DateTimeOffset? notAfter = null) =>
        Issue($"CN={name}", "1.3.6.1.5.5.7.3.2", notBefore ?? DateTimeOffset.UtcNow.AddMinutes(-5), notAfter ?? DateTimeOffset.UtcNow.AddDays(1), san => san.AddDnsName(name));

    /// <summary>An X509-SVID-shaped certificate: the given URI SANs, and the basic constraints and key
    /// usage a test wants to get right or wrong.</summary>
    public X509Certificate2 IssueSvid(string[] uris, bool certificateAuthority = false, X509KeyUsageFlags usage = X509KeyUsageFlags.DigitalSignature)
    {
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=svid", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(usage, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.2")], false));
        var san = new SubjectAlternativeNameBuilder();
        foreach (var uri in uris)
        {
            san.AddUri(new Uri(uri));
        }

        request.CertificateExtensions.Add(san.Build());
        using var issued = request.Create(Authority, DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1), RandomNumberGenerator.GetBytes(16));
        return issued.CopyWithPrivateKey(key);
    }

    /// <summary>Writes the certificate and its key as two PEM files; returns their paths.</summary>
    public (string Certificate, string Key) WritePem(X509Certificate2 certificate, string? certificatePath = null, string? keyPath = null)
    {
        certificatePath ??= NewPath("crt");
        keyPath ??= NewPath("key");
        File.WriteAllText(certificatePath, certificate.ExportCertificatePem());
        using var key = certificate.GetECDsaPrivateKey()!;
        File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem());
        return (certificatePath, keyPath);
    }

    /// <summary>Writes the authority's certificate (no key) as a PEM bundle.</summary>
    public string WriteAuthorityPem()
    {
        var path = NewPath("ca.crt");
        File.WriteAllText(path, Authority.ExportCertificatePem());
        return path;
    }

    /// <summary>Whether <paramref name="certificate"/> chains to this authority, and to nothing else.</summary>
    public bool Issued(X509Certificate2 certificate)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(Authority);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(certificate);
    }

    public void Dispose()
    {
        foreach (var file in _files)
        {
            File.Delete(file);
        }

        Authority.Dispose();
    }

    private string NewPath(string extension)
    {
        var path = Path.Combine(Path.GetTempPath(), $"agentgateway-test-{Guid.NewGuid():N}.{extension}");
        _files.Add(path);
        return path;
    }

    private X509Certificate2 Issue(string subject, string usage, DateTimeOffset notBefore, DateTimeOffset notAfter, Action<SubjectAlternativeNameBuilder> names)
    {
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(usage)], false));
        var san = new SubjectAlternativeNameBuilder();
        names(san);
        request.CertificateExtensions.Add(san.Build());
        using var issued = request.Create(Authority, notBefore, notAfter, RandomNumberGenerator.GetBytes(16));
        return issued.CopyWithPrivateKey(key);
    }
}
