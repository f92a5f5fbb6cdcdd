using AgentGateway.Configuration;
using AgentGateway.Credentials.OAuth;
using Microsoft.Extensions.Logging;

namespace AgentGateway.Credentials.Mcp;

/// <summary><c>Kind: McpOAuth</c> (MCP authorization, 2025-06-18).</summary>
internal sealed class McpOAuthKind(TokenEndpoints endpoints) : CredentialKindBase<McpOAuthSettings, McpOAuthOptions>
{
    public override CredentialKind Kind => CredentialKind.McpOAuth;

    protected override McpOAuthOptions? Validate(string name, string path, McpOAuthSettings s, ConfigProblems problems)
    {
        var authentication = OAuthSettingsValidation.ReadCommon(path, s, problems);
        var ok = authentication is not null;
        ok &= HttpEndpoint.TryRead(path + ":Resource", s.Resource, problems, out var resource);
        if (resource is not null && resource.Fragment.Length > 0)
        {
            problems.Add(path + ":Resource", "must not have a fragment (RFC 8707)");
            ok = false;
        }

        Uri? metadata = null;
        if (s.ResourceMetadata is not null)
        {
            ok &= HttpEndpoint.TryRead(path + ":ResourceMetadata", s.ResourceMetadata, problems, out metadata);
        }

        var servers = new List<Uri>();
        if (s.AuthorizationServers.Length == 0)
        {
            problems.Add(path + ":AuthorizationServers", "name at least one issuer the gateway may send its client credentials to");
            ok = false;
        }

        for (var i = 0; i < s.AuthorizationServers.Length; i++)
        {
            if (HttpEndpoint.TryRead($"{path}:AuthorizationServers:{i}", s.AuthorizationServers[i], problems, out var server))
            {
                servers.Add(server!);
            }
            else
            {
                ok = false;
            }
        }

        if (s.DiscoveryInterval < TimeSpan.FromMinutes(1) || s.DiscoveryInterval > TimeSpan.FromDays(1))
        {
            problems.Add(path + ":DiscoveryInterval", "must be between 00:01:00 and 1.00:00:00");
            ok = false;
        }

        return ok
            ? new McpOAuthOptions(name, resource!, metadata, servers, s.ClientId!, authentication!, s.Timeout, s.Scopes, s.Header, s.RefreshBeforeExpiry, s.DiscoveryInterval)
            : null;
    }

    protected override ICredentialSource? Build(McpOAuthOptions options, CredentialBuildContext context, ConfigProblems problems)
    {
        if (endpoints.Authenticators.Create(options.Authentication, context.Path, problems) is not { } authenticator)
        {
            return null;
        }

        return new McpOAuthSource(
            options,
            authenticator,
            new AuthorizationServerDiscovery(options, endpoints.HttpClients, endpoints.Time, endpoints.Loggers.CreateLogger<AuthorizationServerDiscovery>()),
            discovered => endpoints.Create(options.Name, discovered, authenticator, options.RefreshBeforeExpiry),
            endpoints.Keys.ForCredential(McpOAuthSource.CacheKeyParts(options, authenticator.KeyMaterial)),
            context.Cache);
    }
}
