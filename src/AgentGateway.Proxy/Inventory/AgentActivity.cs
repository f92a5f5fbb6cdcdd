using System.Collections.Concurrent;
using AgentGateway.Credentials;

namespace AgentGateway.Proxy.Inventory;

/// <summary>What this replica has seen each agent do: when last, and how many hop credentials of
/// each kind it used. Kept in memory (per replica); the inventory shows it beside the configuration.</summary>
public sealed class AgentActivity(TimeProvider time)
{
    private readonly ConcurrentDictionary<string, Entry> _agents = new(StringComparer.OrdinalIgnoreCase);

    public void Seen(string agentId) => _agents.GetOrAdd(agentId, static _ => new Entry()).LastSeenTicks = time.GetUtcNow().UtcTicks;

    public void Used(string agentId, CredentialKind kind) =>
        _agents.GetOrAdd(agentId, static _ => new Entry()).Uses.AddOrUpdate(kind, 1, static (_, n) => n + 1);

    public (DateTimeOffset? LastSeen, IReadOnlyDictionary<CredentialKind, long> Uses) Of(string agentId) =>
        _agents.TryGetValue(agentId, out var entry)
            ? (entry.LastSeenTicks > 0 ? new DateTimeOffset(entry.LastSeenTicks, TimeSpan.Zero) : null, entry.Uses.ToDictionary())
            : (null, new Dictionary<CredentialKind, long>());

    private sealed class Entry
    {
        private long _lastSeen;

        public long LastSeenTicks
        {
            get => Interlocked.Read(ref _lastSeen);
            set => Interlocked.Exchange(ref _lastSeen, value);
        }

        public ConcurrentDictionary<CredentialKind, long> Uses { get; } = new();
    }
}
