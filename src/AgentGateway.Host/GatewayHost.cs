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
        // File first, then environment variables (Gateway__Redis=…) and arguments, which win.
        builder.Configuration.AddJsonFile(Path.GetFullPath(configFile), optional: false, reloadOnChange: true);
        builder.Configuration.AddEnvironmentVariables();
        builder.Configuration.AddCommandLine(args);
        builder.Services.AddAgentGateway(builder.Configuration);
        configure?.Invoke(builder);
        return builder.Build();
    }
}
