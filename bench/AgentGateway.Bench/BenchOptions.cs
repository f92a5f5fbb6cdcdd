using System.Globalization;

namespace AgentGateway.Bench;

/// <summary>The command line. Unknown options are refused rather than ignored: a typo in a
/// benchmark's options silently measures something else.</summary>
internal sealed record BenchOptions
{
    public const string Usage = """
        dotnet run -c Release --project bench/AgentGateway.Bench -- [options]
          --scenarios LIST       comma-separated, in this order (default: all):
                                 core, full, mcp, obo, h2, fixed, trio
          --target-cpus SET      cores of the target under test (taskset list; default 0)
          --load-cpus SET        cores of wrk/h2load, this process, Redis and the trace receiver
                                 (default: every other core)
          --upstream-cpus SET    cores of the nginx upstream (default: the load cores)
          --seconds N            one measured round (default 5)
          --rounds N             alternating rounds per target, at least 3 for a spread (default 3)
          --connections N        wrk connections and h2load HTTP/1.1 connections (default 32)
          --h2-connections N     h2load HTTP/2 connections (default 4)
          --h2-streams N         concurrent streams on each of them (default 8)
          --users N              distinct user tokens in the on-behalf-of scenario (default 1000)
          --warmup-window N      seconds per warm-up window (default 2)
          --warmup-min N         warm at least this long (default 10)
          --warmup-max N         give up waiting for a stable rate after this long (default 60)
          --warmup-tolerance F   stable: the last 3 windows within this fraction (default 0.03),
                                 and the runtime's JIT quiet for the last 5 windows
          --rate N               the fixed rate in req/s (default: half bare YARP's core-route rate)
          --trio-seconds N       load on three gateways sharing one Redis (default 15)
          --hold N               profiling: warm the first scenario's AgentGateway, then hold its
                                 load for N seconds (printing the pid), and exit
          --hold-baseline        with --hold: hold bare YARP instead, to profile both the same way
          --no-otlp, --no-audit  the full pipeline without trace export, without the audit log
          --gateway DIR          another build of agentgateway (a publish output)
        dotnet run -c Release --project bench/AgentGateway.Bench -- --profile-report TRACE.speedscope.json
        """;

    public static readonly string[] AllScenarios = ["core", "full", "mcp", "obo", "h2", "fixed", "trio"];

    public required IReadOnlyList<string> Scenarios { get; init; }

    public required CpuSet TargetCpus { get; init; }

    public required CpuSet LoadCpus { get; init; }

    public required CpuSet UpstreamCpus { get; init; }

    public int Seconds { get; init; } = 5;

    public int Rounds { get; init; } = 3;

    public int Connections { get; init; } = 32;

    public int H2Connections { get; init; } = 4;

    public int H2Streams { get; init; } = 8;

    public int Users { get; init; } = 1000;

    public int WarmupWindow { get; init; } = 2;

    public int WarmupMin { get; init; } = 10;

    public int WarmupMax { get; init; } = 60;

    public double WarmupTolerance { get; init; } = 0.03;

    public int? Rate { get; init; }

    public int TrioSeconds { get; init; } = 15;

    public int Hold { get; init; }

    public bool HoldBaseline { get; init; }

    public bool Otlp { get; init; } = true;

    public bool Audit { get; init; } = true;

    public string? GatewayDirectory { get; init; }

    public static BenchOptions Parse(string[] args)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        var flags = new HashSet<string>(StringComparer.Ordinal);
        string[] valued = ["--scenarios", "--target-cpus", "--load-cpus", "--upstream-cpus", "--seconds", "--rounds", "--connections", "--h2-connections", "--h2-streams", "--users", "--warmup-window", "--warmup-min", "--warmup-max", "--warmup-tolerance", "--rate", "--trio-seconds", "--hold", "--gateway"];
        string[] switches = ["--no-otlp", "--no-audit", "--hold-baseline"];
        for (var i = 0; i < args.Length; i++)
        {
            if (valued.Contains(args[i]) && i + 1 < args.Length)
            {
                values[args[i]] = args[++i];
            }
            else if (switches.Contains(args[i]))
            {
                flags.Add(args[i]);
            }
            else
            {
                throw new ArgumentException($"unknown option or missing value: {args[i]}");
            }
        }

        var scenarios = values.TryGetValue("--scenarios", out var list) ? list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) : AllScenarios;
        if (scenarios.Except(AllScenarios).FirstOrDefault() is { } unknown)
        {
            throw new ArgumentException($"--scenarios: unknown scenario '{unknown}' (known: {string.Join(", ", AllScenarios)})");
        }

        var all = CpuSet.Parse("0-" + (Environment.ProcessorCount - 1).ToString(CultureInfo.InvariantCulture));
        var target = values.TryGetValue("--target-cpus", out var t) ? CpuSet.Parse(t) : CpuSet.Parse("0");
        var load = values.TryGetValue("--load-cpus", out var l) ? CpuSet.Parse(l) : all.Except(target);
        var upstream = values.TryGetValue("--upstream-cpus", out var u) ? CpuSet.Parse(u) : load;
        if (target.Overlaps(load) || target.Overlaps(upstream))
        {
            // The whole point: the target's cores are its own.
            throw new ArgumentException($"--target-cpus {target} must not share a core with --load-cpus {load} or --upstream-cpus {upstream}");
        }

        return new BenchOptions
        {
            Scenarios = [.. AllScenarios.Where(scenarios.Contains)],
            TargetCpus = target,
            LoadCpus = load,
            UpstreamCpus = upstream,
            Seconds = Int("--seconds", 5, min: 1),
            Rounds = Int("--rounds", 3, min: 1),
            Connections = Int("--connections", 32, min: 1),
            H2Connections = Int("--h2-connections", 4, min: 1),
            H2Streams = Int("--h2-streams", 8, min: 1),
            Users = Int("--users", 1000, min: 1),
            WarmupWindow = Int("--warmup-window", 2, min: 1),
            WarmupMin = Int("--warmup-min", 10, min: 0),
            WarmupMax = Int("--warmup-max", 60, min: 1),
            WarmupTolerance = values.TryGetValue("--warmup-tolerance", out var f) ? double.Parse(f, CultureInfo.InvariantCulture) : 0.03,
            Rate = values.ContainsKey("--rate") ? Int("--rate", 0, min: 1) : null,
            TrioSeconds = Int("--trio-seconds", 15, min: 1),
            Hold = Int("--hold", 0, min: 0),
            HoldBaseline = flags.Contains("--hold-baseline"),
            Otlp = !flags.Contains("--no-otlp"),
            Audit = !flags.Contains("--no-audit"),
            GatewayDirectory = values.GetValueOrDefault("--gateway"),
        };

        int Int(string name, int fallback, int min)
        {
            if (!values.TryGetValue(name, out var text))
            {
                return fallback;
            }

            return int.TryParse(text, CultureInfo.InvariantCulture, out var value) && value >= min
                ? value
                : throw new ArgumentException($"{name}: '{text}' is not a whole number ≥ {min}");
        }
    }
}

/// <summary>A set of cores as <c>taskset -c</c> writes it (<c>0</c>, <c>1-3</c>, <c>0,2</c>).</summary>
internal sealed record CpuSet(IReadOnlyList<int> Cores)
{
    public int Count => Cores.Count;

    public static CpuSet Parse(string text)
    {
        var cores = new SortedSet<int>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var range = part.Split('-');
            var first = int.Parse(range[0], CultureInfo.InvariantCulture);
            var last = range.Length == 2 ? int.Parse(range[1], CultureInfo.InvariantCulture) : first;
            if (range.Length > 2 || first < 0 || last < first || last >= Environment.ProcessorCount)
            {
                throw new ArgumentException($"'{text}' is not a set of this machine's cores 0-{Environment.ProcessorCount - 1}");
            }

            for (var core = first; core <= last; core++)
            {
                cores.Add(core);
            }
        }

        return cores.Count > 0 ? new CpuSet([.. cores]) : throw new ArgumentException($"'{text}' names no core");
    }

    public CpuSet Except(CpuSet other)
    {
        var rest = Cores.Except(other.Cores).ToArray();
        // One core only: the load has to share it. Said in the header, never silently.
        return rest.Length > 0 ? new CpuSet(rest) : this;
    }

    public bool Overlaps(CpuSet other) => Cores.Intersect(other.Cores).Any();

    public override string ToString() => string.Join(',', Cores);
}
