using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace AgentGateway.FunctionalTests.Infrastructure;

/// <summary>
/// A real HTTP/2 upstream (Kestrel, cleartext with prior knowledge) whose answers a test writes
/// with ASP.NET Core's own API — including trailers, which only HTTP/2 and later carry. It keeps
/// the headers of every request.
/// </summary>
public sealed class Http2Upstream : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<IReadOnlyDictionary<string, string>> _received = new();

    private Http2Upstream(WebApplication app, string url)
    {
        _app = app;
        Url = url;
    }

    public string Url { get; }

    public IReadOnlyList<IReadOnlyDictionary<string, string>> Received => [.. _received];

    /// <summary>What the upstream answers; default 200 "ok".</summary>
    public Func<HttpContext, Task> Respond { get; set; } = context => context.Response.WriteAsync("ok");

    public static async Task<Http2Upstream> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(System.Net.IPAddress.Loopback, 0, listen => listen.Protocols = HttpProtocols.Http2));
        var app = builder.Build();
        Http2Upstream? upstream = null;
        app.Run(async context =>
        {
            upstream!._received.Enqueue(context.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase));
            await upstream.Respond(context);
        });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        upstream = new Http2Upstream(app, address);
        return upstream;
    }

    /// <summary>Asserts the secret appears in no header of any request the upstream received.</summary>
    public void AssertNeverSaw(string secret)
    {
        foreach (var headers in Received)
        {
            Assert.DoesNotContain(headers, h => h.Key.Contains(secret, StringComparison.Ordinal) || h.Value.Contains(secret, StringComparison.Ordinal));
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
