using AgentGateway.Credentials;
using AgentGateway.Proxy.Configuration;
using AgentGateway.Proxy.Identity;
using AgentGateway.Proxy.Pipeline;
using AgentGateway.Proxy.Telemetry;
using AgentGateway.Credentials.Caching;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using AgentGateway.Proxy.Policy;
using AgentGateway.Proxy.Replicas;
using AgentGateway.Proxy.Upstream;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Transforms.Builder;

// Extension entry points live in the DI namespace so callers need no extra using.
namespace Microsoft.Extensions.DependencyInjection;

public static class GatewayServiceCollectionExtensions
{
    /// <summary>
    /// Adds the gateway: YARP fed from the gateway's own validated revisions, inbound identity,
    /// the credential broker (with Redis as its second cache level when <c>Gateway:Redis</c> is
    /// set), and OpenTelemetry for each signal exported over OTLP (see <see cref="TelemetryExport"/>;
    /// a signal not exported registers none of its machinery).
    /// </summary>
    public static IServiceCollection AddAgentGateway(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddAgentGatewayConfiguration();
        // YARP registers ASP.NET Core authorization for routes that name an AuthorizationPolicy,
        // which the loader refuses: the gateway authorizes every request by its own grants. With its
        // handler provider registered, WebApplication would add an AuthorizationMiddleware to the
        // pipeline, which on every request finds no policy and allocates the request's Items
        // dictionary to note that it ran. Without it, none is added; nothing else uses it.
        services.RemoveAll<Microsoft.AspNetCore.Authorization.IAuthorizationHandlerProvider>();
        // YARP also adds ASP.NET Core data protection, for its session-affinity cookies, and with it
        // a hosted service that loads the key ring at start: it reads (on a first start creates and
        // writes) key files and maps System.Private.Xml and its LINQ (about 4 MB resident). Without
        // the service, a cluster with cookie affinity still gets its key ring when first used.
        foreach (var keyRingAtStart in services.Where(static d => !d.IsKeyedService && d.ServiceType == typeof(Microsoft.Extensions.Hosting.IHostedService) && d.ImplementationType?.FullName == "Microsoft.AspNetCore.DataProtection.Internal.DataProtectionHostedService").ToList())
        {
            services.Remove(keyRingAtStart);
        }

        // ASP.NET Core's request-start/finish lines carry the raw query string, where agents
        // put tokens (?access_token=…). The gateway strips those from the hop; it must not then
        // write them to its own logs. Operators can still lower this in Logging:LogLevel.
        // Exporting neither traces nor logs, that category is off altogether: ASP.NET Core starts a
        // request activity (with its tags) whenever it is on at any level, only for log scopes and
        // to propagate, and nothing would read it. HopTraceParent passes the trace on instead.
        var traces = TelemetryExport.Exports(configuration, TelemetryExport.Traces);
        var metrics = TelemetryExport.Exports(configuration, TelemetryExport.Metrics);
        var logs = TelemetryExport.Exports(configuration, TelemetryExport.Logs);
        var hostingLevel = traces || logs ? LogLevel.Warning : LogLevel.None;
        services.AddLogging(logging => logging.AddFilter("Microsoft.AspNetCore.Hosting.Diagnostics", hostingLevel));

        // What connects, listens or opens a file at start is read once, here, and fixed for the life
        // of the process: the first revision validates it, a reload that changes it is refused.
        var process = ProcessSettings.Read(configuration);
        services.TryAddSingleton(process);
        if (process.Redis is { } redis)
        {
            RedisServices.Register(services, redis);
        }

        services.TryAddSingleton<DpopValidator>();
        services.TryAddSingleton<AccessTokenRules>();
        services.TryAddSingleton<AgentAuthenticator>();
        services.TryAddSingleton<PublishedRoutes>();
        services.TryAddSingleton<GatewayConfigProvider>();
        services.TryAddSingleton<IProxyConfigProvider>(static sp => sp.GetRequiredService<GatewayConfigProvider>());
        services.TryAddSingleton<RoutePlans>();
        services.TryAddSingleton<McpServerStreamTransform>();
        services.TryAddSingleton<PolicyEngine>();
        services.TryAddSingleton<RefusalWriter>();
        services.TryAddSingleton<AgentGateway.Proxy.Audit.AuditLog>();
        services.TryAddSingleton<AgentGateway.Proxy.Inventory.AgentActivity>();
        services.TryAddSingleton<AgentGateway.Proxy.Inventory.RevocationStore>();
        services.AddHostedService(static sp => sp.GetRequiredService<AgentGateway.Proxy.Inventory.RevocationStore>());
        services.TryAddSingleton<AgentGateway.Proxy.Inventory.EphemeralAgentStore>();
        services.AddHostedService(static sp => sp.GetRequiredService<AgentGateway.Proxy.Inventory.EphemeralAgentStore>());
        services.TryAddSingleton<AgentGateway.Proxy.Inventory.AgentResolver>();
        services.TryAddSingleton<AgentGateway.Proxy.Inventory.AdminServer>();
        services.AddHostedService(static sp => sp.GetRequiredService<AgentGateway.Proxy.Inventory.AdminServer>());
        services.TryAddSingleton<SecretIndex>();
        services.TryAddSingleton<AgentGateway.Proxy.Database.CancelKeys>();
        services.AddHostedService(static sp => sp.GetRequiredService<AgentGateway.Proxy.Database.CancelKeys>());
        services.TryAddSingleton<AgentGateway.Proxy.Database.PostgresFrontEnd>();
        services.TryAddSingleton<AgentGateway.Proxy.Database.PostgresListener>();
        services.AddHostedService(static sp => sp.GetRequiredService<AgentGateway.Proxy.Database.PostgresListener>());
        services.TryAddSingleton<AgentGateway.Proxy.Sessions.LiveSessionRegistry>();
        services.TryAddSingleton<AgentGateway.Proxy.Sessions.ILiveSessionRegistry>(static sp => sp.GetRequiredService<AgentGateway.Proxy.Sessions.LiveSessionRegistry>());
        services.AddHostedService<AgentGateway.Proxy.Sessions.SessionFeeds>();
        services.TryAddSingleton<AgentGateway.Proxy.Tunnels.WebSocketTunnels>();
        services.TryAddSingleton<InProcessPolicyStateStore>();
        services.TryAddSingleton<IPolicyStateStore>(static sp => sp.GetRequiredService<InProcessPolicyStateStore>());
        services.TryAddSingleton<UnauthorizedResponseTransform>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ITransformProvider, CredentialTransformProvider>());
        // AddAgentGatewayConfiguration added YARP (for its validator); this replaces its default client factory.
        services.Replace(ServiceDescriptor.Singleton<IForwarderHttpClientFactory, ClientCertificateHttpClientFactory>());

        // Every request starts a trace of the gateway's own (RequestTrace): hosting takes no parent,
        // state or baggage from the agent's traceparent (no OpenTelemetry instrumentation is
        // registered to read those headers again; see TelemetryExport).
        services.Replace(ServiceDescriptor.Singleton<System.Diagnostics.DistributedContextPropagator>(
            new OwnTracePropagator(System.Diagnostics.DistributedContextPropagator.Current)));

        // Configured entirely by the standard OTEL_* variables (environment, or any other
        // configuration source: the SDK reads them through IConfiguration), the sampler
        // (OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG) among them; OTEL_{TRACES,METRICS,LOGS}_EXPORTER
        // decide per signal (TelemetryExport).
        if (traces || metrics || logs)
        {
            TelemetryExport.Register(services, traces, metrics, logs);
        }

        // Exporting nothing, the gateway registers no listener, instrumentation or sampler at all:
        // its spans are never started and its attributes never set, ASP.NET Core starts no request
        // activity and the HTTP client none either; the hop still carries the request's trace id.
        return services;
    }

    /// <summary>
    /// Adds only what turns a configuration into a revision: the loader, the credential kinds and
    /// YARP's route and cluster validator. Nothing here connects, listens or starts: the process
    /// settings that do (Redis, listeners, the audit file, telemetry export) are registered by
    /// <see cref="AddAgentGateway"/> alone, so <c>agentgateway validate</c>, which uses this, has no
    /// side effect — with an unreachable Redis it answers at once instead of waiting on a connect.
    /// </summary>
    public static IServiceCollection AddAgentGatewayConfiguration(this IServiceCollection services)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.AddCredentialBroker();
        // Issuers' keys are fetched when a token first needs them, never at load.
        services.AddHttpClient(IssuerKeySources.HttpClientName)
            .ConfigurePrimaryHttpMessageHandler(OutboundHttp.CreateHandler)
            .ConfigureHttpClient(static client => client.Timeout = TimeSpan.FromSeconds(10));
        services.TryAddSingleton<IssuerKeySources>();
        services.TryAddSingleton<GatewayConfigLoader>();
        services.AddReverseProxy();
        return services;
    }
}
