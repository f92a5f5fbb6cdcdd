using System.Collections.Frozen;
using AgentGateway.Credentials.ApiKeys;
using AgentGateway.Credentials.Caching;
using AgentGateway.Credentials.Configuration;
using AgentGateway.Credentials.OAuth;
using AgentGateway.Credentials.Secrets;
using Microsoft.Extensions.Logging;

namespace AgentGateway.Credentials;

/// <summary>Builds the sources of a configuration revision: resolves each secret reference (a missing
/// secret is a load problem with its path) and wires the shared cache and HTTP clients.</summary>
public sealed class CredentialSetFactory(
    TokenCache cache,
    IHttpClientFactory httpClients,
    CredentialFingerprint fingerprint,
    TimeProvider time,
    ILoggerFactory loggers)
{
    public CredentialSet Build(IReadOnlyList<CredentialDefinition> definitions, string sectionPath, ConfigProblems problems)
    {
        var sources = new Dictionary<string, ICredentialSource>(StringComparer.OrdinalIgnoreCase);
        foreach (var definition in definitions)
        {
            var path = $"{sectionPath}:{definition.Name}";
            ICredentialSource? source = definition switch
            {
                ApiKeyDefinition d when Resolve(d.Secret, path + ":Secret", problems) is { } key =>
                    new ApiKeySource(d, key, fingerprint),
                OAuthClientCredentialsDefinition d when Resolve(d.ClientSecret, path + ":ClientSecret", problems) is { } secret =>
                    new ClientCredentialsSource(d, secret, cache, httpClients, fingerprint, time, loggers.CreateLogger<ClientCredentialsSource>()),
                _ => null,
            };
            if (source is not null)
            {
                sources[definition.Name] = source;
            }
        }

        return new CredentialSet(sources.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase));
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
