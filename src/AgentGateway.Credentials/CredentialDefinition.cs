using AgentGateway.Credentials.Secrets;

namespace AgentGateway.Credentials;

/// <summary>A validated credential from configuration: what to fetch and where its secret lives.
/// Built once per configuration revision.</summary>
public abstract record CredentialDefinition(string Name)
{
    public abstract CredentialKind Kind { get; }
}

public sealed record ApiKeyDefinition(string Name, string Header, string Format, SecretReference Secret)
    : CredentialDefinition(Name)
{
    public override CredentialKind Kind => CredentialKind.ApiKey;
}

public sealed record OAuthClientCredentialsDefinition(
    string Name,
    Uri TokenEndpoint,
    string ClientId,
    SecretReference ClientSecret,
    ClientAuthenticationStyle ClientAuthentication,
    IReadOnlyList<string> Scopes,
    IReadOnlyList<string> Resources,
    string Header,
    TimeSpan RefreshBeforeExpiry,
    TimeSpan Timeout)
    : CredentialDefinition(Name)
{
    public override CredentialKind Kind => CredentialKind.OAuthClientCredentials;
}

public enum ClientAuthenticationStyle
{
    PostBody,
    BasicAuthentication,
}
