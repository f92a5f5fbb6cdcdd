using Microsoft.Extensions.Caching.Hybrid;
using Microsoft.Extensions.Logging;

namespace AgentGateway.Credentials.Caching;

/// <summary>
/// Which cache entries hold a token obtained for one agent alone (on-behalf-of tokens), so that
/// revoking or expiring the agent purges them from both cache levels.
/// </summary>
/// <remarks>
/// It lives as long as the process, not a configuration revision: a token cached under an earlier
/// revision is still in the caches after a reload and must still be found. Each replica records
/// what it stored itself — its own memory, and the shared entries it wrote or read back — and a
/// revocation reaches every replica, so together they purge everything. Entries leave at their
/// token's use-by time (after which neither level serves it), and the index is bounded: when it is
/// full a token is served to its request but not cached, so no cached token is ever out of reach
/// of a purge.
/// </remarks>
public sealed partial class AgentTokenIndex
{
    /// <summary>Entries kept at most: one per (agent, user, credential) with a live token.</summary>
    public const int DefaultCapacity = 100_000;

    /// <summary>How often entries past their use-by time are swept out; and, while the index is
    /// full, how often a sweep is tried at most (a sweep walks every entry).</summary>
    private static readonly TimeSpan SweepInterval = TimeSpan.FromMinutes(1);
    private static readonly TimeSpan FullSweepInterval = TimeSpan.FromSeconds(1);

    private readonly Lock _lock = new();
    private readonly Dictionary<string, Dictionary<string, DateTimeOffset>> _byAgent = new(StringComparer.OrdinalIgnoreCase);
    private readonly HybridCache _local;
    private readonly ISharedCacheStore _shared;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly int _capacity;
    private int _count;
    private DateTimeOffset _lastSweep;
    private bool _fullReported;

    public AgentTokenIndex(HybridCache local, ISharedCacheStore shared, TimeProvider time, ILogger<AgentTokenIndex> logger)
        : this(local, shared, time, logger, DefaultCapacity)
    {
    }

    internal AgentTokenIndex(HybridCache local, ISharedCacheStore shared, TimeProvider time, ILogger<AgentTokenIndex> logger, int capacity)
    {
        _local = local;
        _shared = shared;
        _time = time;
        _logger = logger;
        _capacity = capacity;
        _lastSweep = time.GetUtcNow();
    }

    /// <summary>Entries held now (expired ones included until the next sweep).</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _count;
            }
        }
    }

    /// <summary>Records that <paramref name="key"/> holds a token for <paramref name="agentId"/>
    /// alone until <paramref name="useUntil"/>. Called before the token is stored; false when the
    /// index is full, and the token must then not be stored.</summary>
    public bool TryRecord(string agentId, string key, DateTimeOffset useUntil)
    {
        var now = _time.GetUtcNow();
        lock (_lock)
        {
            if (now - _lastSweep >= SweepInterval)
            {
                SweepLocked(now);
            }

            if (_byAgent.TryGetValue(agentId, out var keys) && keys.TryGetValue(key, out var known))
            {
                keys[key] = useUntil > known ? useUntil : known;
                return true;
            }

            if (_count >= _capacity)
            {
                if (now - _lastSweep >= FullSweepInterval)
                {
                    SweepLocked(now);
                }

                if (_count >= _capacity)
                {
                    if (!_fullReported)
                    {
                        _fullReported = true;
                        Log.Full(_logger, _capacity);
                    }

                    return false;
                }
            }

            if (keys is null)
            {
                keys = new Dictionary<string, DateTimeOffset>(StringComparer.Ordinal);
                _byAgent[agentId] = keys;
            }

            keys[key] = useUntil;
            _count++;
            return true;
        }
    }

    /// <summary>The agent was revoked or expired: drops every token this replica cached for it
    /// alone, under any revision, from this process's memory and from the shared store.</summary>
    public async ValueTask ForgetAgentAsync(string agentId, CancellationToken cancellationToken)
    {
        Dictionary<string, DateTimeOffset>? keys;
        lock (_lock)
        {
            if (_byAgent.Remove(agentId, out keys))
            {
                _count -= keys.Count;
            }
        }

        if (keys is null)
        {
            return;
        }

        foreach (var key in keys.Keys)
        {
            await _local.RemoveAsync(key, cancellationToken);
            // Whatever this revision's sealing keys: a shared entry is removed by its name alone.
            if (_shared.IsAvailable)
            {
                await _shared.RemoveAsync(key);
            }
        }

        Log.Purged(_logger, agentId, keys.Count, _shared.IsAvailable);
    }

    private void SweepLocked(DateTimeOffset now)
    {
        _lastSweep = now;
        List<string>? emptied = null;
        foreach (var (agent, keys) in _byAgent)
        {
            var before = keys.Count;
            foreach (var (key, useUntil) in keys)
            {
                if (useUntil <= now)
                {
                    keys.Remove(key);
                }
            }

            _count -= before - keys.Count;
            if (keys.Count == 0)
            {
                (emptied ??= []).Add(agent);
            }
        }

        foreach (var agent in emptied ?? [])
        {
            _byAgent.Remove(agent);
        }

        if (_count < _capacity)
        {
            _fullReported = false;
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1205, Level = LogLevel.Warning, Message = "The index of per-agent cached tokens is full ({Capacity} entries): on-behalf-of tokens for new users are fetched per request and not cached until entries expire")]
        public static partial void Full(ILogger logger, int capacity);

        [LoggerMessage(EventId = 1206, Level = LogLevel.Information, Message = "Purged {Count} token(s) cached for agent {AgentId} alone (shared store reached: {SharedReached})")]
        public static partial void Purged(ILogger logger, string agentId, int count, bool sharedReached);
    }
}
