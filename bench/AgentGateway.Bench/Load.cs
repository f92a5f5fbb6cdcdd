using System.Collections.Concurrent;
using System.Diagnostics;

namespace AgentGateway.Bench;

/// <summary>Builds the <paramref name="sequence"/>-th request of a run.</summary>
internal delegate HttpRequestMessage RequestFactory(long sequence);

/// <summary>The load generator: the same client, connection count and warm-up for every target.</summary>
internal static class Load
{
    /// <summary>A fixed number of connections, each sending its next request when the last is answered.</summary>
    public static async Task<Result> ClosedLoopAsync(RequestFactory next, TimeSpan duration, int connections)
    {
        using var http = Client(connections);
        var stop = Stopwatch.StartNew();
        var latencies = new List<double>[connections];
        var failures = 0;
        string? firstFailure = null;
        long sequence = 0;
        await Task.WhenAll(Enumerable.Range(0, connections).Select(async worker =>
        {
            var mine = latencies[worker] = new List<double>(100_000);
            while (stop.Elapsed < duration)
            {
                using var request = next(Interlocked.Increment(ref sequence));
                var started = Stopwatch.GetTimestamp();
                using var response = await http.SendAsync(request);
                var body = await response.Content.ReadAsStringAsync();
                mine.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                if (!response.IsSuccessStatusCode)
                {
                    Interlocked.Increment(ref failures);
                    Interlocked.CompareExchange(ref firstFailure, $"{(int)response.StatusCode} {body}", null);
                }
            }
        }));
        if (failures > 0)
        {
            // A benchmark of refusals measures nothing.
            throw new InvalidOperationException($"{failures} requests failed, the first with {firstFailure}");
        }

        return Result.From([.. latencies.SelectMany(l => l)], stop.Elapsed);
    }

    /// <summary>Requests sent on a fixed schedule whatever the answers do (open loop), so a slow
    /// answer cannot hide the ones queued behind it.</summary>
    public static async Task<Result> FixedRateAsync(RequestFactory next, int perSecond, TimeSpan duration)
    {
        using var http = Client(256);
        var latencies = new ConcurrentBag<double>();
        var interval = TimeSpan.FromSeconds(1.0 / perSecond);
        var stop = Stopwatch.StartNew();
        var pending = new List<Task>();
        for (var sent = 0L; stop.Elapsed < duration; sent++)
        {
            var due = interval * sent;
            if (due > stop.Elapsed)
            {
                await Task.Delay(due - stop.Elapsed);
            }

            var request = next(sent);
            pending.Add(Task.Run(async () =>
            {
                var started = Stopwatch.GetTimestamp();
                using (request)
                using (var response = await http.SendAsync(request))
                {
                    await response.Content.LoadIntoBufferAsync();
                    response.EnsureSuccessStatusCode();
                }

                latencies.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            }));
        }

        await Task.WhenAll(pending);
        return Result.From([.. latencies], stop.Elapsed);
    }

    private static HttpClient Client(int connections) =>
        new(new SocketsHttpHandler { MaxConnectionsPerServer = connections, UseProxy = false, PooledConnectionLifetime = TimeSpan.FromMinutes(10) });
}

internal sealed record Result(long Requests, TimeSpan Elapsed, double[] Sorted)
{
    public double RequestsPerSecond => Requests / Elapsed.TotalSeconds;

    public double P50 => Percentile(0.50);

    public double P99 => Percentile(0.99);

    public static Result From(double[] latencies, TimeSpan elapsed)
    {
        Array.Sort(latencies);
        return new Result(latencies.Length, elapsed, latencies);
    }

    public static Result Merge(IEnumerable<Result> results)
    {
        var list = results.ToList();
        return From([.. list.SelectMany(r => r.Sorted)], TimeSpan.FromTicks(list.Sum(r => r.Elapsed.Ticks)));
    }

    private double Percentile(double p) => Sorted.Length == 0 ? 0 : Sorted[Math.Min(Sorted.Length - 1, (int)(p * Sorted.Length))];
}
