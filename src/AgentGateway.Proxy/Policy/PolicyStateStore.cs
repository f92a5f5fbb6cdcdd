using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace AgentGateway.Proxy.Policy;

/// <summary>One earlier step of a task: the grant it used, where, and when.</summary>
public sealed record TaskStep(string Grant, string Route, DateTimeOffset At)
{
    public string Encode() => $"{At.ToUnixTimeMilliseconds()}|{Route}";

    public static TaskStep Decode(string grant, string value)
    {
        var bar = value.IndexOf('|', StringComparison.Ordinal);
        var at = bar > 0 && long.TryParse(value.AsSpan(0, bar), out var ms) ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : DateTimeOffset.UnixEpoch;
        return new TaskStep(grant, bar >= 0 ? value[(bar + 1)..] : value, at);
    }
}

/// <summary>An earlier step found in one of the histories a check looked in.</summary>
/// <param name="Scope">The index of the history (in the order the check named them).</param>
public sealed record HistoryHit(int Scope, TaskStep Step);

/// <summary>What a rate limit counts: one agent's requests under one grant (and, apart, what a
/// shadow grant would have counted). A value, so counting in process builds no string; its text,
/// the shared store's key, is <c>agent:grant</c> or <c>shadow:agent:grant</c>.</summary>
public readonly record struct RateKey(string AgentId, string Grant, bool Shadow = false)
{
    public override string ToString() => Shadow ? $"shadow:{AgentId}:{Grant}" : $"{AgentId}:{Grant}";
}

/// <summary>The answer to a rate-limit hit.</summary>
public readonly record struct RateOutcome(bool Allowed, TimeSpan RetryAfter);

/// <summary>The policy state replicas share: rate-limit counters and step histories.</summary>
public interface IPolicyStateStore
{
    /// <summary>Counts one request against <paramref name="key"/> in the fixed window containing <paramref name="now"/>.</summary>
    ValueTask<RateOutcome> HitAsync(RateKey key, RateLimit limit, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>
    /// Atomically, across all of <paramref name="scopes"/> (histories: an agent instance's, a
    /// task's): looks up which of <paramref name="earlier"/> grants any of them used before, and —
    /// unless one was — records <paramref name="step"/> in every one of them, each kept for
    /// <paramref name="ttl"/> after its latest step. Throws <see cref="PolicyStateUnavailableException"/>
    /// when the shared state cannot be read.
    /// </summary>
    ValueTask<IReadOnlyList<HistoryHit>> CheckAndRecordAsync(
        IReadOnlyList<string> scopes, TaskStep step, IReadOnlyCollection<string> earlier, TimeSpan ttl, CancellationToken cancellationToken);

    /// <summary>Claims <paramref name="key"/> for <paramref name="ttl"/>: true the first time, false
    /// while it is claimed (replay detection). Throws <see cref="PolicyStateUnavailableException"/>
    /// when the shared store cannot answer.</summary>
    ValueTask<bool> TryClaimAsync(string key, TimeSpan ttl, CancellationToken cancellationToken);
}

public sealed class PolicyStateUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>State in this process only: one replica, or the fallback for rate limits while Redis is away.</summary>
public sealed class InProcessPolicyStateStore(TimeProvider time) : IPolicyStateStore
{
    private readonly ConcurrentDictionary<RateKey, (long Window, int Count)> _counters = new();
    private readonly ConcurrentDictionary<string, TaskHistory> _tasks = new(StringComparer.Ordinal);

    // One lock for every check-and-record and for sweeping histories: a step spans several
    // histories, two steps must not interleave between check and record, and a history must not be
    // swept between being looked up and being written.
    private readonly Lock _histories = new();
    private readonly ConcurrentDictionary<string, DateTimeOffset> _claims = new(StringComparer.Ordinal);
    private int _operations;

    public ValueTask<bool> TryClaimAsync(string key, TimeSpan ttl, CancellationToken cancellationToken)
    {
        Sweep();
        var now = time.GetUtcNow();
        var claimed = false;
        _claims.AddOrUpdate(
            key,
            _ =>
            {
                claimed = true;
                return now + ttl;
            },
            (_, until) =>
            {
                if (until > now)
                {
                    return until;
                }

                claimed = true;
                return now + ttl;
            });
        return ValueTask.FromResult(claimed);
    }

    public ValueTask<RateOutcome> HitAsync(RateKey key, RateLimit limit, DateTimeOffset now, CancellationToken cancellationToken)
    {
        Sweep();
        var window = now.ToUnixTimeMilliseconds() / (long)limit.Window.TotalMilliseconds;
        // Static callbacks with the window as their argument: no closure per request.
        var entry = _counters.AddOrUpdate(
            key,
            static (_, window) => (window, 1),
            static (_, old, window) => old.Window == window ? (window, old.Count + 1) : (window, 1),
            window);
        var windowEnd = DateTimeOffset.FromUnixTimeMilliseconds((window + 1) * (long)limit.Window.TotalMilliseconds);
        return ValueTask.FromResult(new RateOutcome(entry.Count <= limit.Requests, windowEnd - now));
    }

    public ValueTask<IReadOnlyList<HistoryHit>> CheckAndRecordAsync(
        IReadOnlyList<string> scopes, TaskStep step, IReadOnlyCollection<string> earlier, TimeSpan ttl, CancellationToken cancellationToken)
    {
        Sweep();
        lock (_histories)
        {
            var histories = scopes.Select(scope => _tasks.GetOrAdd(scope, static _ => new TaskHistory())).ToList();
            var now = time.GetUtcNow();
            var hits = new List<HistoryHit>();
            for (var i = 0; i < histories.Count; i++)
            {
                var history = histories[i];
                if (history.ExpiresAt < now)
                {
                    history.Steps.Clear();
                }

                foreach (var name in earlier)
                {
                    if (history.Steps.TryGetValue(name, out var found))
                    {
                        hits.Add(new HistoryHit(i, found));
                    }
                }
            }

            if (hits.Count == 0)
            {
                foreach (var history in histories)
                {
                    history.Steps.TryAdd(step.Grant, step);
                    history.ExpiresAt = now + ttl;
                }
            }

            return ValueTask.FromResult<IReadOnlyList<HistoryHit>>(hits);
        }
    }

    /// <summary>Drops expired entries now and then, so idle agents and old tasks do not accumulate.</summary>
    private void Sweep()
    {
        if (Interlocked.Increment(ref _operations) % 4096 != 0)
        {
            return;
        }

        var now = time.GetUtcNow();
        lock (_histories)
        {
            foreach (var (key, history) in _tasks)
            {
                if (history.ExpiresAt < now)
                {
                    _tasks.TryRemove(key, out _);
                }
            }
        }

        foreach (var (key, until) in _claims)
        {
            if (until < now)
            {
                _claims.TryRemove(key, out _);
            }
        }

        // Counters of past windows are dead weight; a fresh window recreates its entry.
        if (_counters.Count > 100_000)
        {
            _counters.Clear();
        }
    }

    private sealed class TaskHistory
    {
        public Dictionary<string, TaskStep> Steps { get; } = new(StringComparer.OrdinalIgnoreCase);

        public DateTimeOffset ExpiresAt { get; set; }
    }
}

/// <summary>
/// State every replica shares, in Redis. Rate limits fall back to this process's counters while
/// Redis is unreachable (the limit then holds per replica, and the fallback is logged); task
/// histories do not — a separation rule that cannot be checked refuses (fail closed).
/// </summary>
public sealed partial class RedisPolicyStateStore(
    IConnectionMultiplexer redis, InProcessPolicyStateStore fallback, ILogger<RedisPolicyStateStore> logger) : IPolicyStateStore
{
    private static readonly TimeSpan CommandBudget = TimeSpan.FromMilliseconds(500);

    // KEYS: the histories; ARGV: grant, step, ttl ms, earlier grant names…
    // Returns (history index, grant, step) triples of what was found; records only if nothing was.
    private const string CheckAndRecordScript = """
        local hits = {}
        for k = 1, #KEYS do
          for i = 4, #ARGV do
            local v = redis.call('HGET', KEYS[k], ARGV[i])
            if v then
              table.insert(hits, k - 1); table.insert(hits, ARGV[i]); table.insert(hits, v)
            end
          end
        end
        if #hits == 0 then
          for k = 1, #KEYS do
            redis.call('HSETNX', KEYS[k], ARGV[1], ARGV[2])
            redis.call('PEXPIRE', KEYS[k], ARGV[3])
          end
        end
        return hits
        """;

    public async ValueTask<RateOutcome> HitAsync(RateKey key, RateLimit limit, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var windowMs = (long)limit.Window.TotalMilliseconds;
        var window = now.ToUnixTimeMilliseconds() / windowMs;
        var windowEnd = DateTimeOffset.FromUnixTimeMilliseconds((window + 1) * windowMs);
        var redisKey = $"agw:rate:{key}:{window}";
        try
        {
            var database = redis.GetDatabase();
            var count = await database.StringIncrementAsync(redisKey).WaitAsync(CommandBudget, cancellationToken);
            if (count == 1)
            {
                // The window's key outlives the window a little, never much.
                _ = database.KeyExpireAsync(redisKey, limit.Window + TimeSpan.FromSeconds(5), flags: CommandFlags.FireAndForget);
            }

            return new RateOutcome(count <= limit.Requests, windowEnd - now);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            Log.RateFallback(logger, ex.GetType().Name);
            return await fallback.HitAsync(key, limit, now, cancellationToken);
        }
    }

    public async ValueTask<bool> TryClaimAsync(string key, TimeSpan ttl, CancellationToken cancellationToken)
    {
        try
        {
            return await redis.GetDatabase().StringSetAsync("agw:" + key, 1, ttl, When.NotExists).WaitAsync(CommandBudget, cancellationToken);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            Log.ClaimsUnavailable(logger, ex.GetType().Name);
            throw new PolicyStateUnavailableException("the shared replay store (Redis) is unreachable", ex);
        }
    }

    public async ValueTask<IReadOnlyList<HistoryHit>> CheckAndRecordAsync(
        IReadOnlyList<string> scopes, TaskStep step, IReadOnlyCollection<string> earlier, TimeSpan ttl, CancellationToken cancellationToken)
    {
        var args = new List<RedisValue> { step.Grant, step.Encode(), (long)ttl.TotalMilliseconds };
        args.AddRange(earlier.Select(n => (RedisValue)n));
        RedisResult result;
        try
        {
            result = await redis.GetDatabase().ScriptEvaluateAsync(CheckAndRecordScript, [.. scopes.Select(s => (RedisKey)("agw:" + s))], [.. args])
                .WaitAsync(CommandBudget, cancellationToken);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            Log.TaskStateUnavailable(logger, ex.GetType().Name);
            throw new PolicyStateUnavailableException("the shared step history (Redis) is unreachable", ex);
        }

        var values = (RedisResult[])result!;
        var hits = new List<HistoryHit>();
        for (var i = 0; i + 2 < values.Length; i += 3)
        {
            hits.Add(new HistoryHit((int)values[i], TaskStep.Decode((string)values[i + 1]!, (string)values[i + 2]!)));
        }

        return hits;
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 2401, Level = LogLevel.Warning, Message = "Redis is unavailable for rate limits ({Reason}); counting in this process until it is back")]
        public static partial void RateFallback(ILogger logger, string reason);

        [LoggerMessage(EventId = 2402, Level = LogLevel.Warning, Message = "Redis is unavailable for step histories ({Reason}); requests that a separation rule must check are refused")]
        public static partial void TaskStateUnavailable(ILogger logger, string reason);

        [LoggerMessage(EventId = 2403, Level = LogLevel.Warning, Message = "Redis is unavailable for replay detection ({Reason}); DPoP-bound requests are refused")]
        public static partial void ClaimsUnavailable(ILogger logger, string reason);
    }
}
