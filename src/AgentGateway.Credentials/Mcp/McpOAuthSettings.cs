using AgentGateway.Credentials.OAuth;

namespace AgentGateway.Credentials.Mcp;

/// <summary><c>Kind: McpOAuth</c>: a token for one MCP server, from the authorization server its
/// protected-resource metadata (RFC 9728) names — if that server is on <see cref="AuthorizationServers"/>
/// — requested with the server as RFC 8707 <c>resource</c>.</summary>
public sealed record McpOAuthSettings : OAuthCommonSettings
{
    /// <summary>The MCP server's resource identifier, e.g. <c>https://tools.example.com/mcp</c>.</summary>
    public string? Resource { get; init; }

    /// <summary>Where its metadata is, if not at the RFC 9728 well-known location.</summary>
    public string? ResourceMetadata { get; init; }

    /// <summary>The authorization servers (issuer identifiers) the gateway will send its client
    /// credentials to. Metadata naming any other is refused: a tool server must not be able to
    /// point the gateway's secret at a server of its choosing.</summary>
    public string[] AuthorizationServers { get; init; } = [];

    /// <summary>How long discovered metadata is reused before it is fetched again.</summary>
    public TimeSpan DiscoveryInterval { get; init; } = TimeSpan.FromHours(1);
}

/// <summary>Client credentials for one MCP server, validated; its token endpoint is discovered, not configured.</summary>
/// <param name="Resource">The MCP server's resource identifier: the RFC 8707 <c>resource</c> and the
/// value its metadata must name.</param>
/// <param name="ResourceMetadata">Explicit metadata URL; null means the RFC 9728 well-known locations.</param>
/// <param name="AuthorizationServers">Issuer identifiers the gateway may authenticate to.</param>
public sealed record McpOAuthOptions(
    string Name,
    Uri Resource,
    Uri? ResourceMetadata,
    IReadOnlyList<Uri> AuthorizationServers,
    string ClientId,
    ClientAuthentication Authentication,
    TimeSpan Timeout,
    IReadOnlyList<string> Scopes,
    string Header,
    TimeSpan RefreshBeforeExpiry,
    TimeSpan DiscoveryInterval)
    : CredentialOptions(Name)
{
    public override CredentialKind Kind => CredentialKind.McpOAuth;

    /// <summary>The client as it authenticates at a discovered <paramref name="tokenEndpoint"/>.</summary>
    public OAuthClient ClientAt(Uri tokenEndpoint) => new(tokenEndpoint, ClientId, Authentication, Timeout);
}
