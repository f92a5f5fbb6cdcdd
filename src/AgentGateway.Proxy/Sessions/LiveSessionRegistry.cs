using System.Collections.Concurrent;
using AgentGateway.Proxy.Configuration;
using AgentGateway.Proxy.Inventory;
using AgentGateway.Proxy.Telemetry;
using Microsoft.Extensions.Logging;

namespace AgentGateway.Proxy.Sessions;

/// <summary>
/// The live sessions of this replica, of every kind (HTTP requests and the tunnels and streams
/// they become, database sessions), and the one place that ends them:
/// <list type="bullet">
/// <item>when their agent, or the agent instance, is revoked (<see cref="Revoked"/>; revocations
/// reach every replica through the revocation store's channel and periodic re-read);</item>
/// <item>when a deadline passes — the agent's expiry, the expiry of the token or certificate the
/// session was opened with — timed by <see cref="TimeProvider"/> with one timer for all sessions,
/// armed at the earliest deadline;</item>
/// <item>when a configuration revision no longer allows them (<see cref="Recheck"/>).</item>
/// </list>
/// Nothing here knows HTTP: a session is anything that implements <see cref="ILiveSession"/>.
/// </summary>
public sealed partial class LiveSessionRegistry : ILiveSessionRegistry, IDisposable
{
    private readonly ConcurrentDictionary<SessionRegistration, byte> _live = new();
    private readonly TimeProvider _time;
    private readonly ILogger<LiveSessionRegistry> _logger;
    private readonly Lock _gate = new();
    private ITimer? _timer;
    private long _armedAt = long.MaxValue;
    private bool _disposed;
    private GatewayRevision? _rechecked;

    public LiveSessionRegistry(TimeProvider time, ILogger<LiveSessionRegistry> logger)
    {
        _time = time;
        _logger = logger;
    }

    /// <summary>How many sessions are open on this replica.</summary>
    public int Count => _live.Count;

    /// <summary>The open sessions of <paramref name="agentId"/> on this replica.</summary>
    public IReadOnlyList<ILiveSession> Of(string agentId) =>
        [.. _live.Keys.Where(r => string.Equals(r.Session.AgentId, agentId, StringComparison.OrdinalIgnoreCase)).Select(r => r.Session)];

    public SessionRegistration Register(ILiveSession session)
    {
        var registration = new SessionRegistration(this, session);
        _live.TryAdd(registration, 0);
        return registration;
    }

    /// <summary>Ends the sessions a revocation covers: all of the agent's, or one instance's.</summary>
    public void Revoked(Revocation revocation)
    {
        foreach (var registration in _live.Keys)
        {
            var session = registration.Session;
            if (string.Equals(session.AgentId, revocation.AgentId, StringComparison.OrdinalIgnoreCase)
                || (session.Instance is { } instance && string.Equals(RevocationStore.InstanceKey(session.AgentId, instance), revocation.AgentId, StringComparison.OrdinalIgnoreCase)))
            {
                End(registration, SessionEnd.Revoked(session.AgentId));
            }
        }
    }

    /// <summary>Decides every open session again on <paramref name="revision"/>.</summary>
    public void Recheck(GatewayRevision revision)
    {
        // Published before the sweep, with a full fence: a session decided on an older revision
        // once the sweep has passed it sees this in CatchUp and is decided again there.
        Interlocked.Exchange(ref _rechecked, revision);
        foreach (var registration in _live.Keys)
        {
            RecheckOne(registration, revision);
        }
    }

    /// <summary>
    /// A session was just decided by <paramref name="decidedBy"/>, the revision its route was built
    /// from. When a newer revision has been swept already (it arrived between the route's build
    /// and the decision), the session is decided again on that one now, as the sweep would have.
    /// </summary>
    public void CatchUp(SessionRegistration registration, GatewayRevision decidedBy)
    {
        // Pairs with the exchange in Recheck: either the sweep saw this session's decision, or this
        // sees the sweep's revision.
        Interlocked.MemoryBarrier();
        if (Volatile.Read(ref _rechecked) is { } latest && latest.Number > decidedBy.Number)
        {
            RecheckOne(registration, latest);
        }
    }

    private void RecheckOne(SessionRegistration registration, GatewayRevision revision)
    {
        SessionEnd? end;
        try
        {
            end = registration.Session.Recheck(revision);
        }
        catch (Exception ex)
        {
            // What cannot be decided again does not go on.
            Log.RecheckFailed(_logger, ex, registration.Session.AgentId);
            end = SessionEnd.GrantRemoved("the session could not be decided again on the new configuration");
        }

        if (end is not null)
        {
            End(registration, end);
        }
    }

    /// <summary>Ends every open session (the gateway is stopping).</summary>
    public void EndAll(SessionEnd end)
    {
        foreach (var registration in _live.Keys)
        {
            End(registration, end);
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            _timer?.Dispose();
        }
    }

    internal void Unregister(SessionRegistration registration) => _live.TryRemove(registration, out _);

    /// <summary>Ends one session: at most once, whoever asks first.</summary>
    internal void End(SessionRegistration registration, SessionEnd end)
    {
        // Under the registration's lock, which its Dispose takes too: once the connection has
        // closed by itself, no end can still be on its way to it (an HTTP context, for one, serves
        // the connection's next request afterwards).
        lock (registration.EndGate)
        {
            if (!registration.TryMarkEnded())
            {
                return;
            }

            _live.TryRemove(registration, out _);
            GatewayTelemetry.SessionsEnded.Add(1, new KeyValuePair<string, object?>(GatewayTelemetry.Tags.SessionEnd, end.Reason));
            Log.Ended(_logger, registration.Session.AgentId, end.Reason, end.Message);
            try
            {
                registration.Session.End(end);
            }
            catch (Exception ex)
            {
                Log.EndFailed(_logger, ex, registration.Session.AgentId);
            }
        }
    }

    /// <summary>Makes sure the timer fires no later than <paramref name="at"/> (UTC ticks).</summary>
    internal void Arm(long at)
    {
        lock (_gate)
        {
            if (_disposed || at >= _armedAt)
            {
                return;
            }

            _armedAt = at;
            _timer ??= _time.CreateTimer(static state => ((LiveSessionRegistry)state!).OnDeadline(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            var due = TimeSpan.FromTicks(Math.Max(0, at - _time.GetUtcNow().UtcTicks));
            _timer.Change(due, Timeout.InfiniteTimeSpan);
        }
    }

    internal DateTimeOffset Now => _time.GetUtcNow();

    private void OnDeadline()
    {
        // Cleared first: a deadline set while this sweep runs arms the timer again.
        lock (_gate)
        {
            _armedAt = long.MaxValue;
        }

        var now = _time.GetUtcNow().UtcTicks;
        var next = long.MaxValue;
        foreach (var registration in _live.Keys)
        {
            var (at, why) = registration.Deadline;
            if (at <= now)
            {
                End(registration, why!);
            }
            else if (at < next)
            {
                next = at;
            }
        }

        if (next != long.MaxValue)
        {
            Arm(next);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 3401, Level = LogLevel.Information, Message = "Ended a live session of agent {AgentId}: {SessionEndReason} ({Detail})")]
        public static partial void Ended(ILogger logger, string agentId, string sessionEndReason, string detail);

        [LoggerMessage(EventId = 3402, Level = LogLevel.Warning, Message = "A live session of agent {AgentId} failed while being ended")]
        public static partial void EndFailed(ILogger logger, Exception exception, string agentId);

        [LoggerMessage(EventId = 3403, Level = LogLevel.Warning, Message = "A live session of agent {AgentId} could not be decided again on the new configuration; it is ended")]
        public static partial void RecheckFailed(ILogger logger, Exception exception, string agentId);
    }
}

/// <summary>One session's place in the registry: dispose it when the connection closes by itself.</summary>
public sealed class SessionRegistration : IDisposable
{
    private readonly LiveSessionRegistry _registry;
    private readonly Lock _gate = new();
    private long _endsAt = long.MaxValue;
    private SessionEnd? _why;
    private int _ended;

    internal SessionRegistration(LiveSessionRegistry registry, ILiveSession session)
    {
        _registry = registry;
        Session = session;
    }

    public ILiveSession Session { get; }

    /// <summary>The session was just decided by <paramref name="decidedBy"/>: see <see cref="LiveSessionRegistry.CatchUp"/>.</summary>
    public void Decided(GatewayRevision decidedBy) => _registry.CatchUp(this, decidedBy);

    /// <summary>Whether the registry has ended the session (rather than the connection closing by itself).</summary>
    public bool Ended => Volatile.Read(ref _ended) != 0;

    /// <summary>The earliest deadline set, if any.</summary>
    public DateTimeOffset? EndsAt
    {
        get
        {
            var (at, _) = Deadline;
            return at == long.MaxValue ? null : new DateTimeOffset(at, TimeSpan.Zero);
        }
    }

    internal (long At, SessionEnd? Why) Deadline
    {
        get
        {
            lock (_gate)
            {
                return (_endsAt, _why);
            }
        }
    }

    /// <summary>Ends the session at <paramref name="at"/> at the latest, for <paramref name="why"/>
    /// (the agent's expiry, the expiry of a token it was opened with). The earliest deadline wins; a
    /// deadline already past ends the session now.</summary>
    public void EndNoLaterThan(DateTimeOffset at, SessionEnd why)
    {
        var ticks = at.UtcTicks;
        lock (_gate)
        {
            if (ticks >= _endsAt)
            {
                return;
            }

            _endsAt = ticks;
            _why = why;
        }

        if (at <= _registry.Now)
        {
            _registry.End(this, why);
        }
        else if (!Ended)
        {
            _registry.Arm(ticks);
        }
    }

    /// <summary>Ends the session now, from its own side (a message over its rate limit, say).</summary>
    public void End(SessionEnd why) => _registry.End(this, why);

    public void Dispose()
    {
        lock (EndGate)
        {
            Interlocked.Exchange(ref _ended, 1);
        }

        _registry.Unregister(this);
    }

    internal Lock EndGate { get; } = new();

    internal bool TryMarkEnded() => Interlocked.Exchange(ref _ended, 1) == 0;
}
