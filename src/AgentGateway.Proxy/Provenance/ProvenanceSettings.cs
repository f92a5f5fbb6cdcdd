using AgentGateway.Configuration;

namespace AgentGateway.Proxy.Provenance;

// These records are bound from configuration and then validated and compiled into a
// GatewayRevision; nothing on the request path reads them directly. No array here has a non-empty
// default: the configuration binder appends to an existing array, so a default of [A, B] plus an
// operator's [C] would silently allow A, B and C. Defaults for lists are applied when compiled.

/// <summary><c>Gateway:Provenance</c>: the signed assertion routes with <c>Metadata:Provenance = true</c>
/// send upstream, and the key that signs it.</summary>
[Setting("The signed assertion routes with Metadata:Provenance = true send upstream; keys published at /.well-known/jwks.json.")]
public sealed record ProvenanceSettings
{
    /// <summary>Secret reference to a PEM private key (EC P-256 or RSA). Absent: a key generated at
    /// start — fine for one replica; replicas behind one load balancer need a shared key.</summary>
    [Setting("PEM EC P-256 or RSA private key. Absent: generated per process (one replica only).", Format = SettingFormat.SecretReference)]
    public string? SigningKey { get; init; }

    /// <summary>Secret references to keys rotated out: still published, no longer signing.</summary>
    [Setting("Rotated-out keys: still published, no longer signing.", Format = SettingFormat.SecretReference)]
    public string[] PreviousKeys { get; init; } = [];

    [Setting(Format = SettingFormat.HeaderName)]
    public string Header { get; init; } = "AgentGateway-Provenance";

    /// <summary>The assertions' <c>iss</c>.</summary>
    public string Issuer { get; init; } = "agentgateway";

    public TimeSpan Lifetime { get; init; } = TimeSpan.FromMinutes(1);
}
