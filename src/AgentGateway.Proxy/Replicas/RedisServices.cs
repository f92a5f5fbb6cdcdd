using System.Runtime.CompilerServices;
using AgentGateway.Credentials.Caching;
using AgentGateway.Proxy.Policy;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using StackExchange.Redis;

namespace AgentGateway.Proxy.Replicas;

/// <summary>What <c>Gateway:Redis</c> adds: the connection, the broker's shared cache level, the
/// shared policy state, and <see cref="IReplicaBus"/> for the revocation, ephemeral-agent and
/// cancel-key stores.</summary>
public static class RedisServices
{
    /// <remarks>Its own method, never inlined, and called only when Redis is configured: the JIT
    /// maps the assemblies a method names when it compiles that method, so a gateway without Redis
    /// never maps StackExchange.Redis.</remarks>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void Register(IServiceCollection services, string connectionString)
    {
        services.AddSingleton<IConnectionMultiplexer>(_ =>
        {
            var options = ConfigurationOptions.Parse(connectionString);
            // Start even while Redis is away; the cache falls back to fetching and /readyz says so.
            options.AbortOnConnectFail = false;
            return ConnectionMultiplexer.Connect(options);
        });
        services.AddSingleton<IReplicaBus, RedisReplicaBus>();
        // Replaces the broker's in-process-only default.
        services.Replace(ServiceDescriptor.Singleton<ISharedCacheStore, RedisSharedCacheStore>());
        services.AddSingleton<IPolicyStateStore, RedisPolicyStateStore>();
    }
}
