using AgentGateway.Configuration;
using AgentGateway.Credentials.OAuth;

namespace AgentGateway.Credentials.Mcp;

/// <summary><c>Kind: McpOAuth</c>: a token for one MCP server, from the authorization server its
/// protected-resource metadata (RFC 9728) names — if that server is on <see cref="AuthorizationServers"/>
/// — requested with the server as RFC 8707 <c>resource</c>.</summary>
[Setting("MCP authorization: the token endpoint is discovered from the server's RFC 9728 metadata (and its authorization server's RFC 8414 / OIDC metadata); the token is requested with the server as RFC 8707 resource.")]
public sealed record McpOAuthSettings : OAuthCommonSettings
{
    /// <summary>The MCP server's resource identifier, e.g. <c>https://tools.example.com/mcp</c>.</summary>
    [Setting("The MCP server's resource identifier (its endpoint URL). https, except loopback.", Required = true, Format = SettingFormat.Uri)]
    public string? Resource { get; init; }

    /// <summary>Where its metadata is, if not at the RFC 9728 well-known location.</summary>
    [Setting("Explicit metadata URL. Default: /.well-known/oauth-protected-resource inserted before the resource's path, then at the host root.", Format = SettingFormat.Uri)]
    public string? ResourceMetadata { get; init; }

    /// <summary>The authorization servers (issuer identifiers) the gateway will send its client
    /// credentials to. Metadata naming any other is refused: a tool server must not be able to
    /// point the gateway's secret at a server of its choosing.</summary>
    [Setting("Issuers the gateway may send its client credentials to; metadata naming any other is refused.", Required = true, Format = SettingFormat.Uri, MinItems = 1)]
    public string[] AuthorizationServers { get; init; } = [];

    /// <summary>How long discovered metadata is reused before it is fetched again.</summary>
    [Setting("How long discovered metadata is reused (1 min to 1 day); a failed token request looks again at once.")]
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
