using AgentGateway.Proxy.Configuration;
using AgentGateway.Proxy.Inventory;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Primitives;

namespace AgentGateway.Proxy.Sessions;

/// <summary>Feeds the registry what ends sessions from outside: revocations as they take effect
/// on this replica (and the moment revocations can no longer be confirmed), each new configuration revision, and the gateway stopping.</summary>
internal sealed class SessionFeeds(LiveSessionRegistry sessions, RevocationStore revocations, GatewayConfigProvider config) : IHostedService, IDisposable
{
    private IDisposable? _reloads;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        revocations.Applied += sessions.Revoked;
        revocations.Unconfirmed += EndAllUnconfirmed;
        // The provider switches its revision before it signals YARP, so Current is the new one here.
        _reloads = ChangeToken.OnChange(() => config.GetConfig().ChangeToken, () => sessions.Recheck(config.Current));
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        revocations.Applied -= sessions.Revoked;
        revocations.Unconfirmed -= EndAllUnconfirmed;
        // Streams and tunnels would otherwise hold the server's graceful stop to its timeout.
        sessions.EndAll(SessionEnd.Shutdown);
        return Task.CompletedTask;
    }

    public void Dispose() => _reloads?.Dispose();

    private void EndAllUnconfirmed() => sessions.EndAll(SessionEnd.RevocationsUnconfirmed);
}
