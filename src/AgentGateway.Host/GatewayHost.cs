using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace AgentGateway.Host;

/// <summary>Builds the gateway's web application from a configuration file: the same path for
/// <c>agentgateway run</c> and for the functional tests.</summary>
public static class GatewayHost
{
    /// <param name="configFile">The JSON configuration; reloaded when it changes.</param>
    /// <param name="args">Remaining command-line arguments (e.g. <c>--urls</c>), which override the file.</param>
    /// <param name="configure">Lets a caller (a test) adjust services before the app is built.</param>
    public static WebApplication Build(string configFile, string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = args });
        builder.WebHost.UseKestrelHttpsConfiguration();
        // Beneath everything: the framework's per-request lines (request started and finished,
        // proxying, HTTP client sends) at Warning, as ASP.NET Core's own templates set them. The
        // gateway's audit record and spans already describe every request; four more log lines
        // each, to the console and over OTLP, cost half the throughput. Any source above overrides.
        builder.Configuration.Sources.Insert(0, new Microsoft.Extensions.Configuration.Memory.MemoryConfigurationSource
        {
            InitialData = new Dictionary<string, string?>
            {
                ["Logging:LogLevel:Default"] = "Information",
                ["Logging:LogLevel:Microsoft.AspNetCore"] = "Warning",
                ["Logging:LogLevel:Microsoft.Extensions.Http"] = "Warning",
                ["Logging:LogLevel:Yarp"] = "Warning",
                // A client gets 10 s, not Kestrel's 30 s, to send its request headers: an agent
                // has no reason to be slow, and a slowloris holds a connection for this long.
                ["Kestrel:Limits:RequestHeadersTimeout"] = "00:00:10",
            },
        });
        // File first, then environment variables (Gateway__Redis=…) and arguments, which win.
        builder.Configuration.AddWatchedJsonFile(configFile);
        builder.Configuration.AddEnvironmentVariables();
        builder.Configuration.AddCommandLine(args);
        // Kestrel reads only endpoints and certificates from its section; its limits (header and
        // body sizes, the header timeout that ends a slowloris) are bound here, so operators set
        // them in the same file as everything else.
        builder.WebHost.ConfigureKestrel(static (context, kestrel) => context.Configuration.GetSection("Kestrel:Limits").Bind(kestrel.Limits));
        if (AgentGateway.Proxy.Configuration.ProcessSettings.Read(builder.Configuration).ClientCertificates)
        {
            // Agents may present a client certificate on https endpoints. Kestrel accepts any and
            // the gateway checks it against its own trust (never the operating system's store).
            builder.WebHost.ConfigureKestrel(static kestrel => kestrel.ConfigureHttpsDefaults(static https =>
            {
                https.ClientCertificateMode = Microsoft.AspNetCore.Server.Kestrel.Https.ClientCertificateMode.AllowCertificate;
                https.ClientCertificateValidation = static (_, _, _) => true;
            }));
        }

        builder.Services.AddAgentGateway(builder.Configuration);
        configure?.Invoke(builder);
        return builder.Build();
    }
}
