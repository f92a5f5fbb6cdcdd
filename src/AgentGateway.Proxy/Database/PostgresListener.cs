using AgentGateway.Proxy.Configuration;
using AgentGateway.Proxy.Sessions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace AgentGateway.Proxy.Database;

/// <summary>
/// The PostgreSQL listeners: one Kestrel endpoint per <c>Gateway:Databases</c> entry, on a Kestrel
/// server of their own (like the admin API), so no HTTP route shares a port with them. Each
/// connection goes to <see cref="PostgresFrontEnd"/>. The endpoints are fixed for the process (a
/// reload that moves them is refused); everything else about an entry is read per connection
/// from the serving revision.
/// </summary>
public sealed partial class PostgresListener(GatewayConfigProvider config, PostgresFrontEnd frontEnd, LiveSessionRegistry sessions, ILogger<PostgresListener> logger) : IHostedService, IAsyncDisposable
{
    private readonly Dictionary<string, ListenOptions> _endpoints = new(StringComparer.Ordinal);
    private WebApplication? _server;

    /// <summary>Where database <paramref name="name"/> listens, once started (the bound port when configured as 0).</summary>
    public System.Net.IPEndPoint? EndpointOf(string name) => _endpoints.TryGetValue(name, out var options) ? options.IPEndPoint : null;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var entries = config.Current.Databases.Entries;
        if (entries.Count == 0)
        {
            return;
        }

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            foreach (var entry in entries)
            {
                var name = entry.Name;
                kestrel.Listen(entry.Listen, listen =>
                {
                    _endpoints[name] = listen;
                    listen.Protocols = HttpProtocols.None;
                    listen.Run(connection => frontEnd.HandleAsync(connection, name));
                });
            }
        });
        _server = builder.Build();
        await _server.StartAsync(cancellationToken);
        foreach (var (name, listen) in _endpoints)
        {
            var endpoint = listen.IPEndPoint?.ToString() ?? "?";
            Log.Listening(logger, name, endpoint);
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_server is not null)
        {
            // Open sessions would hold the listener's shutdown until its timeout: end them first,
            // each with an ErrorResponse (57P01) the agent's driver understands.
            sessions.EndAll(SessionEnd.Shutdown);
            await _server.StopAsync(cancellationToken);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 3010, Level = LogLevel.Information, Message = "Database {DatabaseName} listens on {Endpoint} (PostgreSQL protocol)")]
        public static partial void Listening(ILogger logger, string databaseName, string endpoint);
    }
}
