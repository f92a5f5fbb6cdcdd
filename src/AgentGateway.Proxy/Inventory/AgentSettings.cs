using AgentGateway.Configuration;

namespace AgentGateway.Proxy.Inventory;

// These records are bound from configuration and then validated and compiled into a
// GatewayRevision; nothing on the request path reads them directly. No array here has a non-empty
// default: the configuration binder appends to an existing array, so a default of [A, B] plus an
// operator's [C] would silently allow A, B and C. Defaults for lists are applied when compiled.

/// <summary><c>Gateway:Agents:{id}</c>: one agent of the inventory.</summary>
public sealed record AgentSettings
{
    [Setting(Required = true, MinLength = 1)]
    public string? Owner { get; init; }

    public string? Description { get; init; }

    /// <summary>The identities that prove to be this agent.</summary>
    [Setting(MinItems = 1)]
    public AgentIdentitySettings[] Identities { get; init; } = [];

    /// <summary>After this instant the agent is refused (401 agent-expired).</summary>
    public DateTimeOffset? ExpiresAt { get; init; }

    /// <summary>This agent's tokens must be DPoP-bound, whatever its issuer requires.</summary>
    [Setting("This agent's tokens must be DPoP-bound, whatever its issuer requires.")]
    public bool RequireDpop { get; init; }

    /// <summary>Makes this entry a class: every identity matching it is an instance of this agent,
    /// tracked (and revocable) on its own.</summary>
    public AgentClassSettings? Class { get; init; }

    /// <summary>Names of <c>Gateway:Grants</c> entries.</summary>
    public string[] Grants { get; init; } = [];
}

/// <summary><c>Agents:{id}:Class</c>: which identities are instances of the agent: tokens of
/// <see cref="Issuer"/> whose agent claim matches <see cref="SubjectPattern"/>, or SPIFFE IDs under
/// <see cref="SpiffePrefix"/>.</summary>
[Setting("Makes the entry a class: every matching identity is an instance, tracked and revocable on its own. Issuer + SubjectPattern, or SpiffePrefix.")]
public sealed record AgentClassSettings
{
    public string? Issuer { get; init; }

    /// <summary>A pattern with <c>*</c>, e.g. <c>worker-*</c>.</summary>
    [Setting("With '*', narrower than '*' alone.")]
    public string? SubjectPattern { get; init; }

    /// <summary>e.g. <c>spiffe://example.org/workers/</c> (ends with '/').</summary>
    [Setting(Pattern = @"^spiffe://.+/$")]
    public string? SpiffePrefix { get; init; }

    /// <summary>An instance not seen for this long is forgotten.</summary>
    public TimeSpan InstanceIdleTimeout { get; init; } = TimeSpan.FromHours(1);
}

/// <summary>An identity that maps to an agent: a token from <see cref="Issuer"/> (a name under
/// <c>Gateway:Inbound:Issuers</c>) whose agent claim equals <see cref="Subject"/>.</summary>
[Setting("Exactly one kind: Issuer + Subject (a token's agent claim), Spiffe, CertificateThumbprint, CertificateSan or StaticKeySha256.")]
public sealed record AgentIdentitySettings
{
    public string? Issuer { get; init; }

    [Setting(MinLength = 1)]
    public string? Subject { get; init; }

    /// <summary>A SPIFFE ID (X509-SVID or JWT-SVID), e.g. <c>spiffe://example.org/agents/support</c>.</summary>
    [Setting(Pattern = @"^spiffe://")]
    public string? Spiffe { get; init; }

    /// <summary>A client certificate's SHA-256 thumbprint (hex).</summary>
    [Setting("SHA-256 of the certificate.", Pattern = @"^[0-9A-Fa-f:]{64,95}$")]
    public string? CertificateThumbprint { get; init; }

    /// <summary>A client certificate SAN, as <c>dns:…</c>, <c>uri:…</c>, <c>email:…</c> or <c>ip:…</c>.</summary>
    [Setting(Pattern = @"^(dns|uri|email|ip):.+")]
    public string? CertificateSan { get; init; }

    /// <summary>A static key's SHA-256 (hex), when <c>Inbound:StaticKeys:Enabled</c>.</summary>
    [Setting(Pattern = @"^[0-9a-fA-F]{64}$")]
    public string? StaticKeySha256 { get; init; }
}
