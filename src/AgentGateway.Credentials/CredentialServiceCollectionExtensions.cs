using AgentGateway.Credentials;
using AgentGateway.Credentials.Caching;
using AgentGateway.Credentials.OAuth;
using Microsoft.Extensions.DependencyInjection.Extensions;

// Extension entry points live in the DI namespace so callers need no extra using.
namespace Microsoft.Extensions.DependencyInjection;

public static class CredentialServiceCollectionExtensions
{
    /// <summary>
    /// Adds the credential broker: secret resolution, the token cache (in process through
    /// HybridCache; shared across replicas when an <see cref="ISharedCacheStore"/> such as
    /// <see cref="RedisSharedCacheStore"/> is registered, otherwise in process only) and the
    /// token-endpoint HTTP client.
    /// </summary>
    public static IServiceCollection AddCredentialBroker(this IServiceCollection services)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<CredentialFingerprint>();
        services.TryAddSingleton<ISharedCacheStore>(NoSharedCacheStore.Instance);
        services.TryAddSingleton<AgentTokenIndex>();
        services.TryAddSingleton<CredentialSetFactory>();
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
