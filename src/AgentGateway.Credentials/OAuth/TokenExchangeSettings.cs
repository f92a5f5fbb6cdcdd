using AgentGateway.Configuration;

namespace AgentGateway.Credentials.OAuth;

/// <summary><c>Kind: OAuthTokenExchange</c>: an RFC 8693 on-behalf-of token for the user the
/// agent acts for (the request's delegation), naming the agent as actor.</summary>
[Setting("RFC 8693 on-behalf-of: the request's delegation (the user's token) is the subject token, the agent's own token the actor token.")]
public sealed record OAuthTokenExchangeSettings : OAuthClientSettings
{
    /// <summary>RFC 8693 <c>audience</c>: the logical name of the target service, if the issuer wants one.</summary>
    [Setting("RFC 8693 audience: the target service's logical name.", Pattern = @"^\S+$")]
    public string? Audience { get; init; }

    /// <summary>Send the agent's own token as <c>actor_token</c> (default), so the issued token names the agent.</summary>
    [Setting("Send the agent's token as actor_token so the issued token names the agent (act).")]
    public bool SendActorToken { get; init; } = true;
}

/// <summary>An RFC 8693 token exchange, validated: the delegating user's token in, a token for the
/// hop out that names the user (and, with <see cref="SendActorToken"/>, the agent as actor).</summary>
/// <param name="Audience">RFC 8693 <c>audience</c>: the logical name of the target service, if the issuer wants one.</param>
/// <param name="SendActorToken">Send the agent's own token as <c>actor_token</c>, so the issued token can name the agent.</param>
public sealed record OAuthTokenExchangeOptions(
    string Name,
    OAuthClient Client,
    IReadOnlyList<string> Scopes,
    IReadOnlyList<string> Resources,
    string? Audience,
    bool SendActorToken,
    string Header,
    TimeSpan RefreshBeforeExpiry)
    : CredentialOptions(Name)
{
    public override CredentialKind Kind => CredentialKind.OAuthTokenExchange;
}
