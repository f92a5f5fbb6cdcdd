using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace AgentGateway.Bench;

/// <summary>One request as every load generator and the probe send it.</summary>
/// <param name="Rotate">A header whose value changes on every request, cycling through the
/// values (say, a different user's token each time); wrk only.</param>
internal sealed record RequestSpec(string Method, string Path, IReadOnlyDictionary<string, string> Headers, string? Body = null, RotatingHeader? Rotate = null);

internal sealed record RotatingHeader(string Name, IReadOnlyList<string> Values);

/// <summary>What one load run measured. Latencies in milliseconds.</summary>
/// <param name="BehindSchedule">At a fixed rate: fewer answers than the schedule asked for, so
/// the target (or the load generator) is saturated and the latencies say nothing about the rate.</param>
/// <param name="Cpu">CPU time (user + system) the target's process used over the run, from
/// <see cref="ProcessCpu"/>; set by the runner, not by the load generator.</param>
internal sealed record Measurement(long Requests, double Seconds, double P50, double P99, long Failures, string? FailureDetail, string? BehindSchedule = null, TimeSpan? Cpu = null)
{
    public double Rate => Requests / Seconds;

    /// <summary>The target's CPU time per answered request, in microseconds.</summary>
    public double CpuMicrosecondsPerRequest => Cpu is { } cpu && Requests > 0 ? cpu.TotalMicroseconds / Requests : double.NaN;
}

/// <summary>The external programs the benchmark drives; it installs none of them.</summary>
internal static partial class Tools
{
    public static readonly (string Command, string Package)[] Required =
    [
        ("taskset", "util-linux"),
        ("wrk", "wrk"),
        ("h2load", "nghttp2-client"),
        ("nginx", "nginx-light"),
        ("redis-server", "redis-server"),
    ];

    // nginx lives in /usr/sbin, which is not on every user's PATH.
    private static readonly string[] Sbin = ["/usr/local/sbin", "/usr/sbin", "/sbin"];

    /// <summary>The program's full path, from PATH and the sbin directories.</summary>
    public static string? Find(string command) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries).Concat(Sbin)
            .Select(directory => System.IO.Path.Combine(directory, command))
            .FirstOrDefault(File.Exists);

    /// <summary>The full path of a program <see cref="Required"/> checked for at the start.</summary>
    public static string Locate(string command) => Find(command) ?? throw new InvalidOperationException($"{command} is not installed");

    /// <summary>Runs a program to its end and returns what it printed, or throws with that when it
    /// fails.</summary>
    public static async Task<(string Output, string Error)> RunAsync(IReadOnlyList<string> command, TimeSpan timeout)
    {
        var info = new ProcessStartInfo(command[0]) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in command.Skip(1))
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"{string.Join(' ', command)} did not end within {timeout.TotalSeconds:0} s");
        }

        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{string.Join(' ', command)} exited with {process.ExitCode}: {await error}{await output}");
        }

        return (await output, await error);
    }

    public static double Percentile(double[] sorted, double p) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)(p * sorted.Length))];

    [GeneratedRegex(@"finished in ([0-9.]+)s")]
    public static partial Regex H2loadFinished();

    [GeneratedRegex(@"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout")]
    public static partial Regex H2loadRequests();

    [GeneratedRegex(@"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx")]
    public static partial Regex H2loadStatus();
}

/// <summary>
/// wrk (HTTP/1.1, closed loop): a fixed number of connections, each sending its next request when
/// the last is answered. Every run goes through a generated Lua script, which sets the method,
/// headers and body (or rotates a header per request) and prints wrk's own counts and
/// percentiles on one line for this program to read.
/// </summary>
internal sealed class Wrk(CpuSet cpus, int connections, DirectoryInfo work)
{
    private int _scripts;

    public string Describe => $"wrk, HTTP/1.1, {connections} connections, {cpus.Count} thread(s) on core(s) {cpus}";

    public async Task<Measurement> RunAsync(string baseUrl, RequestSpec spec, TimeSpan duration)
    {
        var script = System.IO.Path.Combine(work.FullName, $"wrk-{Interlocked.Increment(ref _scripts)}.lua");
        await File.WriteAllTextAsync(script, Script(spec));
        var (output, error) = await Tools.RunAsync(
            [Tools.Locate("taskset"), "-c", cpus.ToString(), Tools.Locate("wrk"), "-t", Math.Min(cpus.Count, connections).ToString(CultureInfo.InvariantCulture), "-c", connections.ToString(CultureInfo.InvariantCulture), "-d", $"{Math.Max(1, (int)duration.TotalSeconds)}s", "--timeout", "10s", "-s", script, baseUrl.TrimEnd('/') + spec.Path],
            duration + TimeSpan.FromSeconds(30));
        if (!string.IsNullOrWhiteSpace(error))
        {
            // wrk reports a Lua error and carries on with whatever the script had set so far.
            throw new InvalidOperationException($"wrk: {error}");
        }

        var line = output.Split('\n').FirstOrDefault(l => l.StartsWith("AGW-BENCH ", StringComparison.Ordinal))
            ?? throw new InvalidOperationException($"wrk printed no result line (a Lua error does not stop wrk): {error}{output}");
        var n = line["AGW-BENCH ".Length..].Split(' ').Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray();
        // wrk counts answers of 400 and above as status errors; with the socket errors, any is a failure.
        var failures = (long)(n[4] + n[5] + n[6] + n[7] + n[8]);
        return new Measurement((long)n[0], n[1] / 1e6, n[2] / 1000, n[3] / 1000, failures,
            failures == 0 ? null : $"wrk: {n[4]} answers ≥ 400, {n[5]} connect / {n[6]} read / {n[7]} write errors, {n[8]} timeouts");
    }

    private static string Script(RequestSpec spec)
    {
        var lua = new StringBuilder();
        lua.AppendLine("-- Written by AgentGateway.Bench for one wrk run.");
        lua.AppendLine(CultureInfo.InvariantCulture, $"wrk.method = {Quote(spec.Method)}");
        foreach (var (name, value) in spec.Headers)
        {
            lua.AppendLine(CultureInfo.InvariantCulture, $"wrk.headers[{Quote(name)}] = {Quote(value)}");
        }

        if (spec.Body is not null)
        {
            lua.AppendLine(CultureInfo.InvariantCulture, $"wrk.body = {Quote(spec.Body)}");
        }

        if (spec.Rotate is { } rotate)
        {
            // Each wrk thread has its own Lua state; setup() gives each a different starting point.
            lua.AppendLine("local values = {");
            foreach (var value in rotate.Values)
            {
                lua.AppendLine(CultureInfo.InvariantCulture, $"  {Quote(value)},");
            }

            lua.AppendLine("}");
            lua.AppendLine("local threads = 0");
            lua.AppendLine("function setup(thread) threads = threads + 1; thread:set(\"first\", threads * 7919) end");
            lua.AppendLine("local index = nil");
            lua.AppendLine("function request()");
            lua.AppendLine("  index = ((index or first or 0) % #values) + 1");
            lua.AppendLine(CultureInfo.InvariantCulture, $"  wrk.headers[{Quote(rotate.Name)}] = values[index]");
            lua.AppendLine("  return wrk.format()");
            lua.AppendLine("end");
        }

        lua.AppendLine("""
            function done(summary, latency, requests)
              local e = summary.errors
              io.write(string.format("AGW-BENCH %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f\n",
                summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
                e.status, e.connect, e.read, e.write, e.timeout))
            end
            """);
        return lua.ToString();
    }

    private static string Quote(string value) =>
        "\"" + value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal).Replace("\r", "\\r", StringComparison.Ordinal) + "\"";
}

/// <summary>
/// h2load (nghttp2-client). Closed loop over HTTP/2 (cleartext, prior knowledge): a few
/// connections, each with several concurrent streams. Fixed rate over HTTP/1.1: <c>--rps</c>
/// starts requests on a schedule per connection, and with <c>-m</c> above 1 a request that falls
/// due while the previous answer is late is still sent (pipelined) instead of waiting, so a slow
/// answer cannot hide the ones scheduled behind it. Latencies come from h2load's per-request log.
/// </summary>
internal sealed class H2load(CpuSet cpus, DirectoryInfo work)
{
    private int _runs;

    public string DescribeClosed(int connections, int streams) => $"h2load, HTTP/2 cleartext, {connections} connections × {streams} streams, {Threads(connections)} thread(s) on core(s) {cpus}";

    public static string DescribeFixed(int connections, int pipeline) => $"h2load --rps, HTTP/1.1, {connections} connections, up to {pipeline} requests in flight on each so requests leave on schedule";

    public Task<Measurement> ClosedAsync(string baseUrl, RequestSpec spec, TimeSpan duration, int connections, int streams) =>
        RunAsync(baseUrl, spec, duration, ["-c", Text(connections), "-m", Text(streams), "-t", Text(Threads(connections))], requestedRate: null);

    public Task<Measurement> FixedRateAsync(string baseUrl, RequestSpec spec, TimeSpan duration, double rate, int connections, int pipeline) =>
        RunAsync(baseUrl, spec, duration, ["--h1", "-c", Text(connections), "-m", Text(pipeline), "-t", Text(Threads(connections)), "--rps", (rate / connections).ToString("0.###", CultureInfo.InvariantCulture)], rate);

    private int Threads(int connections) => Math.Min(cpus.Count, connections);

    private async Task<Measurement> RunAsync(string baseUrl, RequestSpec spec, TimeSpan duration, string[] shape, double? requestedRate)
    {
        if (spec.Rotate is not null)
        {
            throw new NotSupportedException("h2load sends the same headers on every request; rotate with wrk");
        }

        var run = Interlocked.Increment(ref _runs);
        var log = System.IO.Path.Combine(work.FullName, $"h2load-{run}.log");
        List<string> command = [Tools.Locate("taskset"), "-c", cpus.ToString(), Tools.Locate("h2load"), .. shape, "-D", Text(Math.Max(1, (int)duration.TotalSeconds)), "--log-file", log];
        foreach (var (name, value) in spec.Headers)
        {
            command.AddRange(["-H", $"{name.ToLowerInvariant()}: {value}"]);
        }

        if (spec.Body is not null)
        {
            var body = System.IO.Path.Combine(work.FullName, $"h2load-{run}.body");
            await File.WriteAllTextAsync(body, spec.Body);
            command.AddRange(["-d", body]);
        }

        command.Add(baseUrl.TrimEnd('/') + spec.Path);
        var (output, _) = await Tools.RunAsync(command, duration + TimeSpan.FromSeconds(30));
        var seconds = double.Parse(Tools.H2loadFinished().Match(output).Groups[1].Value, CultureInfo.InvariantCulture);
        var requests = Tools.H2loadRequests().Match(output);
        var status = Tools.H2loadStatus().Match(output);
        if (!requests.Success || !status.Success)
        {
            throw new InvalidOperationException($"h2load printed no counts: {output}");
        }

        var succeeded = long.Parse(requests.Groups[4].Value, CultureInfo.InvariantCulture);
        // Failed streams (resets, errors, timeouts) and answers other than 2xx. Status codes are
        // counted when headers arrive, so one answer cut off by the end of the run may count there
        // and not among the done: the two are not subtracted from each other.
        var failures = long.Parse(requests.Groups[5].Value, CultureInfo.InvariantCulture)
            + Enumerable.Range(2, 3).Sum(g => long.Parse(status.Groups[g].Value, CultureInfo.InvariantCulture));
        // Columns: start (µs since the epoch), status, µs until the answer ended.
        var answered = (await File.ReadAllLinesAsync(log))
            .Select(l => l.Split('\t'))
            .Where(f => f.Length >= 3 && f[1].StartsWith('2'))
            .Select(f => (Start: long.Parse(f[0], CultureInfo.InvariantCulture), Latency: double.Parse(f[2], CultureInfo.InvariantCulture) / 1000))
            .ToArray();
        File.Delete(log);
        var latencies = answered.Select(a => a.Latency).ToArray();
        Array.Sort(latencies);
        var detail = failures == 0 ? null : $"h2load: {output[status.Index..].Split('\n')[0]}; {requests.Value}";
        var kept = SteadyRate.KeptRate(answered);
        var behind = requestedRate is { } wanted && kept < wanted * 0.95
            ? $"only {kept:0} of the {wanted:0} req/s asked for were answered: the target or the load generator is saturated"
            : null;
        return new Measurement(succeeded, seconds, Tools.Percentile(latencies, 0.50), Tools.Percentile(latencies, 0.99), failures, detail, behind);
    }

    private static string Text(int value) => value.ToString(CultureInfo.InvariantCulture);
}
