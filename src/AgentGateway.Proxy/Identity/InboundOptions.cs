using System.Collections.Frozen;

namespace AgentGateway.Proxy.Identity;

/// <summary>The compiled <c>Gateway:Inbound</c> section: trusted issuers by their exact <c>iss</c>,
/// and how agents present the users they act for.</summary>
public sealed class InboundOptions(FrozenDictionary<string, TrustedIssuer> issuersByIss, int maxTokenBytes, DelegationOptions delegation)
{
    /// <summary>Client certificates and SPIFFE identities.</summary>
    public CertificateTrust Certificates { get; init; } = CertificateTrust.None;

    /// <summary>How far clocks may disagree: applied to every token's <c>exp</c>, <c>nbf</c> and
    /// <c>iat</c> — issuers' tokens (each issuer carries it) and JWT-SVIDs alike.</summary>
    public TimeSpan ClockSkew { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Agent tokens living longer than this are refused.</summary>
    public TimeSpan MaxTokenLifetime { get; init; } = TimeSpan.FromHours(1);

    /// <summary>Where agents reach the proxy listener: a DPoP proof's <c>htu</c> names one of these.</summary>
    public PublicOrigins PublicOrigins { get; init; } = PublicOrigins.Listener;

    /// <summary>The static-key header, or null when static keys are off (the default).</summary>
    public string? StaticKeyHeader { get; init; }

    public int MaxTokenBytes { get; } = maxTokenBytes;

    public IReadOnlyCollection<TrustedIssuer> Issuers => issuersByIss.Values;

    public DelegationOptions Delegation { get; } = delegation;

    /// <summary>Exact, case-sensitive match: <c>https://idp/</c> and <c>https://idp</c> are different issuers.</summary>
    public bool TryGetIssuer(string iss, out TrustedIssuer? issuer) => issuersByIss.TryGetValue(iss, out issuer);
}

/// <summary>The compiled <c>Gateway:Inbound:Delegation</c> section.</summary>
/// <param name="Header">Where the agent puts the user's access token. Always stripped before forwarding.</param>
/// <param name="Issuers">Names of the issuers whose tokens are accepted as users' tokens; empty turns delegation off.</param>
/// <param name="RequireAuthorizedParty">The user's token must have been issued to the agent itself.</param>
public sealed record DelegationOptions(string Header, FrozenSet<string> Issuers, bool RequireAuthorizedParty)
{
    public bool Enabled => Issuers.Count > 0;
}
