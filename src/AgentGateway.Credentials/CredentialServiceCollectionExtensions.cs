using AgentGateway.Credentials;
using AgentGateway.Credentials.ApiKeys;
using AgentGateway.Credentials.AwsSigV4;
using AgentGateway.Credentials.Caching;
using AgentGateway.Credentials.Certificates;
using AgentGateway.Credentials.ManagedIdentity;
using AgentGateway.Credentials.Mcp;
using AgentGateway.Credentials.OAuth;
using Microsoft.Extensions.DependencyInjection.Extensions;

// Extension entry points live in the DI namespace so callers need no extra using.
namespace Microsoft.Extensions.DependencyInjection;

public static class CredentialServiceCollectionExtensions
{
    /// <summary>
    /// Adds the credential broker: the credential kinds, secret resolution, the token cache (in
    /// process through HybridCache; shared across replicas when an <see cref="ISharedCacheStore"/>
    /// such as <see cref="RedisSharedCacheStore"/> is registered, otherwise in process only) and the
    /// token-endpoint HTTP client.
    /// </summary>
    /// <remarks>
    /// Every collaborator is registered with <c>TryAdd</c>: register your own first to replace it —
    /// <see cref="IClientAuthenticatorFactory"/> (client secrets and assertions),
    /// <see cref="ITokenRequestCustomizer"/> (extra token request parameters),
    /// <see cref="ITokenCacheKeyGenerator"/> (cache keys). A new kind is an
    /// <see cref="ICredentialKind"/> added with <c>TryAddEnumerable</c>.
    /// </remarks>
    public static IServiceCollection AddCredentialBroker(this IServiceCollection services)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<CredentialFingerprint>();
        services.TryAddSingleton<ISharedCacheStore>(NoSharedCacheStore.Instance);
        services.TryAddSingleton<AgentTokenIndex>();
        services.TryAddSingleton<CredentialSetFactory>();

        services.TryAddSingleton<IClientAuthenticatorFactory, ClientAuthenticatorFactory>();
        services.TryAddSingleton<ITokenRequestCustomizer, NoTokenRequestCustomization>();
        services.TryAddSingleton<ITokenCacheKeyGenerator, TokenCacheKeyGenerator>();
        services.TryAddSingleton<TokenEndpoints>();

        services.TryAddEnumerable(ServiceDescriptor.Singleton<ICredentialKind, ApiKeyKind>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ICredentialKind, ClientCredentialsKind>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ICredentialKind, TokenExchangeKind>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ICredentialKind, McpOAuthKind>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ICredentialKind, ManagedIdentityKind>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ICredentialKind, MtlsClientCertificateKind>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ICredentialKind, AwsSigV4Kind>());

        services.AddHybridCache(options =>
        {
            options.MaximumKeyLength = 256;
            options.MaximumPayloadBytes = 64 * 1024;
        });
        services.AddHttpClient(TokenEndpointClient.HttpClientName)
            .ConfigurePrimaryHttpMessageHandler(OutboundHttp.CreateHandler)
            // Each credential bounds its own request time; this is only the outer backstop.
            .ConfigureHttpClient(static client => client.Timeout = TimeSpan.FromMinutes(2));
        return services;
    }
}
