using System.Collections.Frozen;
using AgentGateway.Proxy.Identity;

namespace AgentGateway.Proxy.Inventory;

/// <summary>The admin API's callers (an issuer and its allowed subjects) and the dormancy period.</summary>
public sealed record AdminOptions(string? Issuer, FrozenSet<string> Subjects, TimeSpan DormantAfter)
{
    public static AdminOptions None { get; } = new(null, FrozenSet<string>.Empty, TimeSpan.FromDays(7));

    /// <summary>Six seconds: a replica reads the list every two, so two slow or failed reads in a
    /// row are survived, and a replica cut off from Redis stops within six seconds.</summary>
    public static readonly TimeSpan DefaultRevocationsMaxAge = TimeSpan.FromSeconds(6);

    /// <summary>With Redis, how old the last read of the revocations may be before agents are refused.</summary>
    public TimeSpan RevocationsMaxAge { get; init; } = DefaultRevocationsMaxAge;

    /// <summary>Templates for just-in-time registration, by name.</summary>
    public FrozenDictionary<string, AgentTemplate> Templates { get; init; } = FrozenDictionary<string, AgentTemplate>.Empty;

    /// <summary>Operators must present DPoP-bound tokens.</summary>
    public bool RequireDpop { get; init; }

    /// <summary>Where operators reach the admin API: a DPoP proof's <c>htu</c> names one of these.</summary>
    public PublicOrigins PublicOrigins { get; init; } = PublicOrigins.Listener;
}

/// <summary>The most an ephemeral agent registered from this template may get.</summary>
public sealed record AgentTemplate(string Name, FrozenSet<string> Grants, FrozenSet<string> Issuers, TimeSpan MaxTimeToLive);
