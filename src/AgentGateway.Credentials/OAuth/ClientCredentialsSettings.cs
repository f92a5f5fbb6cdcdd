namespace AgentGateway.Credentials.OAuth;

/// <summary><c>Kind: OAuthClientCredentials</c>: a token from <c>TokenEndpoint</c> for the
/// gateway's client, shared by every agent that uses the hop.</summary>
public sealed record OAuthClientCredentialsSettings : OAuthClientSettings;

/// <summary>An <see cref="OAuthClientCredentialsSettings"/> entry, validated.</summary>
public sealed record OAuthClientCredentialsOptions(
    string Name,
    OAuthClient Client,
    IReadOnlyList<string> Scopes,
    IReadOnlyList<string> Resources,
    string Header,
    TimeSpan RefreshBeforeExpiry)
    : CredentialOptions(Name)
{
    public override CredentialKind Kind => CredentialKind.OAuthClientCredentials;
}
