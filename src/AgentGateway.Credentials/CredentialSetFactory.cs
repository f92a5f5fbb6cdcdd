using System.Collections.Frozen;
using AgentGateway.Credentials.ApiKeys;
using AgentGateway.Credentials.Caching;
using AgentGateway.Credentials.Certificates;
using AgentGateway.Credentials.ManagedIdentity;
using AgentGateway.Credentials.Mcp;
using AgentGateway.Credentials.Configuration;
using AgentGateway.Credentials.OAuth;
using AgentGateway.Credentials.Secrets;
using Microsoft.Extensions.Caching.Hybrid;
using Microsoft.Extensions.Logging;

namespace AgentGateway.Credentials;

/// <summary>Builds the sources of a configuration revision: resolves each secret reference (a missing
/// secret is a load problem with its path) and wires the revision's token cache — sealed with the
/// revision's keys — and the shared HTTP clients.</summary>
public sealed class CredentialSetFactory(
    HybridCache localCache,
    ISharedCacheStore sharedCache,
    IHttpClientFactory httpClients,
    CredentialFingerprint fingerprint,
    AgentTokenIndex agentTokens,
    TimeProvider time,
    ILoggerFactory loggers)
{
    public CredentialSet Build(IReadOnlyList<CredentialDefinition> definitions, CacheDefinition cacheDefinition, string sectionPath, ConfigProblems problems)
    {
        var cache = BuildCache(cacheDefinition, problems);
        var sources = new Dictionary<string, ICredentialSource>(StringComparer.OrdinalIgnoreCase);
        foreach (var definition in definitions)
        {
            var path = $"{sectionPath}:{definition.Name}";
            ICredentialSource? source = definition switch
            {
                ApiKeyDefinition d when Resolve(d.Secret, path + ":Secret", problems) is { } key =>
                    new ApiKeySource(d, key, fingerprint),
                OAuthClientCredentialsDefinition d when Authenticator(d.Client, path, problems) is { } client =>
                    new ClientCredentialsSource(d, client, Endpoint(d.Name, d.Client, client, d.RefreshBeforeExpiry), cache),
                OAuthTokenExchangeDefinition d when Authenticator(d.Client, path, problems) is { } client =>
                    new TokenExchangeSource(d, client, Endpoint(d.Name, d.Client, client, d.RefreshBeforeExpiry), cache),
                McpOAuthDefinition d when Authenticator(d.ClientAt(d.Resource), path, problems) is { } client =>
                    new McpOAuthSource(
                        d,
                        client,
                        new AuthorizationServerDiscovery(d, httpClients, time, loggers.CreateLogger<AuthorizationServerDiscovery>()),
                        discovered => Endpoint(d.Name, discovered, client, d.RefreshBeforeExpiry),
                        cache),
                ManagedIdentityDefinition d =>
                    new ManagedIdentitySource(d, cache, fingerprint, time, loggers.CreateLogger<ManagedIdentitySource>()),
                MtlsClientCertificateDefinition d =>
                    ClientCertificateSource.Create(d, path, fingerprint, time, loggers.CreateLogger<ClientCertificateSource>(), problems),
                _ => null,
            };
            if (source is not null)
            {
                sources[definition.Name] = source;
            }
        }

        return new CredentialSet(sources.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase));
    }

    private ClientAuthenticator? Authenticator(OAuthClient client, string path, ConfigProblems problems) =>
        ClientAuthenticator.Create(client.Authentication, path, time, problems);

    private TokenEndpointClient Endpoint(string name, OAuthClient client, ClientAuthenticator authenticator, TimeSpan refreshBeforeExpiry) =>
        new(name, client, authenticator, refreshBeforeExpiry, httpClients, fingerprint, time, loggers.CreateLogger<TokenEndpointClient>());

    private TokenCache BuildCache(CacheDefinition definition, ConfigProblems problems)
    {
        TokenSealer? sealer = null;
        if (definition.EncryptionKey is { } reference && ResolveKey(reference, "Gateway:Cache:EncryptionKey", problems) is { } current)
        {
            var previous = new List<byte[]>();
            for (var i = 0; i < definition.PreviousEncryptionKeys.Count; i++)
            {
                if (ResolveKey(definition.PreviousEncryptionKeys[i], $"Gateway:Cache:PreviousEncryptionKeys:{i}", problems) is { } old)
                {
                    previous.Add(old);
                }
            }

            sealer = new TokenSealer(current, previous);
        }

        return new TokenCache(localCache, sharedCache, sealer, time, agentTokens, loggers.CreateLogger<TokenCache>()) { MaxLifetime = definition.MaxTokenLifetime };
    }

    private static byte[]? ResolveKey(SecretReference reference, string path, ConfigProblems problems)
    {
        if (Resolve(reference, path, problems) is not { } value)
        {
            return null;
        }

        var key = new byte[TokenSealer.KeyBytes + 1];
        if (!Convert.TryFromBase64String(value.Reveal().Trim(), key, out var length) || length != TokenSealer.KeyBytes)
        {
            problems.Add(path, $"must hold exactly {TokenSealer.KeyBytes} bytes, base64-encoded (e.g. the output of 'openssl rand -base64 32')");
            return null;
        }

        return key[..TokenSealer.KeyBytes];
    }

    private static SecretValue? Resolve(SecretReference reference, string path, ConfigProblems problems)
    {
        if (SecretResolver.TryResolve(reference, out var value, out var error))
        {
            return value;
        }

        problems.Add(path, error!);
        return null;
    }
}
