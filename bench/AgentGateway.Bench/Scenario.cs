using System.Globalization;

namespace AgentGateway.Bench;

/// <summary>One thing measured under one load: the first target is the baseline (bare YARP) that
/// every other target's ratio is taken against, in the same run.</summary>
/// <param name="Key">The name on the command line (<c>--scenarios core,…</c>).</param>
/// <param name="Load">How the load is made, for the printout.</param>
/// <param name="MinRatio">Issue target for throughput against the baseline, if any.</param>
/// <param name="MaxAddedP99">Issue target for the p99 added over the baseline, in ms, if any
/// (fixed-rate scenarios, where throughput is set and latency is the result).</param>
/// <param name="FixedRate">The rate is imposed, not found: warm-up is one settling window, not a
/// wait for the rate to stabilise.</param>
/// <param name="Counters">Things counted before and after the measured rounds (Redis commands,
/// token requests, exports, audit records), reported per gateway request.</param>
internal sealed record Scenario(
    string Key,
    string Title,
    string Load,
    IReadOnlyList<Target> Targets,
    double? MinRatio = null,
    double? MaxAddedP99 = null,
    bool FixedRate = false,
    IReadOnlyList<Counter>? Counters = null);

/// <summary>A target under one scenario's load.</summary>
/// <param name="Run">One load run of the given length.</param>
/// <param name="Probe">One request sent and checked before any load: a misconfigured target
/// answers a fast 401, and a benchmark of refusals measures nothing.</param>
/// <param name="Pid">The target's process, for a profiler to attach to.</param>
internal sealed record Target(string Name, Func<TimeSpan, Task<Measurement>> Run, Func<Task> Probe, int Pid)
{
    /// <summary>The issue's targets and the per-request counts are about the gateway's targets,
    /// not the references (nginx).</summary>
    public bool IsGateway => Name.StartsWith("AgentGateway", StringComparison.Ordinal);
}

/// <summary>A count read before and after the measured rounds.</summary>
/// <param name="MustGrow">The scenario is not what it claims if this stays still (no span
/// exported, no audit record written).</param>
internal sealed record Counter(string Name, Func<long> Read, bool MustGrow = false);

/// <param name="Counts">Each counter's growth during the measured rounds.</param>
/// <param name="GatewayRequests">Requests answered by the gateway's targets in those rounds.</param>
/// <param name="Seconds">Wall time of the measured rounds, all targets.</param>
internal sealed record ScenarioResult(Scenario Scenario, IReadOnlyDictionary<string, IReadOnlyList<Measurement>> Rounds, IReadOnlyDictionary<string, long> Counts, long GatewayRequests, double Seconds)
{
    public string Baseline => Scenario.Targets[0].Name;

    public double MedianRate(string target) => Median(Rounds[target].Select(m => m.Rate));

    public double MedianP99(string target) => Median(Rounds[target].Select(m => m.P99));

    /// <summary>Per round, the target's rate over the baseline's in the same round.</summary>
    public double[] Ratios(string target) => [.. Rounds[target].Zip(Rounds[Baseline], (t, b) => t.Rate / b.Rate)];

    public double MedianCpu(string target) => Median(Rounds[target].Select(m => m.CpuMicrosecondsPerRequest));

    /// <summary>Per round, the target's CPU time per request over the baseline's in the same
    /// round: what the target costs, whatever share of its core it was given.</summary>
    public double[] CpuRatios(string target) => [.. Rounds[target].Zip(Rounds[Baseline], (t, b) => t.CpuMicrosecondsPerRequest / b.CpuMicrosecondsPerRequest)];

    /// <summary>Rounds in which the target could not keep the fixed rate.</summary>
    public int Saturated(string target) => Rounds[target].Count(m => m.BehindSchedule is not null);

    /// <summary>Per round, the target's p99 minus the baseline's in the same round.</summary>
    public double[] AddedP99(string target) => [.. Rounds[target].Zip(Rounds[Baseline], (t, b) => t.P99 - b.P99)];

    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length == 0 ? double.NaN
            : sorted.Length % 2 == 1 ? sorted[sorted.Length / 2]
            : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
    }
}

/// <summary>Warm-up until the rate is stable, then alternating measured rounds.</summary>
internal static class Runner
{
    public static async Task<ScenarioResult> RunAsync(Scenario scenario, BenchOptions options)
    {
        Console.WriteLine();
        Console.WriteLine($"## {scenario.Key}: {scenario.Title}");
        Console.WriteLine($"   {scenario.Load}; {options.Rounds} round(s) of {options.Seconds} s, targets alternating");
        foreach (var target in scenario.Targets)
        {
            await target.Probe();
        }

        foreach (var target in scenario.Targets)
        {
            await WarmAsync(scenario, target, options);
        }

        var counters = scenario.Counters ?? [];
        var before = counters.Select(c => c.Read()).ToArray();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var rounds = scenario.Targets.ToDictionary(t => t.Name, _ => new List<Measurement>());
        for (var round = 0; round < options.Rounds; round++)
        {
            // A B C, then C B A: drift of the machine within a round falls on every target alike.
            var order = round % 2 == 0 ? scenario.Targets : scenario.Targets.Reverse();
            foreach (var target in order)
            {
                // A gateway that cannot keep a fixed rate is a result (saturated), reported as such;
                // a baseline that cannot means the load generator or the machine is the limit.
                rounds[target.Name].Add(Checked(scenario, target, await MeasuredAsync(target, TimeSpan.FromSeconds(options.Seconds)), allowBehind: target != scenario.Targets[0]));
            }
        }

        clock.Stop();
        var counts = counters.Select((c, i) => (c.Name, Delta: c.Read() - before[i])).ToDictionary(c => c.Name, c => c.Delta);
        var gatewayRequests = scenario.Targets.Where(t => t.IsGateway).Sum(t => rounds[t.Name].Sum(m => m.Requests));
        var result = new ScenarioResult(scenario, rounds.ToDictionary(r => r.Key, r => (IReadOnlyList<Measurement>)r.Value), counts, gatewayRequests, clock.Elapsed.TotalSeconds);
        Print(result);
        foreach (var counter in counters)
        {
            var delta = counts[counter.Name];
            Console.WriteLine($"   {counter.Name} during the measured rounds: {delta:N0} for {gatewayRequests:N0} gateway requests ({(double)delta / Math.Max(1, gatewayRequests):0.0000} per request)");
            if (counter.MustGrow && delta == 0)
            {
                throw new InvalidOperationException($"{scenario.Key}: no {counter.Name} during the measured rounds — the scenario does not measure what it says");
            }
        }

        return result;
    }

    /// <summary>One load run, with the CPU time the target's process used over it.</summary>
    public static async Task<Measurement> MeasuredAsync(Target target, TimeSpan duration)
    {
        var before = ProcessCpu.Of(target.Pid);
        var measurement = await target.Run(duration);
        return measurement with { Cpu = ProcessCpu.Of(target.Pid) - before };
    }

    /// <summary>Short windows until the rate is steady (<see cref="SteadyRate"/>: the last three
    /// agree within the tolerance and the runtime's tier-up work is done), at least
    /// <c>--warmup-min</c> seconds: tiered JIT and dynamic PGO keep improving code for seconds
    /// after the first requests, and a target measured early reads faster or slower than it is.</summary>
    public static async Task WarmAsync(Scenario scenario, Target target, BenchOptions options)
    {
        var window = TimeSpan.FromSeconds(options.WarmupWindow);
        var windows = new List<WarmupWindow>();
        var elapsed = 0;
        var stable = false;
        var kept = 0;
        var tiering = ProcessCpu.ThreadTicks(target.Pid, ProcessCpu.TieringWorker);
        var code = ProcessCpu.SharedKb(target.Pid);
        while (true)
        {
            var measurement = Checked(scenario, target, await target.Run(window), warmingUp: true);
            var now = ProcessCpu.ThreadTicks(target.Pid, ProcessCpu.TieringWorker);
            var codeNow = ProcessCpu.SharedKb(target.Pid);
            windows.Add(new WarmupWindow(measurement.Rate, ProcessCpu.TicksSince(tiering, now), codeNow - code));
            (tiering, code) = (now, codeNow);
            elapsed += options.WarmupWindow;
            if (scenario.FixedRate)
            {
                // The rate is imposed: warm once the schedule is kept, two windows running (a
                // cold target falls behind at first).
                kept = measurement.BehindSchedule is null ? kept + 1 : 0;
                stable = kept >= 2;
            }
            else
            {
                stable = elapsed >= options.WarmupMin && SteadyRate.IsSteady(windows, window, options.WarmupTolerance);
            }

            if (stable || elapsed >= options.WarmupMax)
            {
                break;
            }
        }

        var spread = windows.TakeLast(3).Select(w => w.Rate).ToArray();
        Console.WriteLine($"   warm-up {target.Name}: {string.Join(' ', windows.Select(w => w.Rate.ToString("0", CultureInfo.InvariantCulture)))} req/s → " +
            (stable ? $"{(scenario.FixedRate ? "on schedule" : "stable")} after {elapsed} s"
                : scenario.FixedRate ? $"still behind schedule after {elapsed} s"
                : $"NOT stable after {elapsed} s (last windows within {(spread.Max() - spread.Min()) / spread.Average():P0}, JIT {(windows.TakeLast(3).All(w => SteadyRate.IsQuiet(w, window)) ? "quiet" : "still compiling")}); measuring anyway"));
        if (windows.Any(w => w.Tiering > TimeSpan.Zero || w.CodeGrowthKb != 0))
        {
            Console.WriteLine($"   JIT per window, {target.Name}, tier-up worker CPU ms / code memory growth kB: {string.Join(' ', windows.Select(w => string.Create(CultureInfo.InvariantCulture, $"{w.Tiering.TotalMilliseconds:0}/{w.CodeGrowthKb}")))}");
        }
    }

    /// <param name="allowBehind">Behind a fixed schedule is a result to report, not an error.</param>
    private static Measurement Checked(Scenario scenario, Target target, Measurement measurement, bool warmingUp = false, bool allowBehind = false)
    {
        // A cold target may answer nothing in its first warm-up window; measured, that is a failure.
        if (measurement.Failures > 0 || (measurement.Requests == 0 && !warmingUp))
        {
            throw new InvalidOperationException($"{scenario.Key} → {target.Name}: {measurement.Failures:N0} failed of {measurement.Requests + measurement.Failures:N0} requests ({measurement.FailureDetail ?? "none answered within the window"}). A benchmark of refusals or errors measures nothing.");
        }

        return warmingUp || allowBehind || measurement.BehindSchedule is null
            ? measurement
            : throw new InvalidOperationException($"{scenario.Key} → {target.Name}: {measurement.BehindSchedule}. Lower --rate, or run on a quieter machine.");
    }

    private static void Print(ScenarioResult result)
    {
        var scenario = result.Scenario;
        var width = Math.Max(14, scenario.Targets.Max(t => t.Name.Length));
        Console.WriteLine($"   {"target".PadRight(width)} {"req/s",9} {"min–max",17} {"p50 ms",7} {"p99 ms",7} {"p99 min–max",13} {"CPU µs/req",10} {"min–max",13}");
        foreach (var target in scenario.Targets)
        {
            var rounds = result.Rounds[target.Name];
            Console.WriteLine($"   {target.Name.PadRight(width)} {result.MedianRate(target.Name),9:N0} {Range(rounds.Select(m => m.Rate), "N0"),17} {ScenarioResult.Median(rounds.Select(m => m.P50)),7:0.00} {result.MedianP99(target.Name),7:0.00} {Range(rounds.Select(m => m.P99), "0.00"),13} {result.MedianCpu(target.Name),10:0.0} {Range(rounds.Select(m => m.CpuMicrosecondsPerRequest), "0.0"),13}");
        }

        foreach (var target in scenario.Targets.Skip(1))
        {
            if (scenario.FixedRate)
            {
                var added = result.AddedP99(target.Name);
                var saturated = result.Saturated(target.Name);
                Console.WriteLine($"   {target.Name} adds {ScenarioResult.Median(added):0.00} ms of p99 over {result.Baseline} (rounds {Range(added, "0.00")}){Verdict(target, saturated == 0 && ScenarioResult.Median(added) <= scenario.MaxAddedP99, $"target ≤ {scenario.MaxAddedP99} ms")}");
                Console.WriteLine($"   {CpuLine(result, target.Name)}");
                if (saturated > 0)
                {
                    Console.WriteLine($"   {target.Name} SATURATED in {saturated} of {result.Rounds[target.Name].Count} rounds ({result.Rounds[target.Name].First(m => m.BehindSchedule is not null).BehindSchedule}): its p99 is a queue's, not the rate's");
                }
            }
            else
            {
                var ratios = result.Ratios(target.Name);
                Console.WriteLine($"   {target.Name} / {result.Baseline}: {ScenarioResult.Median(ratios):0.00} (rounds {Range(ratios, "0.00")}){Verdict(target, ScenarioResult.Median(ratios) >= scenario.MinRatio, $"target ≥ {scenario.MinRatio:0.00}")}");
                Console.WriteLine($"   {CpuLine(result, target.Name)}");
            }
        }

        string Verdict(Target target, bool? met, string what) => !target.IsGateway || (scenario.MinRatio is null && scenario.MaxAddedP99 is null) ? "" : met == true ? $"   {what}: met" : $"   {what}: NOT met";
    }

    /// <summary>The CPU-time ratio, said as the throughput ratio it would give on a core of its own,
    /// next to the req/s ratio, which a busy machine moves.</summary>
    public static string CpuLine(ScenarioResult result, string target)
    {
        var ratios = result.CpuRatios(target);
        var median = ScenarioResult.Median(ratios);
        return $"CPU per request, {target} / {result.Baseline}: {median:0.00} (rounds {Range(ratios, "0.00")}) — as a throughput ratio on equal cores: {1 / median:0.00}";
    }

    public static string Range(IEnumerable<double> values, string format)
    {
        var list = values.ToArray();
        return $"{list.Min().ToString(format, CultureInfo.InvariantCulture)}–{list.Max().ToString(format, CultureInfo.InvariantCulture)}";
    }
}
