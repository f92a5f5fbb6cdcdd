using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace AgentGateway.Bench;

/// <summary>
/// A target running in its own process, so its memory is its own and it competes with the load
/// generator for the cores exactly as a real deployment would. The child ends when its standard
/// input closes, so a benchmark that dies takes its children with it.
/// </summary>
internal sealed class ChildProcess : IAsyncDisposable
{
    private readonly Process _process;

    private ChildProcess(Process process, string url)
    {
        _process = process;
        Url = url;
    }

    public string Url { get; }

    public int Id => _process.Id;

    /// <summary>Starts one of this program's own roles (<c>--role NAME ARGS</c>), which prints
    /// <c>listening URL</c> once it serves.</summary>
    public static async Task<ChildProcess> StartRoleAsync(string role, params string[] args)
    {
        var process = Start(SelfCommand(), ["--role", role, .. args], environment: null);
        var timeout = Task.Delay(TimeSpan.FromSeconds(30));
        while (true)
        {
            var line = process.StandardOutput.ReadLineAsync();
            if (await Task.WhenAny(line, timeout) == timeout || await line is not { } text)
            {
                process.Kill();
                throw new InvalidOperationException($"role '{role}' did not start: {await process.StandardError.ReadToEndAsync()}");
            }

            if (text.StartsWith("listening ", StringComparison.Ordinal))
            {
                _ = process.StandardOutput.ReadToEndAsync();
                return new ChildProcess(process, text["listening ".Length..]);
            }
        }
    }

    /// <summary>Starts the shipped <c>agentgateway</c> command itself — the product as operators
    /// run it, with its own runtime settings — and waits for <c>/readyz</c>.</summary>
    public static async Task<ChildProcess> StartGatewayAsync(string binary, string configFile, IReadOnlyDictionary<string, string> environment)
    {
        var port = FreePort();
        var url = $"http://127.0.0.1:{port}/";
        var process = Start([binary], ["run", "--config", configFile, "--urls", url.TrimEnd('/')], environment);
        _ = process.StandardOutput.ReadToEndAsync();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(1) };
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(30))
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"agentgateway exited with {process.ExitCode}: {await process.StandardError.ReadToEndAsync()}");
            }

            try
            {
                using var response = await http.GetAsync(url + "readyz");
                if (response.IsSuccessStatusCode)
                {
                    _ = process.StandardError.ReadToEndAsync();
                    return new ChildProcess(process, url);
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }
            catch (TaskCanceledException)
            {
                // Not answering yet.
            }

            await Task.Delay(100);
        }

        process.Kill();
        throw new InvalidOperationException("agentgateway did not become ready in 30 s");
    }

    /// <summary>Resident set size now and at its peak, from the kernel's own accounting; and now,
    /// how much of it is anonymous memory (heaps, JIT code, stacks) and how much is mapped files
    /// (the runtime and the assemblies, shared with any other process that maps them).</summary>
    public (long CurrentMb, long PeakMb, long AnonymousMb, long FileMb) Memory()
    {
        var status = File.ReadAllLines($"/proc/{_process.Id}/status");
        return (Kilobytes("VmRSS:") / 1024, Kilobytes("VmHWM:") / 1024, Kilobytes("RssAnon:") / 1024, Kilobytes("RssFile:") / 1024);

        long Kilobytes(string field) =>
            long.Parse(status.First(l => l.StartsWith(field, StringComparison.Ordinal))[field.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.StandardInput.Close();
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static string[] SelfCommand()
    {
        // Under `dotnet run` the apphost is the process; under `dotnet X.dll` it is dotnet itself.
        var path = Environment.ProcessPath!;
        return Path.GetFileNameWithoutExtension(path) == "dotnet"
            ? [path, typeof(ChildProcess).Assembly.Location]
            : [path];
    }

    private static Process Start(string[] command, string[] args, IReadOnlyDictionary<string, string>? environment)
    {
        var info = new ProcessStartInfo(command[0])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var arg in command.Skip(1).Concat(args))
        {
            info.ArgumentList.Add(arg);
        }

        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[name] = value;
        }

        return Process.Start(info)!;
    }
}

/// <summary>A redis-server of the benchmark's own, on a free port, whose command count is read before and after.</summary>
internal sealed class RedisProcess : IDisposable
{
    private readonly Process _process;
    private readonly StackExchange.Redis.ConnectionMultiplexer _admin;

    private RedisProcess(Process process, string address)
    {
        _process = process;
        Address = address;
        _admin = StackExchange.Redis.ConnectionMultiplexer.Connect(address + ",allowAdmin=true");
    }

    public string Address { get; }

    public static RedisProcess? TryStart()
    {
        var binary = Binaries.Redis.FirstOrDefault(File.Exists);
        if (binary is null)
        {
            return null;
        }

        var port = ChildProcess.FreePort();
        var process = Process.Start(new ProcessStartInfo(binary, ["--port", port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]) { RedirectStandardOutput = true })!;
        Thread.Sleep(300);
        return new RedisProcess(process, $"127.0.0.1:{port}");
    }

    public long CommandsProcessed()
    {
        var info = _admin.GetServer(_admin.GetEndPoints()[0]).Info("stats").SelectMany(g => g).First(p => p.Key == "total_commands_processed");
        return long.Parse(info.Value, CultureInfo.InvariantCulture);
    }

    public void Dispose()
    {
        _admin.Dispose();
        _process.Kill();
        _process.Dispose();
    }
}

/// <summary>nginx as a user would otherwise deploy it: one worker, upstream keep-alive, a static header.</summary>
internal sealed class NginxProcess : IDisposable
{
    private readonly Process _process;
    private readonly DirectoryInfo _directory;

    private NginxProcess(Process process, DirectoryInfo directory, string url)
    {
        _process = process;
        _directory = directory;
        Url = url;
    }

    public string Url { get; }

    public static NginxProcess? TryStart(string upstream)
    {
        var binary = Binaries.Nginx.FirstOrDefault(File.Exists);
        if (binary is null)
        {
            return null;
        }

        var port = ChildProcess.FreePort();
        var directory = Directory.CreateTempSubdirectory("agentgateway-bench-nginx-");
        var config = Path.Combine(directory.FullName, "nginx.conf");
        File.WriteAllText(config, $$"""
            worker_processes 1;
            pid {{directory.FullName}}/nginx.pid;
            error_log {{directory.FullName}}/error.log;
            events { worker_connections 1024; }
            http {
              access_log off;
              client_body_temp_path {{directory.FullName}};
              upstream u { server {{new Uri(upstream).Authority}}; keepalive 64; }
              server {
                listen 127.0.0.1:{{port}};
                location / {
                  proxy_pass http://u;
                  proxy_http_version 1.1;
                  proxy_set_header Connection "";
                  proxy_set_header Authorization "Bearer static-hop-token";
                }
              }
            }
            """);
        var process = Process.Start(new ProcessStartInfo(binary, ["-c", config, "-g", "daemon off;"]) { RedirectStandardError = true })!;
        Thread.Sleep(500);
        return new NginxProcess(process, directory, $"http://127.0.0.1:{port}/");
    }

    public void Dispose()
    {
        // The workers are the master's children.
        _process.Kill(entireProcessTree: true);
        _process.Dispose();
        _directory.Delete(recursive: true);
    }
}

/// <summary>Where Debian puts the reference servers.</summary>
internal static class Binaries
{
    public static readonly string[] Redis = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"];

    public static readonly string[] Nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"];
}
