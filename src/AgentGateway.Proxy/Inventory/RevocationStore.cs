using System.Collections.Concurrent;
using System.Text.Json;
using AgentGateway.Credentials.Caching;
using AgentGateway.Proxy.Configuration;
using AgentGateway.Proxy.Problems;
using AgentGateway.Proxy.Telemetry;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using AgentGateway.Proxy.Replicas;

namespace AgentGateway.Proxy.Inventory;

/// <summary>An agent's revocation: when, by whom, why.</summary>
public sealed record Revocation(string AgentId, DateTimeOffset At, string By, string? Reason);

/// <summary>
/// Which agents are revoked, on every replica. With Redis, a revocation is written to a hash
/// (durable across gateway restarts) and announced on a channel, so every replica applies it
/// at once; each replica also re-reads the whole hash every few seconds, so a missed message is
/// corrected quickly. Without Redis, revocations are kept in this process and, when
/// <c>Gateway:Admin:RevocationsFile</c> is set, appended to that file and read back at start.
/// Applying a revocation also purges the tokens cached for the agent alone.
/// </summary>
/// <remarks>
/// With Redis, "not revoked" is only known as of the last complete read of the hash. A replica
/// cut off from Redis (or whose subscription dropped while reads fail) would otherwise go on
/// serving an agent revoked elsewhere, for as long as the outage lasts. So the answer has an age:
/// once the last complete read started more than <c>Gateway:Admin:RevocationsMaxAge</c> ago, no
/// agent is treated as not revoked — agents are refused with 503 <c>revocations-unconfirmed</c>,
/// <c>/readyz</c> fails and every open session ends (<see cref="Unconfirmed"/>) — until a read
/// succeeds, which applies what it brings before the replica serves again.
/// </remarks>
public sealed partial class RevocationStore : IHostedService, IDisposable
{
    private const string HashKey = "agw:revocations";
    private const string Channel = "agw:revocations";

    /// <summary>The longest between two reads of the hash; shorter when the maximum age asks for it.</summary>
    private static readonly TimeSpan ReconcileInterval = TimeSpan.FromSeconds(3);

    private readonly ConcurrentDictionary<string, Revocation> _revoked = new(StringComparer.OrdinalIgnoreCase);

    // Revocations applied here whose write to Redis (or the file) failed: the operator was told,
    // and a repeated revoke writes again rather than finding them already known.
    private readonly ConcurrentDictionary<string, byte> _unstored = new(StringComparer.OrdinalIgnoreCase);
    private readonly IReplicaBus? _redis;
    private readonly string? _file;
    private readonly AgentTokenIndex _agentTokens;
    private readonly GatewayConfigProvider _config;
    private readonly TimeProvider _time;
    private readonly ILogger<RevocationStore> _logger;
    private readonly Lock _timers = new();
    private ITimer? _reconcile;
    private ITimer? _expiry;
    private bool _stopped;

    // The timestamp (TimeProvider.GetTimestamp: monotonic, so a wall-clock step back cannot make
    // an old list look fresh) at which the last complete read of the hash started.
    private long _confirmedAt;
    private bool _everConfirmed;
    private int _reading;
    private int _unconfirmedRaised;

    public RevocationStore(IServiceProvider services, ProcessSettings process, AgentTokenIndex agentTokens, GatewayConfigProvider config, TimeProvider time, ILogger<RevocationStore> logger)
    {
        _redis = services.GetService<IReplicaBus>();
        _file = process.RevocationsFile;
        _agentTokens = agentTokens;
        _config = config;
        _time = time;
        _logger = logger;
    }

    public IReadOnlyCollection<Revocation> All => [.. _revoked.Values];

    /// <summary>Raised once per revocation on this replica, when it takes effect here (announced,
    /// reconciled or made here), so that open long-lived connections can be ended.</summary>
    public event Action<Revocation>? Applied;

    /// <summary>Raised when this replica can no longer confirm which agents are revoked (Redis
    /// not read within <c>Gateway:Admin:RevocationsMaxAge</c>): every open session must end, as a
    /// revocation of its agent would end it.</summary>
    public event Action? Unconfirmed;

    /// <summary>The revocation id of one instance of an agent class.</summary>
    public static string InstanceKey(string agentId, string instance) => agentId + "/" + instance;

    public bool TryGet(string agentId, out Revocation? revocation) => _revoked.TryGetValue(agentId, out revocation);

    /// <summary>Whether "not revoked" can be trusted now: always without Redis; with Redis, while
    /// the last complete read of the revocations started less than the maximum age ago.</summary>
    public bool Confirmed => _redis is null || (Volatile.Read(ref _everConfirmed) && _time.GetElapsedTime(Volatile.Read(ref _confirmedAt)) < MaxAge);

    /// <summary>Why <paramref name="agentId"/> (or its <paramref name="instance"/>) may not be
    /// served now: revoked, or revocations that cannot be confirmed. Null when it may.</summary>
    public Refusal? Refuse(string agentId, string? instance)
    {
        if (_revoked.TryGetValue(agentId, out var revoked)
            || (instance is not null && _revoked.TryGetValue(InstanceKey(agentId, instance), out revoked)))
        {
            return Refusal.AgentRevoked($"agent '{revoked.AgentId}' was revoked at {revoked.At:O}");
        }

        return Confirmed ? null : UnconfirmedRefusal;
    }

    private static readonly Refusal UnconfirmedRefusal = Refusal.RevocationsUnconfirmed(
        "this replica could not read the revocation list recently enough to know the agent is not revoked; try again shortly");

    private TimeSpan MaxAge => _config.Current.Admin.RevocationsMaxAge;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (_redis is not null)
        {
            try
            {
                await _redis.SubscribeAsync(Channel, OnAnnounced);
            }
            catch (Exception ex) when (_redis.IsUnavailable(ex))
            {
                // Started while Redis is away: the reads below confirm nothing until it is back,
                // and the client subscribes again when it reconnects.
                Log.ReadFailed(_logger, ex.GetType().Name);
            }

            await ReconcileAsync();
        }
        else if (_file is not null && File.Exists(_file))
        {
            foreach (var line in await File.ReadAllLinesAsync(_file, cancellationToken))
            {
                if (Parse(line) is { } revocation)
                {
                    _revoked[revocation.AgentId] = revocation;
                }
            }
        }

        if (_redis is null && _file is null)
        {
            Log.NotDurable(_logger);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        StopTimers();
        return Task.CompletedTask;
    }

    /// <summary>Revokes <paramref name="agentId"/> everywhere, from now on. Returns the revocation
    /// in force and whether this call made it (false when it was already revoked and stored).
    /// Throws <see cref="RevocationNotStoredException"/> when it could not be stored (Redis or the
    /// file unreachable): it is then enforced on this replica only, and the caller must not report
    /// success.</summary>
    public async Task<(Revocation Revocation, bool Made)> RevokeAsync(string agentId, string by, string? reason)
    {
        if (_revoked.TryGetValue(agentId, out var known) && !_unstored.ContainsKey(agentId))
        {
            return (known, false);
        }

        var revocation = known ?? new Revocation(agentId, _time.GetUtcNow(), by, reason);
        var json = JsonSerializer.Serialize(revocation, RevocationJsonContext.Default.Revocation);
        try
        {
            if (_redis is not null)
            {
                // Written before it is announced: a replica that hears of it can read it. Bounded:
                // an operator waits for an answer, not for the client's reconnection. Not cut short
                // by the operator going away: once asked, it is stored or enforced here.
                await _redis.SetAsync(HashKey, agentId, json).WaitAsync(MaxAge, _time, CancellationToken.None);
            }
            else if (_file is not null)
            {
                await File.AppendAllTextAsync(_file, json + "\n", CancellationToken.None);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or TimeoutException || (_redis?.IsUnavailable(ex) ?? false))
        {
            // Enforced here at once all the same; the next revoke of this agent writes again.
            _unstored[agentId] = 0;
            await ApplyAsync(revocation);
            Log.NotStored(_logger, agentId, ex.GetType().Name);
            throw new RevocationNotStoredException($"the revocation of '{agentId}' could not be stored ({(_redis is null ? "the revocations file" : "Redis")} unavailable); it holds on this replica only until it is", ex);
        }

        _unstored.TryRemove(agentId, out _);
        if (_redis is not null)
        {
            try
            {
                await _redis.PublishAsync(Channel, agentId);
            }
            catch (Exception ex) when (_redis.IsUnavailable(ex))
            {
                // Stored: every replica finds it at its next read of the hash.
                Log.ReadFailed(_logger, ex.GetType().Name);
            }
        }

        await ApplyAsync(revocation);
        return (revocation, true);
    }

    public void Dispose() => StopTimers();

    private void StopTimers()
    {
        lock (_timers)
        {
            _stopped = true;
            _reconcile?.Dispose();
            _expiry?.Dispose();
        }
    }

    private void OnAnnounced(string agentId) => _ = OnAnnouncedAsync(agentId);

    private async Task OnAnnouncedAsync(string agentId)
    {
        try
        {
            if (await _redis!.GetAsync(HashKey, agentId) is { } json && Parse(json) is { } revocation)
            {
                await ApplyAsync(revocation);
            }
        }
        catch (Exception ex) when (_redis!.IsUnavailable(ex))
        {
            Log.ReadFailed(_logger, ex.GetType().Name);
        }
    }

    /// <summary>Reads the whole hash, applies what it brings, and only then counts the list as
    /// confirmed as of the moment the read started. Then schedules the next read.</summary>
    private async Task ReconcileAsync()
    {
        // One read at a time: a read that hangs must not pile up others behind it.
        if (Interlocked.Exchange(ref _reading, 1) != 0)
        {
            return;
        }

        var maxAge = MaxAge;
        try
        {
            var started = _time.GetTimestamp();
            var missed = new List<Revocation>();
            foreach (var (agentId, json) in await _redis!.GetAllAsync(HashKey).WaitAsync(maxAge, _time))
            {
                _unstored.TryRemove(agentId, out _);
                if (!_revoked.ContainsKey(agentId) && Parse(json) is { } revocation && Take(revocation))
                {
                    missed.Add(revocation);
                }
            }

            // Everything the read brought is in force before the list counts as confirmed.
            Confirm(started, maxAge);
            foreach (var revocation in missed)
            {
                await PurgeAsync(revocation);
            }
        }
        catch (Exception ex) when (ex is TimeoutException || _redis!.IsUnavailable(ex))
        {
            Log.ReadFailed(_logger, ex.GetType().Name);
        }
        finally
        {
            Volatile.Write(ref _reading, 0);
            ScheduleRead(maxAge);
        }
    }

    private void Confirm(long startedAt, TimeSpan maxAge)
    {
        Volatile.Write(ref _confirmedAt, startedAt);
        Volatile.Write(ref _everConfirmed, true);

        // When the list will be too old unless another read confirms it first. A read that
        // started too long ago (it hung) confirms nothing: the list stays unconfirmed.
        var due = maxAge - _time.GetElapsedTime(startedAt);
        if (due <= TimeSpan.Zero)
        {
            return;
        }

        if (Interlocked.Exchange(ref _unconfirmedRaised, 0) != 0)
        {
            Log.Confirmed(_logger);
        }

        lock (_timers)
        {
            if (!_stopped)
            {
                _expiry ??= _time.CreateTimer(static state => ((RevocationStore)state!).OnMaxAge(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
                _expiry.Change(due, Timeout.InfiniteTimeSpan);
            }
        }
    }

    private void ScheduleRead(TimeSpan maxAge)
    {
        // At least three reads per maximum age: one slow or failed read does not make it lapse.
        var interval = maxAge / 3 < ReconcileInterval ? maxAge / 3 : ReconcileInterval;
        lock (_timers)
        {
            if (!_stopped)
            {
                _reconcile ??= _time.CreateTimer(static state => _ = ((RevocationStore)state!).ReconcileAsync(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
                _reconcile.Change(interval, Timeout.InfiniteTimeSpan);
            }
        }
    }

    private void OnMaxAge()
    {
        // A read that confirmed the list since this was armed has moved the deadline on.
        if (Confirmed || Interlocked.Exchange(ref _unconfirmedRaised, 1) != 0)
        {
            return;
        }

        Log.Unconfirmed(_logger, MaxAge);
        Unconfirmed?.Invoke();
    }

    private async Task ApplyAsync(Revocation revocation)
    {
        if (Take(revocation))
        {
            await PurgeAsync(revocation);
        }
    }

    /// <summary>Puts a revocation in force here: refused from now on, open sessions ended.</summary>
    private bool Take(Revocation revocation)
    {
        if (!_revoked.TryAdd(revocation.AgentId, revocation))
        {
            return false;
        }

        GatewayTelemetry.Revocations.Add(1);
        Log.Revoked(_logger, revocation.AgentId, revocation.By, revocation.Reason ?? "");
        Applied?.Invoke(revocation);
        return true;
    }

    private async Task PurgeAsync(Revocation revocation)
    {
        // Every replica applies every revocation and purges what it cached itself, under any
        // revision: from its own memory, and the shared entries it wrote or read.
        try
        {
            await _agentTokens.ForgetAgentAsync(revocation.AgentId, CancellationToken.None);
        }
        catch (Exception ex) when (ex is TimeoutException || (_redis?.IsUnavailable(ex) ?? false))
        {
            Log.ReadFailed(_logger, ex.GetType().Name);
        }
    }

    private static Revocation? Parse(string json)
    {
        try
        {
            return JsonSerializer.Deserialize(json, RevocationJsonContext.Default.Revocation);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 2701, Level = LogLevel.Warning, Message = "Agent {AgentId} revoked by {RevokedBy} ({Reason}); every request from it is refused and its cached tokens are purged")]
        public static partial void Revoked(ILogger logger, string agentId, string revokedBy, string reason);

        [LoggerMessage(EventId = 2702, Level = LogLevel.Warning, Message = "Revocations could not be read from Redis ({Reason}); those already known stay in force, and agents are refused once the last read is older than Gateway:Admin:RevocationsMaxAge")]
        public static partial void ReadFailed(ILogger logger, string reason);

        [LoggerMessage(EventId = 2703, Level = LogLevel.Warning, Message = "Revocations are kept in memory only: set Gateway:Redis or Gateway:Admin:RevocationsFile so they survive a restart")]
        public static partial void NotDurable(ILogger logger);

        [LoggerMessage(EventId = 2704, Level = LogLevel.Error, Message = "Revocations not read from Redis for {MaxAge}: every agent request is refused and open sessions are ended until a read succeeds")]
        public static partial void Unconfirmed(ILogger logger, TimeSpan maxAge);

        [LoggerMessage(EventId = 2705, Level = LogLevel.Information, Message = "Revocations read from Redis: agents are served again")]
        public static partial void Confirmed(ILogger logger);

        [LoggerMessage(EventId = 2706, Level = LogLevel.Error, Message = "The revocation of {AgentId} could not be stored ({Reason}); it is enforced on this replica only and the operator is told it failed")]
        public static partial void NotStored(ILogger logger, string agentId, string reason);
    }
}

/// <summary>A revocation could not be stored where every replica (or the next start) finds it.</summary>
public sealed class RevocationNotStoredException(string message, Exception inner) : Exception(message, inner);

[System.Text.Json.Serialization.JsonSerializable(typeof(Revocation))]
internal sealed partial class RevocationJsonContext : System.Text.Json.Serialization.JsonSerializerContext;
