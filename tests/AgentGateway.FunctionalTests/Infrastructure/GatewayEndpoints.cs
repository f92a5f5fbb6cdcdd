using System.Net;
using System.Text.Json.Nodes;

namespace AgentGateway.FunctionalTests.Infrastructure;

/// <summary>
/// The gateway on three listeners, as agents reach it: HTTP/1.1, HTTP/2 over cleartext with prior
/// knowledge (h2c), and TLS with ALPN (HTTP/2 or HTTP/1.1), the server certificate from a test CA.
/// </summary>
public sealed class GatewayEndpoints : IDisposable
{
    private readonly TestPki _pki = TestPki.Create("gateway-endpoints-ca");

    /// <summary>Adds the three listeners to <paramref name="config"/>.</summary>
    public JsonObject With(JsonObject config)
    {
        var (certificate, key) = _pki.WritePem(_pki.IssueServer());
        config["Kestrel"] = new JsonObject
        {
            ["Endpoints"] = new JsonObject
            {
                ["Http"] = new JsonObject { ["Url"] = "http://127.0.0.1:0", ["Protocols"] = "Http1" },
                ["H2c"] = new JsonObject { ["Url"] = "http://127.0.0.1:0", ["Protocols"] = "Http2" },
                ["Tls"] = new JsonObject
                {
                    ["Url"] = "https://127.0.0.1:0",
                    ["Protocols"] = "Http1AndHttp2",
                    ["Certificate"] = new JsonObject { ["Path"] = certificate, ["KeyPath"] = key },
                },
            },
        };
        return config;
    }

    /// <summary>The h2c listener: the http address that answers HTTP/2 with prior knowledge.</summary>
    public static async Task<Uri> H2cAsync(GatewayInstance gateway)
    {
        foreach (var address in gateway.Addresses.Where(a => a.Scheme == Uri.UriSchemeHttp))
        {
            using var client = new HttpClient();
            try
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(address, "/healthz")) { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
                using var response = await client.SendAsync(request);
                if (response.Version == HttpVersion.Version20)
                {
                    return address;
                }
            }
            catch (HttpRequestException)
            {
            }
        }

        throw new InvalidOperationException("no h2c listener");
    }

    public static Uri Tls(GatewayInstance gateway) => gateway.Addresses.Single(a => a.Scheme == Uri.UriSchemeHttps);

    /// <summary>The HTTP/1.1 listener.</summary>
    public static async Task<Uri> Http1Async(GatewayInstance gateway)
    {
        var h2c = await H2cAsync(gateway);
        return gateway.Addresses.Single(a => a.Scheme == Uri.UriSchemeHttp && a != h2c);
    }

    /// <summary>A client that speaks exactly <paramref name="version"/> and trusts the test CA.</summary>
    public HttpClient Client(Version version) => new(Handler())
    {
        DefaultRequestVersion = version,
        DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        Timeout = TimeSpan.FromSeconds(30),
    };

    /// <summary>A handler that trusts the gateway's certificate through the test CA, and nothing else.</summary>
    public SocketsHttpHandler Handler()
    {
        var authority = _pki.Authority;
        return new SocketsHttpHandler
        {
            SslOptions =
            {
                RemoteCertificateValidationCallback = (_, certificate, _, _) =>
                {
                    if (certificate is null)
                    {
                        return false;
                    }

                    using var chain = new System.Security.Cryptography.X509Certificates.X509Chain();
                    chain.ChainPolicy.TrustMode = System.Security.Cryptography.X509Certificates.X509ChainTrustMode.CustomRootTrust;
                    chain.ChainPolicy.CustomTrustStore.Add(authority);
                    chain.ChainPolicy.RevocationMode = System.Security.Cryptography.X509Certificates.X509RevocationMode.NoCheck;
                    using var leaf = new System.Security.Cryptography.X509Certificates.X509Certificate2(certificate);
                    return chain.Build(leaf);
                },
            },
        };
    }

    public void Dispose() => _pki.Dispose();
}

/// <summary>A request body of unknown length, written in two pieces with a flush between: over
/// HTTP/2 no Content-Length is sent and the body arrives as a stream of frames; over HTTP/1.1 it
/// is chunked.</summary>
public sealed class UnknownLengthContent : HttpContent
{
    private readonly byte[] _body;

    public UnknownLengthContent(byte[] body, string? mediaType = "application/json")
    {
        _body = body;
        if (mediaType is not null)
        {
            Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue(mediaType);
        }
    }

    public UnknownLengthContent(string body, string? mediaType = "application/json")
        : this(System.Text.Encoding.UTF8.GetBytes(body), mediaType)
    {
    }

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
    {
        var half = _body.Length / 2;
        await stream.WriteAsync(_body.AsMemory(0, half));
        await stream.FlushAsync();
        await stream.WriteAsync(_body.AsMemory(half));
    }

    protected override bool TryComputeLength(out long length)
    {
        length = 0;
        return false;
    }
}
