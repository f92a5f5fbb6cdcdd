namespace AgentGateway.Bench;

/// <summary>One warm-up window: the rate the target answered at, the CPU time its runtime's
/// tiered-compilation worker used in the same window, and how much its shared memory grew (where
/// the runtime maps the code it compiles, W^X being on by default); both zero for a target that
/// has no JIT (nginx).</summary>
internal readonly record struct WarmupWindow(double Rate, TimeSpan Tiering, long CodeGrowthKb = 0);

/// <summary>
/// When a target is warm enough to measure. Three windows of the same rate are not enough: a
/// .NET target sits on plateaus while its code is still in an instrumented or unoptimised tier
/// (a ReadyToRun gateway held 2,500 req/s for tens of seconds before tier-up took it to 8,000),
/// and a plateau agrees with itself. So a rate counts as steady only once the runtime has also
/// stopped writing code, for the last <see cref="QuietWindows"/> windows: the tiered-compilation worker, the thread
/// that compiles every tier-up and installs call counters, was nearly idle, and the memory the
/// JIT writes code into (the first compilation of a method happens on the thread that calls it,
/// before tier-up starts, and the worker is idle then) hardly grew.
/// </summary>
internal static class SteadyRate
{
    /// <summary>The worker's share of a window below which the JIT counts as quiet: 1 % is one or
    /// two 10 ms ticks in a 2 s window, what an occasional late method costs, while tier-up in
    /// progress keeps the worker busy for tens to hundreds of milliseconds per window.</summary>
    public const double QuietTieringShare = 0.01;

    /// <summary>The code-memory growth per window below which the JIT counts as quiet: a few pages,
    /// what a late method or stub costs; first compilation and tier-up write megabytes.</summary>
    public const long QuietCodeGrowthKb = 64;

    /// <summary>How many windows in a row the JIT must have been quiet. Tier-up comes in bursts:
    /// in the slow first phase of a pinned gateway (1,500-2,000 req/s for about 60 s) the runtime
    /// mostly waits for its call counters, and two or three quiet windows fell between bursts
    /// (measured: 10/32, 10/16, 20/24 ms/kB at 14-18 s); the last burst came after about 80 s.</summary>
    public const int QuietWindows = 5;

    /// <param name="windows">Every warm-up window so far, oldest first.</param>
    /// <param name="window">The length of one window.</param>
    /// <param name="tolerance">The largest spread of the last three rates, as a fraction of their mean.</param>
    public static bool IsSteady(IReadOnlyList<WarmupWindow> windows, TimeSpan window, double tolerance)
    {
        if (windows.Count < 3)
        {
            return false;
        }

        var last = windows.Skip(windows.Count - 3).ToArray();
        var rates = last.Select(w => w.Rate).ToArray();
        var agree = rates.Min() > 0 && (rates.Max() - rates.Min()) / rates.Average() <= tolerance;
        var quiet = windows.Skip(Math.Max(0, windows.Count - QuietWindows)).All(w => IsQuiet(w, window));
        return agree && quiet;
    }

    /// <summary>Whether the runtime wrote (nearly) no code in <paramref name="w"/>.</summary>
    public static bool IsQuiet(WarmupWindow w, TimeSpan window) =>
        w.Tiering <= window * QuietTieringShare && w.CodeGrowthKb <= QuietCodeGrowthKb;

    /// <summary>
    /// The rate at which the answered requests were answered: their count over the time from the
    /// first one's start to the last one's end. An open-loop figure is only meaningful if the
    /// schedule was kept. h2load sends on schedule even to a target that has stopped keeping up (it
    /// pipelines), so the starts alone look on time while the answers queue; the ends show it. The
    /// edges of a run (connections opening, answers cut off by its end) do not count against it.
    /// </summary>
    /// <param name="answered">Start in µs since the epoch, latency in ms, of each answered request.</param>
    public static double KeptRate(IReadOnlyList<(long Start, double Latency)> answered)
    {
        if (answered.Count < 2)
        {
            return 0;
        }

        var first = answered.Min(a => a.Start);
        var lastEnd = answered.Max(a => a.Start + (a.Latency * 1000));
        return (answered.Count - 1) / ((lastEnd - first) / 1e6);
    }
}
