using System.Net;
using AgentGateway.Credentials.Secrets;
using Microsoft.Extensions.Configuration;

namespace AgentGateway.Credentials.Configuration;

/// <summary>
/// Reads <c>Gateway:Credentials</c> into validated <see cref="CredentialDefinition"/>s, reporting
/// every problem with its path. It checks shape and safety (secret references, HTTPS for token
/// endpoints) but resolves no secret: that is <see cref="CredentialSetFactory"/>'s job.
/// </summary>
public static class CredentialConfigReader
{
    public static IReadOnlyList<CredentialDefinition> Read(IConfigurationSection credentials, ConfigProblems problems)
    {
        var definitions = new List<CredentialDefinition>();
        foreach (var entry in credentials.GetChildren())
        {
            if (!CredentialName.IsValid(entry.Key))
            {
                problems.Add(entry.Path, $"credential name '{entry.Key}' must be letters, digits, '-', '_' or '.'");
                continue;
            }

            var kindText = entry["Kind"];
            if (!Enum.TryParse<CredentialKind>(kindText, ignoreCase: false, out var kind) || !Enum.IsDefined(kind))
            {
                problems.Add(entry.Path + ":Kind", $"'{kindText}' is not a credential kind; expected one of: {string.Join(", ", Enum.GetNames<CredentialKind>())}");
                continue;
            }

            var definition = kind switch
            {
                CredentialKind.ApiKey => (CredentialDefinition?)ReadApiKey(entry, problems),
                CredentialKind.OAuthClientCredentials => ReadClientCredentials(entry, problems),
                CredentialKind.OAuthTokenExchange => ReadTokenExchange(entry, problems),
                CredentialKind.MtlsClientCertificate => ReadClientCertificate(entry, problems),
                CredentialKind.ManagedIdentity => ReadManagedIdentity(entry, problems),
                CredentialKind.McpOAuth => ReadMcpOAuth(entry, problems),
                _ => null,
            };
            if (definition is not null)
            {
                definitions.Add(definition);
            }
        }

        return definitions;
    }

    private static ApiKeyDefinition? ReadApiKey(IConfigurationSection entry, ConfigProblems problems)
    {
        var settings = SectionReader.Read<ApiKeySettings>(entry, problems);
        var ok = CheckHeaderName(entry.Path + ":Header", settings.Header, problems);
        if (!settings.Format.Contains("{secret}", StringComparison.Ordinal))
        {
            problems.Add(entry.Path + ":Format", "must contain '{secret}' where the key goes");
            ok = false;
        }

        ok &= ReadSecret(entry.Path + ":Secret", settings.Secret, problems, out var secret);
        return ok ? new ApiKeyDefinition(entry.Key, settings.Header, settings.Format, secret) : null;
    }

    private static OAuthClientCredentialsDefinition? ReadClientCredentials(IConfigurationSection entry, ConfigProblems problems)
    {
        var s = SectionReader.Read<OAuthClientCredentialsSettings>(entry, problems);
        return ReadOAuthClient(entry, s, problems) is { } client
            ? new OAuthClientCredentialsDefinition(entry.Key, client, s.Scopes, s.Resources, s.Header, s.RefreshBeforeExpiry)
            : null;
    }

    private static OAuthTokenExchangeDefinition? ReadTokenExchange(IConfigurationSection entry, ConfigProblems problems)
    {
        var s = SectionReader.Read<OAuthTokenExchangeSettings>(entry, problems);
        var client = ReadOAuthClient(entry, s, problems);
        var ok = client is not null;
        if (s.Audience is not null && (s.Audience.Length == 0 || s.Audience.Any(char.IsWhiteSpace)))
        {
            problems.Add(entry.Path + ":Audience", "must be a non-empty name without spaces");
            ok = false;
        }

        return ok
            ? new OAuthTokenExchangeDefinition(entry.Key, client!, s.Scopes, s.Resources, s.Audience, s.SendActorToken, s.Header, s.RefreshBeforeExpiry)
            : null;
    }

    private static ManagedIdentityDefinition? ReadManagedIdentity(IConfigurationSection entry, ConfigProblems problems)
    {
        var s = SectionReader.Read<ManagedIdentitySettings>(entry, problems);
        var ok = CheckHeaderName(entry.Path + ":Header", s.Header, problems);
        if (!Enum.TryParse<ManagedIdentityProvider>(s.Provider, ignoreCase: false, out var provider) || !Enum.IsDefined(provider))
        {
            problems.Add(entry.Path + ":Provider", $"'{s.Provider}' is not one of: {string.Join(", ", Enum.GetNames<ManagedIdentityProvider>())}");
            return null;
        }

        ok &= CheckScopes(entry.Path, s.Scopes, problems);

        if (provider == ManagedIdentityProvider.Azure && s.Scopes.Length != 1)
        {
            // Azure managed identity issues a token for one resource at a time.
            problems.Add(entry.Path + ":Scopes", "Azure needs exactly one scope: the resource's '.default' scope, e.g. https://database.windows.net/.default");
            ok = false;
        }

        if (provider == ManagedIdentityProvider.Gcp && s.ClientId is not null)
        {
            problems.Add(entry.Path + ":ClientId", "is not used here: GCP uses the instance's service account");
            ok = false;
        }

        ok &= CheckTokenTiming(entry.Path, s.RefreshBeforeExpiry, s.Timeout, problems);

        return ok ? new ManagedIdentityDefinition(entry.Key, provider, s.ClientId, s.Scopes, s.Header, s.RefreshBeforeExpiry, s.Timeout) : null;
    }

    private static MtlsClientCertificateDefinition? ReadClientCertificate(IConfigurationSection entry, ConfigProblems problems)
    {
        var s = SectionReader.Read<MtlsClientCertificateSettings>(entry, problems);
        var ok = ReadSecret(entry.Path + ":Certificate", s.Certificate, problems, out var certificate);
        ok &= ReadSecret(entry.Path + ":PrivateKey", s.PrivateKey, problems, out var key);
        SecretReference? authority = null;
        if (s.ServerCertificateAuthority is not null)
        {
            ok &= ReadSecret(entry.Path + ":ServerCertificateAuthority", s.ServerCertificateAuthority, problems, out var ca);
            authority = ca;
        }

        if (s.ReloadInterval < TimeSpan.FromSeconds(1) || s.ReloadInterval > TimeSpan.FromHours(1))
        {
            problems.Add(entry.Path + ":ReloadInterval", "must be between 00:00:01 and 01:00:00");
            ok = false;
        }

        return ok ? new MtlsClientCertificateDefinition(entry.Key, certificate, key, authority, s.ReloadInterval) : null;
    }

    /// <summary>The OAuth kinds with a configured token endpoint; null (with problems added) when any setting is wrong.</summary>
    private static OAuthClient? ReadOAuthClient(IConfigurationSection entry, OAuthClientSettings s, ConfigProblems problems)
    {
        var ok = TryReadEndpoint(entry.Path + ":TokenEndpoint", s.TokenEndpoint, problems, out var endpoint);
        var authentication = ReadOAuthCommon(entry, s, problems);
        ok &= authentication is not null;
        for (var i = 0; i < s.Resources.Length; i++)
        {
            // RFC 8707 §2: a resource is an absolute URI without a fragment.
            if (!Uri.TryCreate(s.Resources[i], UriKind.Absolute, out var resource) || resource.Fragment.Length > 0)
            {
                problems.Add($"{entry.Path}:Resources:{i}", "must be an absolute URI without a fragment (RFC 8707)");
                ok = false;
            }
        }

        return ok ? new OAuthClient(endpoint!, s.ClientId!, authentication!, s.Timeout) : null;
    }

    private static McpOAuthDefinition? ReadMcpOAuth(IConfigurationSection entry, ConfigProblems problems)
    {
        var s = SectionReader.Read<McpOAuthSettings>(entry, problems);
        var authentication = ReadOAuthCommon(entry, s, problems);
        var ok = authentication is not null;
        ok &= TryReadEndpoint(entry.Path + ":Resource", s.Resource, problems, out var resource);
        if (resource is not null && resource.Fragment.Length > 0)
        {
            problems.Add(entry.Path + ":Resource", "must not have a fragment (RFC 8707)");
            ok = false;
        }

        Uri? metadata = null;
        if (s.ResourceMetadata is not null)
        {
            ok &= TryReadEndpoint(entry.Path + ":ResourceMetadata", s.ResourceMetadata, problems, out metadata);
        }

        var servers = new List<Uri>();
        if (s.AuthorizationServers.Length == 0)
        {
            problems.Add(entry.Path + ":AuthorizationServers", "name at least one issuer the gateway may send its client credentials to");
            ok = false;
        }

        for (var i = 0; i < s.AuthorizationServers.Length; i++)
        {
            if (TryReadEndpoint($"{entry.Path}:AuthorizationServers:{i}", s.AuthorizationServers[i], problems, out var server))
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
            problems.Add(entry.Path + ":DiscoveryInterval", "must be between 00:01:00 and 1.00:00:00");
            ok = false;
        }

        return ok
            ? new McpOAuthDefinition(entry.Key, resource!, metadata, servers, s.ClientId!, authentication!, s.Timeout, s.Scopes, s.Header, s.RefreshBeforeExpiry, s.DiscoveryInterval)
            : null;
    }

    /// <summary>The settings every OAuth kind shares: the client authentication when all are right,
    /// else null with every problem added.</summary>
    private static ClientAuthentication? ReadOAuthCommon(IConfigurationSection entry, OAuthCommonSettings s, ConfigProblems problems)
    {
        var ok = CheckHeaderName(entry.Path + ":Header", s.Header, problems);
        if (string.IsNullOrWhiteSpace(s.ClientId))
        {
            problems.Add(entry.Path + ":ClientId", "is required");
            ok = false;
        }

        var authentication = ReadClientAuthentication(entry.Path, s, problems);
        ok &= authentication is not null;
        ok &= CheckScopes(entry.Path, s.Scopes, problems);

        ok &= CheckTokenTiming(entry.Path, s.RefreshBeforeExpiry, s.Timeout, problems);

        return ok ? authentication : null;
    }

    private static ClientAuthentication? ReadClientAuthentication(string path, OAuthCommonSettings s, ConfigProblems problems)
    {
        if (s.ClientAuthentication == "PrivateKeyJwt")
        {
            var ok = ReadSecret(path + ":PrivateKey", s.PrivateKey, problems, out var key);
            ok &= Unused(path + ":ClientSecret", s.ClientSecret, "PrivateKeyJwt signs with PrivateKey; a client secret would sit unused", problems);
            if (s.PrivateKeyId is { } kid && (kid.Length == 0 || kid.Any(char.IsControl)))
            {
                problems.Add(path + ":PrivateKeyId", "must be a non-empty printable string");
                ok = false;
            }

            if (s.SigningAlgorithm is { } algorithm && !SigningAlgorithms.Contains(algorithm))
            {
                problems.Add(path + ":SigningAlgorithm", $"'{algorithm}' is not one of: {string.Join(", ", SigningAlgorithms)}");
                ok = false;
            }

            if (s.AssertionAudience is not null && !Uri.TryCreate(s.AssertionAudience, UriKind.Absolute, out _))
            {
                problems.Add(path + ":AssertionAudience", "must be an absolute URI (the issuer or the token endpoint)");
                ok = false;
            }

            return ok ? new PrivateKeyJwtAuthentication(key, s.PrivateKeyId, s.SigningAlgorithm, s.AssertionAudience) : null;
        }

        if (!Enum.TryParse<ClientSecretStyle>(s.ClientAuthentication, ignoreCase: false, out var style) || !Enum.IsDefined(style))
        {
            problems.Add(path + ":ClientAuthentication", $"'{s.ClientAuthentication}' is not one of: PostBody, BasicAuthentication, PrivateKeyJwt");
            return null;
        }

        var secretOk = ReadSecret(path + ":ClientSecret", s.ClientSecret, problems, out var secret);
        secretOk &= Unused(path + ":PrivateKey", s.PrivateKey, "only PrivateKeyJwt uses a private key", problems);
        secretOk &= Unused(path + ":PrivateKeyId", s.PrivateKeyId, "only PrivateKeyJwt signs assertions", problems);
        secretOk &= Unused(path + ":SigningAlgorithm", s.SigningAlgorithm, "only PrivateKeyJwt signs assertions", problems);
        secretOk &= Unused(path + ":AssertionAudience", s.AssertionAudience, "only PrivateKeyJwt signs assertions", problems);
        return secretOk ? new ClientSecretAuthentication(secret, style) : null;
    }

    private static readonly string[] SigningAlgorithms = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"];

    /// <summary>A setting the chosen method ignores is a mistake to report, not to pass over: the
    /// operator believes it is in force.</summary>
    private static bool Unused(string path, string? value, string why, ConfigProblems problems)
    {
        if (value is null)
        {
            return true;
        }

        problems.Add(path, $"is not used here: {why}");
        return false;
    }

    /// <summary>Token endpoints receive client secrets: HTTPS only, except on the loopback interface
    /// (a local identity provider or a test), where there is no network to protect.</summary>
    public static bool TryReadEndpoint(string path, string? text, ConfigProblems problems, out Uri? endpoint)
    {
        endpoint = null;
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttps && uri.Scheme != Uri.UriSchemeHttp))
        {
            problems.Add(path, "must be an absolute http(s) URL");
            return false;
        }

        if (uri.Scheme == Uri.UriSchemeHttp && !IsLoopback(uri))
        {
            problems.Add(path, "must use https (plain http is allowed only for loopback addresses)");
            return false;
        }

        if (!string.IsNullOrEmpty(uri.UserInfo))
        {
            problems.Add(path, "must not carry user information");
            return false;
        }

        endpoint = uri;
        return true;
    }

    public static bool IsLoopback(Uri uri) =>
        uri.IsLoopback || (IPAddress.TryParse(uri.DnsSafeHost, out var ip) && IPAddress.IsLoopback(ip));

    private static bool ReadSecret(string path, string? text, ConfigProblems problems, out SecretReference reference)
    {
        if (SecretReference.TryParse(text, out var parsed, out var error))
        {
            reference = parsed.Value;
            return true;
        }

        problems.Add(path, error);
        reference = default;
        return false;
    }

    private static bool CheckScopes(string path, string[] scopes, ConfigProblems problems)
    {
        var ok = true;
        for (var i = 0; i < scopes.Length; i++)
        {
            if (string.IsNullOrWhiteSpace(scopes[i]) || scopes[i].Any(char.IsWhiteSpace))
            {
                problems.Add($"{path}:Scopes:{i}", "a scope is one non-empty word without spaces");
                ok = false;
            }
        }

        return ok;
    }

    /// <summary>The bounds every fetched token shares: how early it stops being served, how long a fetch may take.</summary>
    private static bool CheckTokenTiming(string path, TimeSpan refreshBeforeExpiry, TimeSpan timeout, ConfigProblems problems)
    {
        var ok = true;
        if (refreshBeforeExpiry < TimeSpan.Zero || refreshBeforeExpiry > TimeSpan.FromHours(1))
        {
            problems.Add(path + ":RefreshBeforeExpiry", "must be between 00:00:00 and 01:00:00");
            ok = false;
        }

        if (timeout <= TimeSpan.Zero || timeout > TimeSpan.FromMinutes(2))
        {
            problems.Add(path + ":Timeout", "must be greater than zero and at most 00:02:00");
            ok = false;
        }

        return ok;
    }

    private static bool CheckHeaderName(string path, string? header, ConfigProblems problems)
    {
        // RFC 9110 token characters; anything else could split or smuggle headers.
        if (string.IsNullOrEmpty(header) || !header.All(c => char.IsAsciiLetterOrDigit(c) || "!#$%&'*+-.^_`|~".Contains(c)))
        {
            problems.Add(path, "must be a valid HTTP header name");
            return false;
        }

        return true;
    }
}
