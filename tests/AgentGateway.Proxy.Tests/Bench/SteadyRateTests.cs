using AgentGateway.Bench;

namespace AgentGateway.Proxy.Tests.Bench;

public sealed class SteadyRateTests
{
    private static readonly TimeSpan Window = TimeSpan.FromSeconds(2);

    private static WarmupWindow W(double rate, int tieringMs, long codeKb = 0) => new(rate, TimeSpan.FromMilliseconds(tieringMs), codeKb);

    [Fact]
    public void A_plateau_that_agrees_with_itself_while_tier_up_runs_is_not_steady()
    {
        // The ReadyToRun run: 2,500 req/s for window after window while the worker compiled.
        WarmupWindow[] windows = [W(1800, 900), W(2500, 400), W(2510, 350), W(2490, 300)];

        Assert.False(SteadyRate.IsSteady(windows, Window, tolerance: 0.03));
    }

    [Fact]
    public void Agreeing_rates_once_tier_up_is_done_are_steady()
    {
        WarmupWindow[] windows = [W(2500, 400), W(8100, 60), W(7000, 10), W(7900, 0), W(8000, 10), W(8050, 0), W(8020, 20)];

        Assert.True(SteadyRate.IsSteady(windows, Window, tolerance: 0.03));
    }

    [Fact]
    public void One_busy_window_among_the_last_three_is_enough_to_wait()
    {
        WarmupWindow[] windows = [W(8000, 0), W(8050, 50), W(8020, 0)];

        Assert.False(SteadyRate.IsSteady(windows, Window, tolerance: 0.03));
    }

    [Fact]
    public void A_plateau_while_methods_are_still_first_compiled_is_not_steady()
    {
        // Before tier-up starts the worker idles: the code written on the request threads shows it.
        WarmupWindow[] windows = [W(700, 0, 9000), W(1000, 0, 2400), W(1010, 10, 800), W(1005, 0, 300)];

        Assert.False(SteadyRate.IsSteady(windows, Window, tolerance: 0.03));
        Assert.True(SteadyRate.IsSteady([.. windows, W(900, 0, 8), W(950, 0, 4), W(1000, 0, 8), W(1002, 0, 0), W(1001, 10, 64)], Window, tolerance: 0.03));
    }

    [Fact]
    public void RssShmem_is_read_from_a_status_text_in_kB()
    {
        const string Status = "Name:\tagentgateway\nVmRSS:\t  139264 kB\nRssAnon:\t   46080 kB\nRssShmem:\t   23552 kB\nThreads:\t27\n";

        Assert.Equal(23552, ProcessCpu.StatusKb(Status, "RssShmem:"));
        Assert.Equal(0, ProcessCpu.StatusKb(Status, "RssHuge:"));
        Assert.True(ProcessCpu.SharedKb(Environment.ProcessId) >= 0);
    }

    [Fact]
    public void A_few_quiet_windows_between_tier_up_bursts_are_not_enough()
    {
        // Measured on a pinned core gateway: three quiet windows at 1,800 req/s, 14-18 s in.
        WarmupWindow[] windows = [W(1800, 260, 388), W(1811, 320, 728), W(1810, 10, 32), W(1805, 10, 16), W(1800, 20, 24)];

        Assert.False(SteadyRate.IsSteady(windows, Window, tolerance: 0.03));
    }

    [Fact]
    public void A_quiet_runtime_whose_rate_still_moves_is_not_steady()
    {
        WarmupWindow[] windows = [W(7000, 0), W(8000, 0), W(8050, 0)];

        Assert.False(SteadyRate.IsSteady(windows, Window, tolerance: 0.03));
    }

    [Fact]
    public void Fewer_than_three_windows_or_a_window_with_no_answer_is_not_steady()
    {
        Assert.False(SteadyRate.IsSteady([W(8000, 0), W(8000, 0)], Window, tolerance: 0.03));
        Assert.False(SteadyRate.IsSteady([W(0, 0), W(0, 0), W(0, 0)], Window, tolerance: 0.03));
    }

    [Fact]
    public void A_fixed_rate_is_kept_when_answers_end_on_schedule_not_when_they_only_start_on_it()
    {
        // 300 req/s for 2 s, sent on schedule (h2load pipelines); answered in 2 ms, or queued.
        const long Epoch = 1_790_000_000_000_000;
        var onTime = Enumerable.Range(0, 600).Select(i => (Epoch + (i * 1_000_000L / 300), 2.0)).ToArray();
        var queued = Enumerable.Range(0, 600).Select(i => (Epoch + (i * 1_000_000L / 300), 2.0 + (i * 50.0))).ToArray();

        Assert.InRange(SteadyRate.KeptRate(onTime), 290, 301);
        Assert.True(SteadyRate.KeptRate(queued) < 30);
        Assert.Equal(0, SteadyRate.KeptRate([(Epoch, 2.0)]));
    }

    [Fact]
    public void A_target_without_a_tiering_worker_is_judged_by_its_rate_alone()
    {
        // nginx: no such thread, so no tier-up time is ever read.
        WarmupWindow[] windows = [W(20000, 0), W(24000, 0), W(25000, 0), W(25300, 0), W(25100, 0)];

        Assert.True(SteadyRate.IsSteady(windows, Window, tolerance: 0.03));
    }

    [Fact]
    public void A_window_counts_each_thread_by_id_new_ones_in_full_ended_ones_not_at_all()
    {
        // Thread 10 ran on (5 ticks more), 11 ended, 12 is the runtime's new worker (3 ticks).
        var before = new Dictionary<int, long> { [10] = 40, [11] = 7 };
        var after = new Dictionary<int, long> { [10] = 45, [12] = 3 };

        Assert.Equal(TimeSpan.FromMilliseconds(80), ProcessCpu.TicksSince(before, after));
    }

    [Fact]
    public void The_threads_of_a_name_are_found_in_this_process_with_their_cpu_time()
    {
        using var stop = new ManualResetEventSlim();
        var busy = new Thread(() =>
        {
            while (!stop.IsSet)
            {
            }
        })
        { Name = "agw-steady-test", IsBackground = true };
        busy.Start();
        try
        {
            // The kernel accounts in 10 ms ticks: spin until one shows (bounded).
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            IReadOnlyDictionary<int, long> found;
            do
            {
                found = ProcessCpu.ThreadTicks(Environment.ProcessId, "agw-steady-test");
            }
            while ((found.Count == 0 || found.Values.Single() == 0) && DateTime.UtcNow < deadline);

            Assert.Single(found);
            Assert.True(found.Values.Single() > 0);
            Assert.Empty(ProcessCpu.ThreadTicks(Environment.ProcessId, "agw-no-such-th"));
        }
        finally
        {
            stop.Set();
            busy.Join();
        }
    }
}
