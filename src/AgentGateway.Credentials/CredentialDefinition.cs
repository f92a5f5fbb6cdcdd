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

/// <summary>How the gateway authenticates to a token endpoint as an OAuth client.</summary>
public sealed record OAuthClient(
    Uri TokenEndpoint,
    string ClientId,
    SecretReference ClientSecret,
    ClientAuthenticationStyle Authentication,
    TimeSpan Timeout);

public sealed record OAuthClientCredentialsDefinition(
    string Name,
    OAuthClient Client,
    IReadOnlyList<string> Scopes,
    IReadOnlyList<string> Resources,
    string Header,
    TimeSpan RefreshBeforeExpiry)
    : CredentialDefinition(Name)
{
    public override CredentialKind Kind => CredentialKind.OAuthClientCredentials;
}

/// <summary>An RFC 8693 token exchange: the delegating user's token in, a token for the hop out
/// that names the user (and, with <see cref="SendActorToken"/>, the agent as actor).</summary>
/// <param name="Audience">RFC 8693 <c>audience</c>: the logical name of the target service, if the issuer wants one.</param>
/// <param name="SendActorToken">Send the agent's own token as <c>actor_token</c>, so the issued token can name the agent.</param>
public sealed record OAuthTokenExchangeDefinition(
    string Name,
    OAuthClient Client,
    IReadOnlyList<string> Scopes,
    IReadOnlyList<string> Resources,
    string? Audience,
    bool SendActorToken,
    string Header,
    TimeSpan RefreshBeforeExpiry)
    : CredentialDefinition(Name)
{
    public override CredentialKind Kind => CredentialKind.OAuthTokenExchange;
}

public enum ClientAuthenticationStyle
{
    PostBody,
    BasicAuthentication,
}
