namespace AgentGateway.Bench;

/// <summary>One warm-up window: the rate the target answered at, and the CPU time its runtime's
/// tiered-compilation worker used in the same window (zero for a target that has none, nginx).</summary>
internal readonly record struct WarmupWindow(double Rate, TimeSpan Tiering);

/// <summary>
/// When a target is warm enough to measure. Three windows of the same rate are not enough: a
/// .NET target sits on plateaus while its code is still in an instrumented or unoptimised tier
/// (a ReadyToRun gateway held 2,500 req/s for tens of seconds before tier-up took it to 8,000),
/// and a plateau agrees with itself. So a rate counts as steady only once the runtime has also
/// stopped rewriting the code: the tiered-compilation worker, the thread that compiles every
/// tier-up and installs call counters, was nearly idle in each of the same windows.
/// </summary>
internal static class SteadyRate
{
    /// <summary>The worker's share of a window below which the JIT counts as quiet: 1 % is one or
    /// two 10 ms ticks in a 2 s window, what an occasional late method costs, while tier-up in
    /// progress keeps the worker busy for tens to hundreds of milliseconds per window.</summary>
    public const double QuietTieringShare = 0.01;

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
        var quiet = last.All(w => w.Tiering <= window * QuietTieringShare);
        return agree && quiet;
    }
}
