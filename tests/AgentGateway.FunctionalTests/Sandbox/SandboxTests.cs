using System.Diagnostics;
using System.Text.Json;
using AgentGateway.Host;

namespace AgentGateway.FunctionalTests.Sandbox;

/// <summary>The README's first command: the sandbox plays its whole story through the real gateway
/// and exits 0 only if every step behaved. Run as its own process, exactly as a newcomer runs it
/// (it sets process-wide SDK variables, such as the managed identity endpoint). The sandbox is its
/// own command, so the production one carries none of its demo servers.</summary>
public sealed class SandboxTests
{
    [Fact]
    public async Task The_production_command_carries_no_demo_server_and_the_sandbox_does()
    {
        // The dependency lists the two commands run with, copied beside the tests from their builds.
        var gateway = await LibrariesAsync("agentgateway.deps.json");
        var sandbox = await LibrariesAsync("agentgateway-sandbox.deps.json");

        foreach (var demo in new[] { "ModelContextProtocol", "ModelContextProtocol.AspNetCore", "ModelContextProtocol.Core", "Microsoft.AspNetCore.Authentication.JwtBearer" })
        {
            Assert.DoesNotContain(demo, gateway);
            Assert.Contains(demo, sandbox);
        }

        static async Task<HashSet<string>> LibrariesAsync(string file)
        {
            using var deps = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(AppContext.BaseDirectory, file)));
            return deps.RootElement.GetProperty("libraries").EnumerateObject().Select(library => library.Name[..library.Name.IndexOf('/', StringComparison.Ordinal)]).ToHashSet();
        }
    }

    [Fact]
    public async Task The_production_command_says_where_the_sandbox_went()
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();

        Assert.Equal(GatewayCommand.Usage, await GatewayCommand.RunAsync(["sandbox"], stdout, stderr));
        Assert.Contains("agentgateway-sandbox", stderr.ToString(), StringComparison.Ordinal);

        Assert.Equal(GatewayCommand.Ok, await GatewayCommand.RunAsync(["help"], stdout, stderr));
        Assert.DoesNotContain("agentgateway sandbox", stdout.ToString(), StringComparison.Ordinal);
        Assert.Contains("dotnet run --project src/AgentGateway.Sandbox", stdout.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_sandbox_story_behaves_and_says_so()
    {
        var start = new ProcessStartInfo("dotnet")
        {
            ArgumentList = { Path.Combine(AppContext.BaseDirectory, "agentgateway-sandbox.dll") },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        var text = await output;

        Assert.True(process.ExitCode == 0, text + await errors);

        // Each miss names itself and carries the whole story: a failure in CI is read from its log.
        foreach (var expected in new[] { "Every step behaved as expected.", "ApiKey 'llm'", "OAuthClientCredentials 'crm'", "from the in-process cache", "ManagedIdentity 'database'", "McpOAuth 'tools'", "refused: mcp-tool-denied", "refused: toxic-combination", "refused: agent-revoked" })
        {
            Assert.True(text.Contains(expected, StringComparison.Ordinal), $"the story never printed '{expected}':\n{text}");
        }

        Assert.False(text.Contains("agent token seen: y", StringComparison.OrdinalIgnoreCase), $"an upstream saw the agent's token:\n{text}");

        // With PostgreSQL installed (the test script installs it) the story takes the database hop
        // over PostgreSQL's own protocol too; without it, it says how to install it.
        var expectations = Infrastructure.PostgresServer.Binaries() is null
            ? new[] { "PostgreSQL         not shown" }
            : ["ticket_reader sees 3 tickets", "Password for 127.0.0.1:", "by SCRAM-SHA-256", "got FATAL, agent revoked"];
        foreach (var expected in expectations)
        {
            Assert.True(text.Contains(expected, StringComparison.Ordinal), $"the story never printed '{expected}':\n{text}");
        }
    }
}
