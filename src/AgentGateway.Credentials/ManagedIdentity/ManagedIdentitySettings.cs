using AgentGateway.Configuration;

namespace AgentGateway.Credentials.ManagedIdentity;

/// <summary><c>Kind: ManagedIdentity</c>: the gateway's own cloud identity. Endpoints are found the
/// way each cloud's SDK finds them (and overridden the way the SDK allows: for Azure
/// <c>AZURE_POD_IDENTITY_AUTHORITY_HOST</c>, for GCP <c>GCE_METADATA_HOST</c>).</summary>
[Setting("The gateway's own cloud identity, from the platform's metadata endpoint as the cloud SDK finds it (overrides: AZURE_POD_IDENTITY_AUTHORITY_HOST, GCE_METADATA_HOST).")]
public sealed record ManagedIdentitySettings
{
    public string? Kind { get; init; }

    /// <summary><c>Azure</c> or <c>Gcp</c>.</summary>
    [Setting(Required = true, AllowedValues = ["Azure", "Gcp"])]
    public string? Provider { get; init; }

    /// <summary>Azure: a user-assigned identity's client id; absent for the system-assigned identity.</summary>
    [Setting("Azure only: a user-assigned identity's client id. Absent: the system-assigned identity.", MinLength = 1)]
    public string? ClientId { get; init; }

    /// <summary>Azure: exactly one, the resource's <c>.default</c> scope (e.g. <c>https://database.windows.net/.default</c>).
    /// GCP: OAuth scopes, or none for the instance's defaults.</summary>
    [Setting("Azure: exactly one '.default' scope. GCP: OAuth scopes, or none for the instance defaults.", Pattern = @"^\S+$")]
    public string[] Scopes { get; init; } = [];

    [Setting(Format = SettingFormat.HeaderName)]
    public string Header { get; init; } = "Authorization";

    public TimeSpan RefreshBeforeExpiry { get; init; } = TimeSpan.FromMinutes(5);

    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(10);
}

/// <summary>A token for the gateway's own cloud identity, from the platform's metadata endpoint; validated.</summary>
/// <param name="Provider">Which platform's identity.</param>
/// <param name="ClientId">Azure: a user-assigned identity's client id; null for the system-assigned one.</param>
/// <param name="Scopes">Azure: the resource's <c>.default</c> scope (exactly one); GCP: OAuth scopes (empty for the VM's defaults).</param>
public sealed record ManagedIdentityOptions(
    string Name,
    ManagedIdentityProvider Provider,
    string? ClientId,
    IReadOnlyList<string> Scopes,
    string Header,
    TimeSpan RefreshBeforeExpiry,
    TimeSpan Timeout)
    : CredentialOptions(Name)
{
    public override CredentialKind Kind => CredentialKind.ManagedIdentity;
}

public enum ManagedIdentityProvider
{
    /// <summary>Azure managed identity through Azure.Identity (IMDS, App Service, Arc, … as the SDK detects).</summary>
    Azure,

    /// <summary>A GCP service account through Google.Apis.Auth's compute credential (the metadata server).</summary>
    Gcp,
}
