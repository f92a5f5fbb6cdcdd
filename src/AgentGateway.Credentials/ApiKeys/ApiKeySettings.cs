using AgentGateway.Configuration;
using AgentGateway.Credentials.Secrets;

namespace AgentGateway.Credentials.ApiKeys;

/// <summary><c>Kind: ApiKey</c>. The secret goes into <see cref="Header"/>, formatted by
/// <see cref="Format"/> where <c>{secret}</c> stands for the key.</summary>
public sealed record ApiKeySettings
{
    public string? Kind { get; init; }

    [Setting(Format = SettingFormat.HeaderName)]
    public string Header { get; init; } = "Authorization";

    [Setting(Pattern = @"\{secret\}")]
    public string Format { get; init; } = "Bearer {secret}";

    [Setting(Required = true, Format = SettingFormat.SecretReference)]
    public string? Secret { get; init; }
}

/// <summary>An <see cref="ApiKeySettings"/> entry, validated.</summary>
public sealed record ApiKeyOptions(string Name, string Header, string Format, SecretReference Secret)
    : CredentialOptions(Name)
{
    public override CredentialKind Kind => CredentialKind.ApiKey;
}
