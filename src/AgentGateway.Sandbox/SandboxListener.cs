using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace AgentGateway.Sandbox;

/// <summary>
/// Where the sandbox's demo services listen and the name they are reached by. In process they are
/// plain HTTP on loopback (the gateway allows plain HTTP to loopback only). For the compose file
/// they serve other containers under a service name, so they speak TLS with a certificate from a
/// certificate authority made at start: the gateway replicas trust that authority's certificate
/// and nothing else about the sandbox is special to them.
/// </summary>
internal sealed record SandboxListener(IPAddress Bind, string PublicHost, X509Certificate2? Certificate)
{
    public static SandboxListener Loopback { get; } = new(IPAddress.Loopback, "127.0.0.1", null);

    /// <summary>Listens on <paramref name="port"/> (0: any free port).</summary>
    public void Configure(WebApplicationBuilder builder, int port) =>
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(Bind, port, endpoint =>
        {
            if (Certificate is not null)
            {
                endpoint.UseHttps(Certificate);
            }
        }));

    /// <summary>The base URL a client uses, with the port the app got.</summary>
    public string BaseUrl(WebApplication app)
    {
        var bound = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
        return BaseUrl(bound.Port);
    }

    public string BaseUrl(int port) => $"{(Certificate is null ? "http" : "https")}://{PublicHost}:{port}/";

    /// <summary>
    /// A certificate authority that exists only for this run, and a server certificate it signs for
    /// <paramref name="host"/>, localhost and the loopback addresses. The authority's private key
    /// signs once and is dropped, so nobody — the sandbox included — can issue another certificate
    /// under it; only the authority's certificate is handed out.
    /// </summary>
    public static (X509Certificate2 Authority, X509Certificate2 Server) CreateCertificates(string host, TimeProvider time)
    {
        var now = time.GetUtcNow();
        using var authorityKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var authorityRequest = new CertificateRequest("CN=AgentGateway sandbox CA (demo only)", authorityKey, HashAlgorithmName.SHA256);
        authorityRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        authorityRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        authorityRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(authorityRequest.PublicKey, false));
        using var authority = authorityRequest.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(30));

        var serverKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var serverRequest = new CertificateRequest($"CN={host}", serverKey, HashAlgorithmName.SHA256);
        serverRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        serverRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        serverRequest.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        serverRequest.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(authority, true, false));
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName(host);
        if (host != "localhost")
        {
            names.AddDnsName("localhost");
        }

        names.AddIpAddress(IPAddress.Loopback);
        names.AddIpAddress(IPAddress.IPv6Loopback);
        serverRequest.CertificateExtensions.Add(names.Build());
        using var issued = serverRequest.Create(authority, now.AddMinutes(-5), now.AddDays(30), RandomNumberGenerator.GetBytes(16));
        return (X509CertificateLoader.LoadCertificate(authority.RawData), issued.CopyWithPrivateKey(serverKey));
    }
}
