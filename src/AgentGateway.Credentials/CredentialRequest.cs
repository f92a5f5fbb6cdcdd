namespace AgentGateway.Credentials;

/// <summary>
/// Who a hop credential is wanted for on this request. Sources of shared credentials (API keys,
/// client credentials) ignore it; on-behalf-of sources exchange the delegation and the agent's
/// token. Everything here was verified by the caller; nothing comes unchecked from the request.
/// </summary>
/// <param name="AgentId">The inventory agent.</param>
/// <param name="AgentToken">The agent's own verified access token (the RFC 8693 actor token).</param>
/// <param name="Delegation">The human the agent acts for, when it presented a valid delegation.</param>
public readonly record struct CredentialRequest(string AgentId, string? AgentToken, Delegation? Delegation)
{
    public override string ToString() => $"agent {AgentId}" + (Delegation is { } d ? $" for {d}" : "");
}

/// <summary>A verified delegation: the user's access token the agent presented, and who the user is.</summary>
/// <param name="IssuerName">The trusted issuer (configuration name) that signed the user's token.</param>
/// <param name="Subject">The user: the token's <c>sub</c>.</param>
/// <param name="Token">The user's token itself (the RFC 8693 subject token). Never printed.</param>
/// <param name="ExpiresAt">The user's token's expiry: nothing obtained with it is served longer.</param>
public sealed record Delegation(string IssuerName, string Subject, string Token, DateTimeOffset ExpiresAt)
{
    public override string ToString() => $"user {Subject} ({IssuerName})";
}
