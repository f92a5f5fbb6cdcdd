using AgentGateway.Configuration;

namespace AgentGateway.Proxy.Inventory;

// These records are bound from configuration and then validated and compiled into a
// GatewayRevision; nothing on the request path reads them directly. No array here has a non-empty
// default: the configuration binder appends to an existing array, so a default of [A, B] plus an
// operator's [C] would silently allow A, B and C. Defaults for lists are applied when compiled.

/// <summary><c>Gateway:Admin</c>: the inventory and revocation API, on its own listener.</summary>
[Setting("The inventory and revocation API, on its own listener. Every call needs an access token from Issuer naming one of Subjects, proven by the same rules as agents' tokens (DPoP binding and proof, MaxTokenLifetime, TokenTypes, skew).")]
public sealed record AdminSettings
{
    /// <summary>Where the admin API listens (e.g. <c>http://127.0.0.1:9090</c>); absent means no admin API.
    /// Fixed for the process.</summary>
    [Setting("e.g. http://127.0.0.1:9090 (';'-separated). Absent: no admin API. Fixed for the process.")]
    public string? Urls { get; init; }

    /// <summary>The <c>Gateway:Inbound:Issuers</c> name whose tokens operators present.</summary>
    [Setting("A Gateway:Inbound:Issuers name; required with Urls.")]
    public string? Issuer { get; init; }

    /// <summary>The operators: values of that issuer's agent claim allowed to call the admin API.</summary>
    [Setting("The operators: values of the issuer's agent claim; at least one with Urls.", MinLength = 1)]
    public string[] Subjects { get; init; } = [];

    /// <summary>Operators' tokens must be DPoP-bound, whatever their issuer requires.</summary>
    [Setting("Operators must present DPoP-bound tokens with a proof, whatever their issuer requires.")]
    public bool RequireDpop { get; init; }

    /// <summary>The origins operators reach the admin API at, which a DPoP proof's <c>htu</c> must
    /// name. Absent: the admin listener's own scheme, address and port.</summary>
    [Setting("Origins operators reach the admin API at, which a DPoP proof's htu must name. Absent: the admin listener's own scheme, local address and port.", Pattern = @"^[Hh][Tt][Tt][Pp][Ss]?://[^/?#@]+/?$")]
    public string[] PublicOrigins { get; init; } = [];

    /// <summary>Agents not seen for this long are flagged dormant in the inventory.</summary>
    [Setting("Agents not seen for this long are flagged dormant.")]
    public TimeSpan DormantAfter { get; init; } = TimeSpan.FromDays(7);

    /// <summary>Without Redis: a file revocations are appended to and read back at start.</summary>
    [Setting("Without Redis: revocations are appended here and read back at start, so they survive a restart.")]
    public string? RevocationsFile { get; init; }

    /// <summary>With Redis: how old the revocation list a replica last read may be before it stops
    /// treating agents as not revoked (503 <c>revocations-unconfirmed</c>, <c>/readyz</c> fails,
    /// open sessions end) until a read succeeds.</summary>
    [Setting("With Redis: how old the revocation list a replica last read may be; past it, agent requests get 503 revocations-unconfirmed, /readyz fails and open sessions end until Redis is read again. Between 00:00:01 and 00:05:00.")]
    public TimeSpan RevocationsMaxAge { get; init; } = AdminOptions.DefaultRevocationsMaxAge;

    /// <summary>What just-in-time registered agents may be given, by template name.</summary>
    [Setting("What just-in-time registered (ephemeral) agents may get, by template name (POST /admin/agents).")]
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
