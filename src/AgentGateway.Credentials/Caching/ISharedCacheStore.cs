namespace AgentGateway.Credentials.Caching;

/// <summary>
/// The second cache level, shared by every replica (Redis), plus the short leases that make a
/// token fetch single-flight across replicas. It stores opaque bytes — sealing is the token
/// cache's job — and never throws: a store that fails or is slow answers "miss" or
/// <see cref="LeaseOutcome.Unavailable"/>, and the broker carries on without it.
/// </summary>
public interface ISharedCacheStore
{
    /// <summary>False while the store is known to be unreachable; callers then skip it entirely.</summary>
    bool IsAvailable { get; }

    ValueTask<byte[]?> GetAsync(string key);

    ValueTask SetAsync(string key, byte[] value, TimeSpan timeToLive);

    ValueTask RemoveAsync(string key);

    /// <summary>Tries to take the fetch lease for <paramref name="key"/>; it lapses by itself after
    /// <paramref name="timeToLive"/> if its holder dies.</summary>
    ValueTask<SharedLease> TryAcquireLeaseAsync(string key, TimeSpan timeToLive);

    ValueTask ReleaseLeaseAsync(SharedLease lease);
}

public enum LeaseOutcome
{
    /// <summary>This caller holds the lease and should fetch.</summary>
    Acquired,

    /// <summary>Another replica holds it and is fetching.</summary>
    HeldElsewhere,

    /// <summary>The store cannot be reached; fetch without it.</summary>
    Unavailable,
}

/// <param name="Key">The cache key the lease guards.</param>
/// <param name="Holder">A random value naming this holder, so only it can release the lease.</param>
public readonly record struct SharedLease(LeaseOutcome Outcome, string Key, string? Holder);

/// <summary>The store of a single replica: there is nothing to share.</summary>
public sealed class NoSharedCacheStore : ISharedCacheStore
{
    public static NoSharedCacheStore Instance { get; } = new();

    public bool IsAvailable => false;

    public ValueTask<byte[]?> GetAsync(string key) => ValueTask.FromResult<byte[]?>(null);

    public ValueTask SetAsync(string key, byte[] value, TimeSpan timeToLive) => ValueTask.CompletedTask;

    public ValueTask RemoveAsync(string key) => ValueTask.CompletedTask;

    public ValueTask<SharedLease> TryAcquireLeaseAsync(string key, TimeSpan timeToLive) =>
        ValueTask.FromResult(new SharedLease(LeaseOutcome.Unavailable, key, null));

    public ValueTask ReleaseLeaseAsync(SharedLease lease) => ValueTask.CompletedTask;
}
