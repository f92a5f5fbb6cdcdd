namespace AgentGateway.Proxy.Inventory;

// These records are bound from configuration and then validated and compiled into a
// GatewayRevision; nothing on the request path reads them directly. No array here has a non-empty
// default: the configuration binder appends to an existing array, so a default of [A, B] plus an
// operator's [C] would silently allow A, B and C. Defaults for lists are applied when compiled.

/// <summary><c>Gateway:Admin</c>: the inventory and revocation API, on its own listener.</summary>
public sealed record AdminSettings
{
    /// <summary>Where the admin API listens (e.g. <c>http://127.0.0.1:9090</c>); absent means no admin API.
    /// Fixed for the process.</summary>
    public string? Urls { get; init; }

    /// <summary>The <c>Gateway:Inbound:Issuers</c> name whose tokens operators present.</summary>
    public string? Issuer { get; init; }

    /// <summary>The operators: values of that issuer's agent claim allowed to call the admin API.</summary>
    public string[] Subjects { get; init; } = [];

    /// <summary>Operators' tokens must be DPoP-bound, whatever their issuer requires.</summary>
    public bool RequireDpop { get; init; }

    /// <summary>The origins operators reach the admin API at, which a DPoP proof's <c>htu</c> must
    /// name. Absent: the admin listener's own scheme, address and port.</summary>
    public string[] PublicOrigins { get; init; } = [];

    /// <summary>Agents not seen for this long are flagged dormant in the inventory.</summary>
    public TimeSpan DormantAfter { get; init; } = TimeSpan.FromDays(7);

    /// <summary>Without Redis: a file revocations are appended to and read back at start.</summary>
    public string? RevocationsFile { get; init; }

    /// <summary>What just-in-time registered agents may be given, by template name.</summary>
    public Dictionary<string, AgentTemplateSettings> Templates { get; init; } = [];
}

/// <summary><c>Admin:Templates:{name}</c>: the most an ephemeral agent registered from it may get.</summary>
public sealed record AgentTemplateSettings
{
    /// <summary>Grants a registration may pick from.</summary>
    public string[] Grants { get; init; } = [];

    /// <summary>Issuers the agent's identities may come from.</summary>
    public string[] Issuers { get; init; } = [];

    /// <summary>The longest time to live a registration may ask for.</summary>
    public TimeSpan MaxTimeToLive { get; init; } = TimeSpan.FromHours(1);
}
