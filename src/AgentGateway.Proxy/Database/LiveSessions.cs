using System.Collections.Concurrent;
using AgentGateway.Proxy.Configuration;
using AgentGateway.Proxy.Inventory;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Primitives;

namespace AgentGateway.Proxy.Database;

/// <summary>Why a live session ended: a stable reason (audit, metrics) and a sentence for the agent.</summary>
public sealed record SessionEnd(string Reason, string Message)
{
    /// <summary>The SQLSTATE the agent gets: class 28 for policy; admin_shutdown when the gateway stops.</summary>
    public string SqlState { get; init; } = "28000";

    public static SessionEnd Revoked(string agentId) => new("agent-revoked", $"agent '{agentId}' was revoked");

    public static readonly SessionEnd Expired = new("session-expired", "the agent's credential (or the session's maximum lifetime) has expired; connect again with a fresh token");

    public static SessionEnd GrantRemoved(string why) => new("grant-removed", why);

    public static readonly SessionEnd ClientClosed = new("client-closed", "the agent closed the connection");

    public static readonly SessionEnd ServerClosed = new("server-closed", "the database server closed the connection");

    public static readonly SessionEnd Shutdown = new("shutdown", "the gateway is shutting down") { SqlState = "57P01" };

    /// <summary>Whether the gateway ended it (and so owes the agent an ErrorResponse).</summary>
    public bool ByGateway => Reason is not ("client-closed" or "server-closed");
}

/// <summary>An agent's open long-lived connection, which policy must be able to end.</summary>
public interface ILiveSession
{
    string AgentId { get; }

    /// <summary>For an instance of an agent class, which one (revoked on its own).</summary>
    string? Instance { get; }

    /// <summary>Decides the session again on a new revision: null when it may go on, else why not.</summary>
    SessionEnd? Recheck(GatewayRevision revision);

    /// <summary>Ends the session, telling the agent why. Idempotent.</summary>
    void End(SessionEnd end);
}

/// <summary>Where live sessions are registered so that revocation and reloads reach them.</summary>
public interface ILiveSessionRegistry
{
    /// <summary>Registers <paramref name="session"/> until the returned handle is disposed.</summary>
    IDisposable Register(ILiveSession session);
}

/// <summary>
/// The live sessions of this replica, ended when their agent (or agent instance) is revoked —
/// revocations reach every replica through the revocation store's channel — and re-decided on
/// every configuration revision. Expiry is each session's own timer. Kept behind
/// <see cref="ILiveSessionRegistry"/> so that one registry for every long-lived connection kind
/// can take its place.
/// </summary>
public sealed class LiveSessionRegistry : ILiveSessionRegistry, IHostedService, IDisposable
{
    private readonly ConcurrentDictionary<ILiveSession, byte> _sessions = new();
    private readonly RevocationStore _revocations;
    private readonly GatewayConfigProvider _config;
    private IDisposable? _reloads;

    public LiveSessionRegistry(RevocationStore revocations, GatewayConfigProvider config)
    {
        _revocations = revocations;
        _config = config;
    }

    public int Count => _sessions.Count;

    public IDisposable Register(ILiveSession session)
    {
        _sessions.TryAdd(session, 0);
        return new Registration(this, session);
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _revocations.Applied += OnRevoked;
        _reloads = ChangeToken.OnChange(() => _config.GetConfig().ChangeToken, OnReload);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _revocations.Applied -= OnRevoked;
        EndAll(SessionEnd.Shutdown);
        return Task.CompletedTask;
    }

    /// <summary>Ends every live session (the gateway is stopping).</summary>
    public void EndAll(SessionEnd end)
    {
        foreach (var session in _sessions.Keys)
        {
            session.End(end);
        }
    }

    public void Dispose() => _reloads?.Dispose();

    private void OnRevoked(Revocation revocation)
    {
        foreach (var session in _sessions.Keys)
        {
            if (string.Equals(session.AgentId, revocation.AgentId, StringComparison.OrdinalIgnoreCase)
                || (session.Instance is { } instance && string.Equals(RevocationStore.InstanceKey(session.AgentId, instance), revocation.AgentId, StringComparison.OrdinalIgnoreCase)))
            {
                session.End(SessionEnd.Revoked(revocation.AgentId));
            }
        }
    }

    private void OnReload()
    {
        var revision = _config.Current;
        foreach (var session in _sessions.Keys)
        {
            if (session.Recheck(revision) is { } end)
            {
                session.End(end);
            }
        }
    }

    private sealed class Registration(LiveSessionRegistry registry, ILiveSession session) : IDisposable
    {
        public void Dispose() => registry._sessions.TryRemove(session, out _);
    }
}
