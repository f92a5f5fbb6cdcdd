using System.Collections.Concurrent;
using AgentGateway.Credentials;

namespace AgentGateway.Proxy.Inventory;

/// <summary>What this replica has seen each agent — and each instance of an agent class — do:
/// first and last seen, requests, hop credentials used by kind. Kept in memory per replica; the
/// inventory shows it beside the configuration. Instances idle past their class's timeout are forgotten.</summary>
public sealed class AgentActivity(TimeProvider time)
{
    private readonly ConcurrentDictionary<string, Entry> _agents = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentDictionary<(string Agent, string Instance), Entry> _instances = new();

    public void Seen(string agentId, string? instance)
    {
        var now = time.GetUtcNow().UtcTicks;
        _agents.GetOrAdd(agentId, static (_, t) => new Entry(t), now).Touch(now);
        if (instance is not null)
        {
            _instances.GetOrAdd((agentId, instance), static (_, t) => new Entry(t), now).Touch(now);
        }
    }

    public void Used(string agentId, string? instance, CredentialKind kind)
    {
        var now = time.GetUtcNow().UtcTicks;
        _agents.GetOrAdd(agentId, static (_, t) => new Entry(t), now).Uses.AddOrUpdate(kind, 1, static (_, n) => n + 1);
        if (instance is not null)
        {
            _instances.GetOrAdd((agentId, instance), static (_, t) => new Entry(t), now).Uses.AddOrUpdate(kind, 1, static (_, n) => n + 1);
        }
    }

    public ActivityView Of(string agentId) =>
        _agents.TryGetValue(agentId, out var entry) ? entry.View(agentId) : new ActivityView(agentId, null, null, 0, new Dictionary<CredentialKind, long>());

    /// <summary>The instances of a class seen within <paramref name="idleTimeout"/>; older ones are forgotten.</summary>
    public IReadOnlyList<ActivityView> InstancesOf(string agentId, TimeSpan idleTimeout)
    {
        var cutoff = (time.GetUtcNow() - idleTimeout).UtcTicks;
        var result = new List<ActivityView>();
        foreach (var ((agent, instance), entry) in _instances)
        {
            if (!string.Equals(agent, agentId, StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            if (entry.LastSeenTicks < cutoff)
            {
                _instances.TryRemove((agent, instance), out _);
                continue;
            }

            result.Add(entry.View(instance));
        }

        return [.. result.OrderBy(v => v.Id, StringComparer.Ordinal)];
    }

    private sealed class Entry(long firstSeen)
    {
        private long _lastSeen = firstSeen;
        private long _requests;

        public long FirstSeenTicks { get; } = firstSeen;

        public long LastSeenTicks => Interlocked.Read(ref _lastSeen);

        public ConcurrentDictionary<CredentialKind, long> Uses { get; } = new();

        public void Touch(long now)
        {
            Interlocked.Exchange(ref _lastSeen, now);
            Interlocked.Increment(ref _requests);
        }

        public ActivityView View(string id) => new(
            id,
            new DateTimeOffset(FirstSeenTicks, TimeSpan.Zero),
            new DateTimeOffset(LastSeenTicks, TimeSpan.Zero),
            Interlocked.Read(ref _requests),
            Uses.ToDictionary());
    }
}

/// <summary>What was seen of one agent or instance.</summary>
public sealed record ActivityView(string Id, DateTimeOffset? FirstSeen, DateTimeOffset? LastSeen, long Requests, IReadOnlyDictionary<CredentialKind, long> Uses);
