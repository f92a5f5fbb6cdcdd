using System.Text.Json;

namespace AgentGateway.Bench;

/// <summary>
/// Reads a <c>dotnet-trace</c> sampled trace converted to Speedscope and prints where the busy
/// time goes. The sampler takes every managed thread's stack about every 10 ms whatever the
/// thread is doing, and marks the top of each stack as managed code running (CPU_TIME) or native
/// code (UNMANAGED_CODE_TIME). Threads parked in a wait (thread pool, timers, the socket event
/// loop's epoll, the config file watcher) dominate the raw samples; they are set aside here, so
/// what remains is close to a CPU profile: managed code, and native calls made while working
/// (socket sends and receives, crypto).
/// </summary>
internal static class ProfileReport
{
    private static readonly string[] Waits =
    [
        "System.Threading.Monitor.Wait", "System.Threading.WaitHandle.Wait", "System.Threading.LowLevelLifoSemaphore.Wait",
        "System.Threading.LowLevelMonitor.Wait", "System.IO.FileSystemWatcher", "System.Threading.Thread.Sleep",
    ];

    public static int Print(string file, int top)
    {
        using var document = JsonDocument.Parse(File.ReadAllBytes(file));
        var frames = document.RootElement.GetProperty("shared").GetProperty("frames").EnumerateArray().Select(f => f.GetProperty("name").GetString()!).ToArray();
        var exclusive = new Dictionary<string, double>();
        var inclusive = new Dictionary<string, double>();
        var assemblies = new Dictionary<string, double>();
        double all = 0, busy = 0;
        foreach (var profile in document.RootElement.GetProperty("profiles").EnumerateArray())
        {
            var stack = new List<int>();
            double? last = null;
            foreach (var e in profile.GetProperty("events").EnumerateArray())
            {
                var at = e.GetProperty("at").GetDouble();
                if (last is { } since && stack.Count > 0)
                {
                    Account(stack, at - since);
                }

                if (e.GetProperty("type").GetString() == "O")
                {
                    stack.Add(e.GetProperty("frame").GetInt32());
                }
                else
                {
                    stack.RemoveAt(stack.Count - 1);
                }

                last = at;
            }
        }

        Console.WriteLine($"{Path.GetFileName(file)}: {all / 1000:0.0} thread-seconds sampled, {busy / 1000:0.0} busy ({busy / all:P0}); shares below are of the busy time");
        Console.WriteLine();
        Console.WriteLine("By assembly (exclusive: where the time is spent, natively called code charged to its caller)");
        foreach (var (name, time) in assemblies.OrderByDescending(a => a.Value).Take(top))
        {
            Console.WriteLine($"  {time / busy,6:P1}  {name}");
        }

        Console.WriteLine();
        Console.WriteLine("Methods, exclusive");
        foreach (var (name, time) in exclusive.OrderByDescending(a => a.Value).Take(top))
        {
            Console.WriteLine($"  {time / busy,6:P1}  {Short(name)}");
        }

        Console.WriteLine();
        Console.WriteLine("AgentGateway's own methods, inclusive (what each costs with everything it calls)");
        foreach (var (name, time) in inclusive.Where(i => i.Key.StartsWith("AgentGateway", StringComparison.Ordinal)).OrderByDescending(a => a.Value).Take(top))
        {
            Console.WriteLine($"  {time / busy,6:P1}  {Short(name)}");
        }

        return 0;

        void Account(List<int> stack, double time)
        {
            all += time;
            var names = stack.Select(i => frames[i]).ToArray();
            var leaf = names[^1];
            // The first real method under the sampler's marker frame (and any unnamed native frames).
            var method = names.Reverse().Skip(1).FirstOrDefault(n => !n.StartsWith('?') && !n.StartsWith("Missing Symbol", StringComparison.Ordinal)) ?? "?";
            var native = leaf == "UNMANAGED_CODE_TIME";
            if (native && (names.Any(n => Waits.Any(w => n.Contains(w, StringComparison.Ordinal))) || method.Contains("SocketAsyncEngine.EventLoop", StringComparison.Ordinal)))
            {
                // Parked: waiting for work, a timer, a socket event or a file change.
                return;
            }

            busy += time;
            exclusive[method] = exclusive.GetValueOrDefault(method) + time;
            var assembly = method.Split('!')[0];
            assemblies[assembly] = assemblies.GetValueOrDefault(assembly) + time;
            foreach (var name in names.Distinct())
            {
                inclusive[name] = inclusive.GetValueOrDefault(name) + time;
            }
        }
    }

    private static string Short(string frame)
    {
        // "Assembly!Namespace.Type.Method(args)" → "Type.Method", enough to find it.
        var name = frame.Split('!').Last();
        var paren = name.IndexOf('(', StringComparison.Ordinal);
        name = paren > 0 ? name[..paren] : name;
        var parts = name.Split('.');
        return parts.Length > 2 ? string.Join('.', parts[^2..]) : name;
    }
}
