using System.Globalization;

namespace AgentGateway.Bench;

/// <summary>
/// CPU time a process has used (user + system), from the kernel's own accounting in
/// <c>/proc/PID/stat</c>. Over a measured window, the change divided by the requests answered is
/// the CPU the target spent per request: unlike requests per second, it does not fall when other
/// processes take the target's core, so it is the figure that survives a busy machine.
/// </summary>
internal static class ProcessCpu
{
    // USER_HZ, the unit of utime and stime: part of the kernel's ABI (not CONFIG_HZ) and 100 on
    // every architecture .NET runs on (what sysconf(_SC_CLK_TCK) returns).
    private const double TicksPerSecond = 100;

    /// <summary>CPU time of the process and of its direct children (nginx works in its workers,
    /// whose time the master's own line does not count until they exit).</summary>
    public static TimeSpan Of(int pid)
    {
        var ticks = Ticks(File.ReadAllText($"/proc/{pid}/stat"));
        foreach (var child in Children(pid))
        {
            try
            {
                ticks += Ticks(File.ReadAllText($"/proc/{child}/stat"));
            }
            catch (IOException)
            {
                // The child ended between the listing and the read.
            }
        }

        return TimeSpan.FromSeconds(ticks / TicksPerSecond);
    }

    /// <summary>The name Linux shows (<c>/proc/PID/task/TID/comm</c>, cut to 15 characters) for
    /// the .NET runtime's tiered-compilation background worker, ".NET Tiered Compilation Worker".</summary>
    public const string TieringWorker = ".NET Tiered Com";

    /// <summary>CPU ticks used so far by each of the process's threads named
    /// <paramref name="thread"/>, by thread id. The runtime ends its tiering worker after a few
    /// idle seconds and starts a new one when work comes, so a window's use is taken per thread id
    /// (<see cref="TicksSince"/>), not from one running total.</summary>
    public static IReadOnlyDictionary<int, long> ThreadTicks(int pid, string thread)
    {
        var ticks = new Dictionary<int, long>();
        var tasks = $"/proc/{pid}/task";
        if (!Directory.Exists(tasks))
        {
            return ticks;
        }

        foreach (var task in Directory.EnumerateDirectories(tasks))
        {
            try
            {
                if (File.ReadAllText(Path.Combine(task, "comm")).TrimEnd('\n') == thread)
                {
                    ticks[int.Parse(Path.GetFileName(task), CultureInfo.InvariantCulture)] = Ticks(File.ReadAllText(Path.Combine(task, "stat")));
                }
            }
            catch (IOException)
            {
                // The thread ended between the listing and the read.
            }
        }

        return ticks;
    }

    /// <summary>The CPU time threads used between two <see cref="ThreadTicks"/> readings: a thread
    /// that is new since <paramref name="before"/> counts all its ticks; one that ended in between
    /// counts nothing (its last ticks are gone with it, at most one idle timeout's worth).</summary>
    public static TimeSpan TicksSince(IReadOnlyDictionary<int, long> before, IReadOnlyDictionary<int, long> after) =>
        TimeSpan.FromSeconds(after.Sum(t => t.Value - before.GetValueOrDefault(t.Key)) / TicksPerSecond);

    /// <summary>The process's resident shared memory in kB (<c>RssShmem</c> of <c>/proc/PID/status</c>):
    /// with W^X on (the runtime's default) the JIT writes code through a shared mapping, so this
    /// grows while methods are compiled. 0 when the process is gone or the field absent.</summary>
    public static long SharedKb(int pid)
    {
        try
        {
            return StatusKb(File.ReadAllText($"/proc/{pid}/status"), "RssShmem:");
        }
        catch (IOException)
        {
            return 0;
        }
    }

    /// <summary>One <c>Name:   123 kB</c> field of a <c>/proc/PID/status</c> text, in kB; 0 when absent.</summary>
    public static long StatusKb(string status, string field)
    {
        foreach (var line in status.Split('\n'))
        {
            if (line.StartsWith(field, StringComparison.Ordinal))
            {
                var value = line[field.Length..].Trim();
                return long.Parse(value.EndsWith(" kB", StringComparison.Ordinal) ? value[..^3] : value, CultureInfo.InvariantCulture);
            }
        }

        return 0;
    }

    /// <summary>utime + stime, in clock ticks, from one <c>/proc/PID/stat</c> line. The command
    /// name (field 2) is in parentheses and may itself hold spaces and parentheses, so the fields
    /// are counted from the last <c>)</c>: after it come state (field 3) … utime (14), stime (15).</summary>
    public static long Ticks(string stat)
    {
        var end = stat.LastIndexOf(')');
        if (end < 0)
        {
            throw new FormatException("not a /proc/PID/stat line: no command name in parentheses");
        }

        var fields = stat[(end + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length < 13)
        {
            throw new FormatException($"not a /proc/PID/stat line: {fields.Length} fields after the command name");
        }

        return long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
    }

    private static int[] Children(int pid)
    {
        var tasks = $"/proc/{pid}/task";
        if (!Directory.Exists(tasks))
        {
            return [];
        }

        // Each thread lists the children it started (Linux 3.5+, CONFIG_PROC_CHILDREN).
        return Directory.EnumerateDirectories(tasks)
            .Select(task => Path.Combine(task, "children"))
            .Where(File.Exists)
            .SelectMany(file => File.ReadAllText(file).Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Select(text => int.Parse(text, CultureInfo.InvariantCulture))
            .Distinct()
            .ToArray();
    }
}
