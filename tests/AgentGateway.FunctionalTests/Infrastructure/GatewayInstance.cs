using System.Text.Json.Nodes;
using AgentGateway.Proxy.Configuration;
using AgentGateway.Host;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;

namespace AgentGateway.FunctionalTests.Infrastructure;

/// <summary>The real gateway — the same host builder as <c>agentgateway run</c> — on a loopback
/// Kestrel socket, configured from a JSON file the test writes.</summary>
public sealed class GatewayInstance : IAsyncDisposable
{
    private readonly WebApplication _app;

    private GatewayInstance(WebApplication app, string configFile, LogSink logs, Uri address)
    {
        _app = app;
        ConfigFile = configFile;
        Logs = logs;
        Address = address;
        Client = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(30) };
    }

    public string ConfigFile { get; }

    public LogSink Logs { get; }

    public Uri Address { get; }

    /// <summary>Every address the gateway listens on (e.g. http and https endpoints).</summary>
    public IReadOnlyList<Uri> Addresses => [.. _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Select(a => new Uri(a))];

    public HttpClient Client { get; }

    public GatewayConfigProvider Config => _app.Services.GetRequiredService<GatewayConfigProvider>();

    /// <summary>The gateway's services, for tests that look inside (e.g. its in-process cache).</summary>
    public IServiceProvider Services => _app.Services;

    /// <summary>The admin API's address, when the configuration turns it on.</summary>
    public Uri? AdminAddress => _app.Services.GetRequiredService<AgentGateway.Proxy.Inventory.AdminServer>().Addresses is [var first, ..] ? new Uri(first) : null;

    /// <param name="config">The configuration file's content.</param>
    /// <param name="time">The clock the gateway reads (a <c>FakeTimeProvider</c> a test moves); the system's when null.</param>
    public static async Task<GatewayInstance> StartAsync(JsonObject config, TimeProvider? time = null)
    {
        var file = Path.Combine(Path.GetTempPath(), $"agentgateway-test-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(file, config.ToJsonString());
        var logs = new LogSink();
        var app = GatewayHost.Build(file, ["--urls", "http://127.0.0.1:0"], builder =>
        {
            // Quiet on the console, but keep every other sink (the OTLP log exporter, when on).
            foreach (var console in builder.Services.Where(d => d.ServiceType == typeof(ILoggerProvider)
                && d.ImplementationType?.Name is "ConsoleLoggerProvider" or "DebugLoggerProvider" or "EventSourceLoggerProvider").ToList())
            {
                builder.Services.Remove(console);
            }

            builder.Logging.SetMinimumLevel(LogLevel.Debug);
            builder.Logging.AddProvider(logs);
            if (time is not null)
            {
                builder.Services.Replace(ServiceDescriptor.Singleton(time));
            }
        });
        await app.MapAgentGatewayAsync();
        await app.StartAsync();
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses;
        var address = addresses.FirstOrDefault(a => a.StartsWith("http://", StringComparison.Ordinal)) ?? addresses.First();
        return new GatewayInstance(app, file, logs, new Uri(address));
    }

    /// <summary>A GET as the agent holding <paramref name="agentToken"/>.</summary>
    public async Task<HttpResponseMessage> GetAsAgentAsync(string path, string agentToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", agentToken);
        return await Client.SendAsync(request);
    }

    /// <summary>Where the PostgreSQL listener of database <paramref name="name"/> is bound.</summary>
    public System.Net.IPEndPoint DatabaseEndpoint(string name) =>
        _app.Services.GetRequiredService<AgentGateway.Proxy.Database.PostgresListener>().EndpointOf(name) ?? throw new InvalidOperationException($"no database listener '{name}'");

    /// <summary>Rewrites the configuration file and waits until the gateway has either served a
    /// new revision or refused the reload.</summary>
    public async Task RewriteConfigAsync(JsonObject config)
    {
        var before = Config.Status;
        await File.WriteAllTextAsync(ConfigFile, config.ToJsonString());
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (DateTime.UtcNow < deadline)
        {
            var now = Config.Status;
            if (now.Revision != before.Revision || now.LastReloadFailedAt != before.LastReloadFailedAt)
            {
                return;
            }

            await Task.Delay(50);
        }

        throw new TimeoutException("the gateway did not react to the configuration change");
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        File.Delete(ConfigFile);
    }
}
