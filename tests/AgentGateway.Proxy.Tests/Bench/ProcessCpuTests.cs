using System.Diagnostics;
using AgentGateway.Bench;

namespace AgentGateway.Proxy.Tests.Bench;

public sealed class ProcessCpuTests
{
    [Fact]
    public void Utime_and_stime_are_fields_14_and_15_of_a_stat_line()
    {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime …
        const string Stat = "29343 (cat) R 29339 29339 27279 0 -1 4194304 100 0 0 0 1234 567 89 10 20 0 1 0 4371930 3133440 380";

        Assert.Equal(1234 + 567, ProcessCpu.Ticks(Stat));
    }

    [Theory]
    [InlineData("dotnet worker")]
    [InlineData("a) R 1 2 3 (b")]
    [InlineData(")")]
    public void A_command_name_with_spaces_or_parentheses_does_not_shift_the_fields(string command)
    {
        var stat = $"7 ({command}) S 1 7 7 0 -1 4194560 10 0 0 0 42 8 0 0 20 0 12 0 100 200 300";

        Assert.Equal(50, ProcessCpu.Ticks(stat));
    }

    [Theory]
    [InlineData("")]
    [InlineData("7 (cut short) S 1 7")]
    public void A_line_that_is_not_a_stat_line_is_refused(string stat) =>
        Assert.Throws<FormatException>(() => ProcessCpu.Ticks(stat));

    [Fact]
    public void This_process_has_used_the_cpu_time_the_runtime_says_it_has()
    {
        // Some work first, so the figure is not zero ticks.
        var until = Stopwatch.StartNew();
        while (until.ElapsedMilliseconds < 50)
        {
        }

        var runtime = Process.GetCurrentProcess().TotalProcessorTime;
        var proc = ProcessCpu.Of(Environment.ProcessId);

        // Both read the same kernel counters (ticks of 10 ms); other threads keep running between
        // the two reads, and children (none expected, but the test host may start some) add.
        Assert.InRange(proc, runtime - TimeSpan.FromMilliseconds(20), runtime + TimeSpan.FromSeconds(5));
        Assert.True(proc > TimeSpan.Zero);
    }
}
