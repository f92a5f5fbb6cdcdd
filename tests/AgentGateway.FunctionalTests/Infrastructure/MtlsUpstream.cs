using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace AgentGateway.FunctionalTests.Infrastructure;

/// <summary>
/// An upstream on real Kestrel TLS that requires a client certificate issued by its CA — checked
/// in the handshake, as a private API with mutual TLS does. It records, per request, the client
/// certificate and the headers it got, and closes every connection so each request makes a new
/// handshake (and so sees a rotated certificate at once).
/// </summary>
public sealed class MtlsUpstream : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<Seen> _seen = new();
    private int _refusedHandshakes;

    private MtlsUpstream(WebApplication app) => _app = app;

    public string Url { get; private set; } = "";

    public IReadOnlyList<Seen> Received => [.. _seen];

    /// <summary>Handshakes that presented no certificate, or one not issued by the trusted CA.</summary>
    public int RefusedHandshakes => Volatile.Read(ref _refusedHandshakes);

    public static async Task<MtlsUpstream> StartAsync(X509Certificate2 serverCertificate, TestPki trustedClients)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        MtlsUpstream? upstream = null;
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen => listen.UseHttps(https =>
        {
            https.ServerCertificate = serverCertificate;
            https.ClientCertificateMode = ClientCertificateMode.RequireCertificate;
            https.ClientCertificateValidation = (certificate, _, _) =>
            {
                var ok = trustedClients.Issued(certificate);
                if (!ok)
                {
                    Interlocked.Increment(ref upstream!._refusedHandshakes);
                }

                return ok;
            };
        })));
        var app = builder.Build();
        upstream = new MtlsUpstream(app);
        app.Run(async context =>
        {
            var certificate = await context.Connection.GetClientCertificateAsync();
            upstream._seen.Enqueue(new Seen(
                certificate?.Thumbprint,
                certificate?.Subject,
                context.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase),
                context.Request.Path + context.Request.QueryString));
            context.Response.Headers.Connection = "close";
            await context.Response.WriteAsJsonAsync(new { ok = true });
        });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        upstream.Url = address.Replace("[::1]", "127.0.0.1", StringComparison.Ordinal).TrimEnd('/') + "/";
        return upstream;
    }

    /// <summary>Asserts nothing the upstream received contains <paramref name="secret"/>.</summary>
    public void AssertNeverSaw(string secret) =>
        Canary.AssertAbsent(secret, Received.Select(r => (r.PathAndQuery, r.Headers)));

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    public sealed record Seen(string? Thumbprint, string? Subject, IReadOnlyDictionary<string, string> Headers, string PathAndQuery);
}
