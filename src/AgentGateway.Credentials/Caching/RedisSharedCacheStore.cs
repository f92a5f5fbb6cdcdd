using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace AgentGateway.Credentials.Caching;

/// <summary>
/// The shared cache level in Redis. Every operation is bounded by <see cref="OperationTimeout"/>;
/// a failure or timeout opens a breaker for <see cref="BreakDuration"/>, during which the broker
/// does not touch Redis at all (no request waits on a dead or slow Redis), and after which the
/// next operation tries again — so a Redis that comes back is used again without a restart.
/// </summary>
public sealed partial class RedisSharedCacheStore : ISharedCacheStore
{
    /// <summary>How long one Redis command may take before the store is treated as unavailable.
    /// Well above a healthy round trip on a LAN, well below what an agent would notice.</summary>
    public static readonly TimeSpan OperationTimeout = TimeSpan.FromMilliseconds(500);

    /// <summary>How long the store stays bypassed after a failure.</summary>
    public static readonly TimeSpan BreakDuration = TimeSpan.FromSeconds(2);

    private const string LeaseSuffix = ":lease";

    // Deletes the lease only if this holder still owns it (it may have lapsed and been retaken).
    private static readonly LuaScript ReleaseScript = LuaScript.Prepare(
        "if redis.call('get', @key) == @holder then return redis.call('del', @key) else return 0 end");

    private readonly IConnectionMultiplexer _redis;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private long _bypassUntilTicks;
    private int _broken;

    public RedisSharedCacheStore(IConnectionMultiplexer redis, TimeProvider time, ILogger<RedisSharedCacheStore> logger)
    {
        _redis = redis;
        _time = time;
        _logger = logger;
        // A dropped connection is seen here first (before any operation fails), so operators learn
        // of it — and of the recovery — even while every request is served from process memory.
        redis.ConnectionFailed += (_, e) =>
        {
            if (e.ConnectionType == ConnectionType.Interactive && Interlocked.Exchange(ref _broken, 1) == 0)
            {
                Log.StoreUnavailable(_logger, e.FailureType.ToString(), BreakDuration.TotalSeconds);
            }
        };
        redis.ConnectionRestored += (_, e) =>
        {
            if (e.ConnectionType == ConnectionType.Interactive)
            {
                Recovered();
            }
        };
    }

    public bool IsAvailable => _redis.IsConnected && _time.GetUtcNow().UtcTicks >= Volatile.Read(ref _bypassUntilTicks);

    public async ValueTask<byte[]?> GetAsync(string key)
    {
        try
        {
            var value = await _redis.GetDatabase().StringGetAsync(key).WaitAsync(OperationTimeout);
            Recovered();
            return value.IsNull ? null : (byte[]?)value;
        }
        catch (Exception ex) when (IsStoreFailure(ex))
        {
            Trip(ex);
            return null;
        }
    }

    public async ValueTask SetAsync(string key, byte[] value, TimeSpan timeToLive)
    {
        try
        {
            await _redis.GetDatabase().StringSetAsync(key, value, timeToLive).WaitAsync(OperationTimeout);
            Recovered();
        }
        catch (Exception ex) when (IsStoreFailure(ex))
        {
            Trip(ex);
        }
    }

    public async ValueTask RemoveAsync(string key)
    {
        try
        {
            await _redis.GetDatabase().KeyDeleteAsync(key).WaitAsync(OperationTimeout);
            Recovered();
        }
        catch (Exception ex) when (IsStoreFailure(ex))
        {
            Trip(ex);
        }
    }

    public async ValueTask<SharedLease> TryAcquireLeaseAsync(string key, TimeSpan timeToLive)
    {
        var holder = Guid.NewGuid().ToString("N");
        try
        {
            var acquired = await _redis.GetDatabase()
                .StringSetAsync(key + LeaseSuffix, holder, timeToLive, When.NotExists)
                .WaitAsync(OperationTimeout);
            Recovered();
            return new SharedLease(acquired ? LeaseOutcome.Acquired : LeaseOutcome.HeldElsewhere, key, holder);
        }
        catch (Exception ex) when (IsStoreFailure(ex))
        {
            Trip(ex);
            return new SharedLease(LeaseOutcome.Unavailable, key, null);
        }
    }

    public async ValueTask ReleaseLeaseAsync(SharedLease lease)
    {
        if (lease.Outcome != LeaseOutcome.Acquired)
        {
            return;
        }

        try
        {
            await _redis.GetDatabase()
                .ScriptEvaluateAsync(ReleaseScript, new { key = (RedisKey)(lease.Key + LeaseSuffix), holder = lease.Holder })
                .WaitAsync(OperationTimeout);
        }
        catch (Exception ex) when (IsStoreFailure(ex))
        {
            // The lease lapses by itself; other replicas wait at most its lifetime.
            Trip(ex);
        }
    }

    private static bool IsStoreFailure(Exception ex) => ex is RedisException or TimeoutException or ObjectDisposedException;

    private void Trip(Exception ex)
    {
        Volatile.Write(ref _bypassUntilTicks, (_time.GetUtcNow() + BreakDuration).UtcTicks);
        if (Interlocked.Exchange(ref _broken, 1) == 0)
        {
            // The exception type only: Redis messages can carry the connection string.
            Log.StoreUnavailable(_logger, ex.GetType().Name, BreakDuration.TotalSeconds);
        }
    }

    private void Recovered()
    {
        if (Volatile.Read(ref _broken) == 1 && Interlocked.Exchange(ref _broken, 0) == 1)
        {
            Log.StoreRecovered(_logger);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1201, Level = LogLevel.Warning, Message = "Redis is unavailable to the token cache ({ExceptionType}); tokens are fetched without it, retrying Redis in {BreakSeconds} s")]
        public static partial void StoreUnavailable(ILogger logger, string exceptionType, double breakSeconds);

        [LoggerMessage(EventId = 1202, Level = LogLevel.Information, Message = "Redis is reachable again; the token cache is shared across replicas once more")]
        public static partial void StoreRecovered(ILogger logger);
    }
}
