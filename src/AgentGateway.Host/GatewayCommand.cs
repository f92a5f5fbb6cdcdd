using AgentGateway.Configuration;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace AgentGateway.Host;

/// <summary>The <c>agentgateway</c> command line.</summary>
public static class GatewayCommand
{
    public const int Ok = 0;
    public const int ConfigInvalid = 1;
    public const int Usage = 2;

    /// <summary>The admin API could not be reached (connection refused, DNS, TLS, timeout).</summary>
    public const int Unreachable = 3;

    /// <summary>The admin API answered with a refusal (401, 403, 404, …).</summary>
    public const int Refused = 4;

    private const string Help = """
        Usage:
          agentgateway [run] --config FILE [--urls URLS]   start the gateway (run is the default verb)
          agentgateway validate FILE                      check a configuration, list every problem
          agentgateway schema                             print the configuration's JSON schema
                                                          (config/gateway.schema.json is its output)
          agentgateway audit verify FILE [--key REF]      check an audit log's hash chain; name the first broken record
          agentgateway agents list|show ID|revoke ID [--reason TEXT] --admin URL [--token TOKEN]
                                                          the inventory, through the admin API (the token
                                                          defaults to $AGENTGATEWAY_ADMIN_TOKEN)
          agentgateway --help                             this text

        Configuration: a JSON file with a ReverseProxy section (YARP's schema) and a Gateway
        section; environment variables override it (Gateway__Redis=host:6379). See README.md and
        config/gateway.example.json. The sandbox (a demo of the whole product) is its own
        command, agentgateway-sandbox: dotnet run --project src/AgentGateway.Sandbox.
        """;

    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(stdout);
        ArgumentNullException.ThrowIfNull(stderr);
        var verb = args.Length > 0 && !args[0].StartsWith('-') ? args[0] : "run";
        var rest = args.Length > 0 && !args[0].StartsWith('-') ? args[1..] : args;
        switch (verb)
        {
            case "run":
                return await RunGatewayAsync(rest, stdout, stderr);
            case "validate":
                return await ValidateAsync(rest, stdout, stderr);
            case "schema":
                return await SchemaAsync(stdout);
            case "audit":
                return await AuditAsync(rest, stdout, stderr);
            case "agents":
                return await AgentsCommand.RunAsync(rest, stdout, stderr);
            case "sandbox":
                // The production command carries no demo servers; say where they went.
                await stderr.WriteLineAsync("The sandbox is its own command now: agentgateway-sandbox (dotnet run --project src/AgentGateway.Sandbox).");
                return Usage;
            case "help":
                await stdout.WriteLineAsync(Help);
                return Ok;
            default:
                await stderr.WriteLineAsync($"Unknown command '{verb}'.");
                await stderr.WriteLineAsync(Help);
                return Usage;
        }
    }

    private static async Task<int> RunGatewayAsync(string[] args, TextWriter stdout, TextWriter stderr)
    {
        if (args.Contains("--help") || args.Contains("-h"))
        {
            await stdout.WriteLineAsync(Help);
            return Ok;
        }

        var configFile = OptionValue(args, "--config");
        if (configFile is null)
        {
            await stderr.WriteLineAsync("No configuration: pass --config FILE (config/gateway.example.json is a start).");
            return Usage;
        }

        if (!File.Exists(configFile))
        {
            await stderr.WriteLineAsync($"Configuration file '{configFile}' does not exist.");
            return Usage;
        }

        await using var app = GatewayHost.Build(configFile, WithoutOption(args, "--config"));
        try
        {
            await app.MapAgentGatewayAsync();
        }
        catch (InvalidGatewayConfigurationException ex)
        {
            await stderr.WriteLineAsync($"{configFile}: {ex.Message}");
            return ConfigInvalid;
        }

        await app.RunAsync();
        return Ok;
    }

    private static async Task<int> ValidateAsync(string[] args, TextWriter stdout, TextWriter stderr)
    {
        if (args.Length != 1 || args[0].StartsWith('-'))
        {
            await stderr.WriteLineAsync("Usage: agentgateway validate FILE");
            return Usage;
        }

        var file = args[0];
        if (!File.Exists(file))
        {
            await stderr.WriteLineAsync($"Configuration file '{file}' does not exist.");
            return Usage;
        }

        IConfiguration configuration;
        try
        {
            configuration = new ConfigurationBuilder()
                .AddJsonFile(Path.GetFullPath(file), optional: false, reloadOnChange: false)
                .AddEnvironmentVariables()
                .Build();
        }
        catch (InvalidDataException ex)
        {
            await stderr.WriteLineAsync($"{file}: not valid JSON: {ex.InnerException?.Message ?? ex.Message}");
            return ConfigInvalid;
        }

        var shape = await SchemaCheck.CheckAsync(file);

        // The loader `run` uses, registered the way `run` registers it, so validate accepts exactly
        // what run accepts; without the process settings (Redis, listeners, export), so it opens
        // no connection and starts nothing.
        var services = new ServiceCollection()
            .AddLogging(static logging => logging.SetMinimumLevel(LogLevel.Warning))
            .AddSingleton(configuration)
            .AddAgentGatewayConfiguration();
        await using var provider = services.BuildServiceProvider();
        var loader = provider.GetRequiredService<AgentGateway.Proxy.Configuration.GatewayConfigLoader>();
        var result = await loader.LoadAsync(configuration, 1, CancellationToken.None);
        if (result.Succeeded && shape.Count == 0)
        {
            var revision = result.Revision!;
            await stdout.WriteLineAsync($"{file}: valid — {revision.Routes.Count} route(s), {revision.Clusters.Count} cluster(s), {revision.Agents.All.Count} agent(s), {revision.Credentials.Names.Count} credential(s).");
            return Ok;
        }

        await stderr.WriteLineAsync($"{file}: {result.Problems.Count + shape.Count} problem(s):");
        foreach (var problem in result.Problems)
        {
            await stderr.WriteLineAsync($"  - {problem.Path}: {problem.Message}");
        }

        foreach (var problem in shape)
        {
            await stderr.WriteLineAsync($"  - {problem} (schema)");
        }

        return ConfigInvalid;
    }

    /// <summary><c>schema</c>: the configuration schema generated from the settings records, with
    /// the credential kinds registered the way <c>run</c> registers them.</summary>
    private static async Task<int> SchemaAsync(TextWriter stdout)
    {
        var services = new ServiceCollection()
            .AddLogging()
            .AddSingleton<IConfiguration>(new ConfigurationBuilder().Build())
            .AddAgentGatewayConfiguration();
        await using var provider = services.BuildServiceProvider();
        await stdout.WriteAsync(ConfigurationSchema.Generate(provider.GetServices<AgentGateway.Credentials.ICredentialKind>()));
        return Ok;
    }

    /// <summary><c>audit verify FILE [--key env:NAME|file:PATH]</c>: exit 0 when the chain is intact,
    /// 1 naming the first broken record otherwise.</summary>
    private static async Task<int> AuditAsync(string[] args, TextWriter stdout, TextWriter stderr)
    {
        if (args.Length < 2 || args[0] != "verify")
        {
            await stderr.WriteLineAsync("Usage: agentgateway audit verify FILE [--key env:NAME|file:PATH]");
            return Usage;
        }

        var file = args[1];
        if (!File.Exists(file))
        {
            await stderr.WriteLineAsync($"Audit log '{file}' does not exist.");
            return Usage;
        }

        // The key is read as the gateway reads Gateway:Audit:Key when it writes the log.
        if (!AgentGateway.Proxy.Audit.AuditKey.TryResolve(OptionValue(args, "--key"), out var key, out var error))
        {
            await stderr.WriteLineAsync($"--key: {error}");
            return Usage;
        }

        var lines = File.ReadLines(file).ToList();
        if (AgentGateway.Proxy.Audit.AuditChain.Verify(lines, key) is { } broken)
        {
            await stderr.WriteLineAsync($"{file}: broken at line {broken.Line}: {broken.Reason}");
            return ConfigInvalid;
        }

        await stdout.WriteLineAsync($"{file}: intact — {lines.Count} record(s), chain verified{(key is null ? "" : " with the key")}.");
        return Ok;
    }

    internal static string? OptionValue(string[] args, string name)
    {
        var index = Array.IndexOf(args, name);
        return index >= 0 && index + 1 < args.Length ? args[index + 1] : null;
    }

    private static string[] WithoutOption(string[] args, string name)
    {
        var index = Array.IndexOf(args, name);
        return index < 0 ? args : [.. args[..index], .. args[Math.Min(index + 2, args.Length)..]];
    }
}
