using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using AgentGateway.FunctionalTests.Infrastructure;

namespace AgentGateway.FunctionalTests.Conformance;

/// <summary>
/// The official MCP conformance suite (<c>@modelcontextprotocol/conformance</c>), run as a child
/// process on the Node.js that <c>tests/conformance/package.json</c> pins, both installed there by
/// <c>tests/run-all.sh</c>. Every request it sends carries a bearer token, added by a preloaded
/// module (<c>tests/conformance/agent-token.mjs</c>) because the suite has no header option.
/// </summary>
public static partial class ConformanceSuite
{
    private static readonly string Directory = Path.Combine(Repository.Root, "tests", "conformance");
    private static readonly string Node = Path.Combine(Directory, "node_modules", "node", "bin", "node");
    private static readonly string Cli = Path.Combine(Directory, "node_modules", "@modelcontextprotocol", "conformance", "dist", "index.js");
    private static readonly string Preload = Path.Combine(Directory, "agent-token.mjs");

    /// <summary>Runs every server scenario of the suite (<c>--suite all</c>, pending ones too)
    /// against <paramref name="url"/> with <paramref name="bearer"/> on each request, and reads
    /// the checks it wrote. Fails the test if the suite is not installed or does not finish in
    /// <paramref name="timeout"/>.</summary>
    public static async Task<ConformanceRun> RunAsync(string url, string bearer, TimeSpan timeout)
    {
        Assert.True(File.Exists(Node) && File.Exists(Cli),
            $"The MCP conformance suite is not installed in {Directory}: 'bash tests/run-all.sh' installs it " +
            "(or run 'npm ci' there by hand; it needs the npm registry).");
        // AGW_CONFORMANCE_RESULTS keeps each run's result files (checks with their details) there.
        var keep = Environment.GetEnvironmentVariable("AGW_CONFORMANCE_RESULTS");
        var results = Path.Combine(string.IsNullOrEmpty(keep) ? Path.GetTempPath() : keep, $"agentgateway-conformance-{Guid.NewGuid():N}");
        var start = new ProcessStartInfo(Node)
        {
            WorkingDirectory = Directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var argument in (string[])["--import", new Uri(Preload).AbsoluteUri, Cli, "server", "--url", url, "--suite", "all", "--output-dir", results])
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["AGW_CONFORMANCE_BEARER"] = bearer;
        start.Environment["NO_COLOR"] = "1";
        // The child's own proxy settings must not send loopback traffic elsewhere.
        foreach (var proxy in (string[])["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NODE_OPTIONS"])
        {
            start.Environment.Remove(proxy);
        }

        var output = new StringBuilder();
        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => Append(output, e.Data);
        process.ErrorDataReceived += (_, e) => Append(output, e.Data);
        process.Start();
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            // Only the process this call started, and whatever it started itself.
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            Assert.Fail($"the conformance suite did not finish within {timeout} against {url}; its output:\n{Tail(output)}");
        }

        process.WaitForExit(); // drains the redirected output
        try
        {
            return new ConformanceRun(ReadChecks(results), Tail(output));
        }
        finally
        {
            if (string.IsNullOrEmpty(keep) && System.IO.Directory.Exists(results))
            {
                System.IO.Directory.Delete(results, recursive: true);
            }
        }
    }

    private static void Append(StringBuilder output, string? line)
    {
        if (line is not null)
        {
            lock (output)
            {
                output.AppendLine(line);
            }
        }
    }

    private static string Tail(StringBuilder output)
    {
        lock (output)
        {
            var text = output.ToString();
            return text.Length <= 8000 ? text : "…" + text[^8000..];
        }
    }

    /// <summary>Each scenario writes <c>server-{scenario}-{timestamp}/checks.json</c>.</summary>
    private static List<ConformanceCheck> ReadChecks(string results)
    {
        var checks = new List<ConformanceCheck>();
        if (!System.IO.Directory.Exists(results))
        {
            return checks;
        }

        foreach (var directory in System.IO.Directory.GetDirectories(results).Order(StringComparer.Ordinal))
        {
            var match = ResultDirectory().Match(Path.GetFileName(directory));
            var file = Path.Combine(directory, "checks.json");
            if (!match.Success || !File.Exists(file))
            {
                continue;
            }

            using var json = JsonDocument.Parse(File.ReadAllText(file));
            foreach (var check in json.RootElement.EnumerateArray())
            {
                checks.Add(new ConformanceCheck(
                    match.Groups["scenario"].Value,
                    check.GetProperty("id").GetString()!,
                    check.GetProperty("status").GetString()!,
                    check.TryGetProperty("errorMessage", out var error) ? error.GetString() : null));
            }
        }

        return checks;
    }

    [GeneratedRegex(@"^server-(?<scenario>.+)-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$")]
    private static partial Regex ResultDirectory();
}

/// <param name="Scenario">The suite's scenario, e.g. <c>tools-call-sampling</c>.</param>
/// <param name="Id">The check's id within the scenario.</param>
/// <param name="Status"><c>SUCCESS</c>, <c>FAILURE</c>, <c>WARNING</c> or <c>INFO</c>.</param>
public sealed record ConformanceCheck(string Scenario, string Id, string Status, string? ErrorMessage)
{
    public bool Passed => Status == "SUCCESS";

    public string Name => $"{Scenario}/{Id}";

    public override string ToString() => ErrorMessage is null ? $"{Name}: {Status}" : $"{Name}: {Status} ({ErrorMessage})";
}

/// <param name="Output">The end of what the suite printed.</param>
public sealed record ConformanceRun(IReadOnlyList<ConformanceCheck> Checks, string Output)
{
    /// <summary>The checks that pass or fail (the suite's own count leaves out INFO and WARNING).</summary>
    public IReadOnlyList<ConformanceCheck> Verdicts => [.. Checks.Where(c => c.Status is "SUCCESS" or "FAILURE")];

    public IReadOnlyList<string> Scenarios => [.. Checks.Select(c => c.Scenario).Distinct()];
}
