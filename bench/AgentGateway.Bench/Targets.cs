using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace AgentGateway.Bench;

/// <summary>
/// A target running in its own process, pinned to its own cores with <c>taskset</c>, so its
/// memory is its own and it gets exactly the cores it is measured on. The child ends when its
/// standard input closes, so a benchmark that dies takes its children with it.
/// </summary>
/// <param name="Url">The HTTP/1.1 listener.</param>
/// <param name="H2cUrl">The HTTP/2 cleartext (prior knowledge) listener: Kestrel serves h2c only
/// on an endpoint that speaks HTTP/2 alone.</param>
internal sealed class ChildProcess(Process process, string url, string h2cUrl) : IAsyncDisposable
{
    public string Url { get; } = url;

    public string H2cUrl { get; } = h2cUrl;

    public int Id => process.Id;

    /// <summary>Starts one of this program's own roles (<c>--role NAME ARGS</c>), which prints
    /// <c>listening</c> once it serves.</summary>
    public static async Task<ChildProcess> StartRoleAsync(CpuSet cpus, string role, params string[] args)
    {
        var (http, h2c) = (FreePort(), FreePort());
        var process = Start(cpus, [.. SelfCommand(), "--role", role, .. args, Text(http), Text(h2c)], environment: null);
        var timeout = Task.Delay(TimeSpan.FromSeconds(30));
        while (true)
        {
            var line = process.StandardOutput.ReadLineAsync();
            if (await Task.WhenAny(line, timeout) == timeout || await line is not { } text)
            {
                process.Kill();
                throw new InvalidOperationException($"role '{role}' did not start: {await process.StandardError.ReadToEndAsync()}");
            }

            if (text.StartsWith("listening", StringComparison.Ordinal))
            {
                _ = process.StandardOutput.ReadToEndAsync();
                _ = process.StandardError.ReadToEndAsync();
                return new ChildProcess(process, $"http://127.0.0.1:{http}/", $"http://127.0.0.1:{h2c}/");
            }
        }
    }

    /// <summary>Starts the shipped <c>agentgateway</c> command itself — the product as operators
    /// run it, with its own runtime settings — and waits for <c>/readyz</c>. Its listeners are in
    /// the configuration (<see cref="BenchConfig.Listeners"/>).</summary>
    public static async Task<ChildProcess> StartGatewayAsync(CpuSet cpus, string binary, string configFile, (int Http, int H2c) ports, IReadOnlyDictionary<string, string> environment)
    {
        var url = $"http://127.0.0.1:{ports.Http}/";
        var process = Start(cpus, [binary, "run", "--config", configFile], environment);
        _ = process.StandardOutput.ReadToEndAsync();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(1) };
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(60))
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
                    return new ChildProcess(process, url, $"http://127.0.0.1:{ports.H2c}/");
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
        throw new InvalidOperationException("agentgateway did not become ready in 60 s");
    }

    public MemorySnapshot Memory() => MemorySnapshot.Of(process.Id);

    public async ValueTask DisposeAsync()
    {
        if (!process.HasExited)
        {
            process.StandardInput.Close();
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }

        process.Dispose();
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Every process the benchmark starts goes through <c>taskset</c>, which executes the
    /// command in place (same pid), pinned.</summary>
    public static Process Start(CpuSet cpus, IReadOnlyList<string> command, IReadOnlyDictionary<string, string>? environment)
    {
        var info = new ProcessStartInfo(Tools.Locate("taskset"))
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var arg in (IEnumerable<string>)["-c", cpus.ToString(), .. command])
        {
            info.ArgumentList.Add(arg);
        }

        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[name] = value;
        }

        return Process.Start(info)!;
    }

    private static string[] SelfCommand()
    {
        // Under `dotnet run` the apphost is the process; under `dotnet X.dll` it is dotnet itself.
        var path = Environment.ProcessPath!;
        return Path.GetFileNameWithoutExtension(path) == "dotnet"
            ? [path, typeof(ChildProcess).Assembly.Location]
            : [path];
    }

    private static string Text(int value) => value.ToString(CultureInfo.InvariantCulture);
}

/// <summary>Resident set from the kernel's own accounting (<c>/proc/PID/status</c>), split into
/// anonymous memory (GC heaps, stacks), mapped files (the runtime and assemblies, shared with any
/// other process that maps them) and shared memory (with W^X, on by default, the runtime maps
/// JIT-compiled code through it).</summary>
internal sealed record MemorySnapshot(long RssMb, long PeakMb, long AnonymousMb, long FileMb, long SharedMb)
{
    public static MemorySnapshot Of(int pid)
    {
        var status = File.ReadAllLines($"/proc/{pid}/status");
        return new MemorySnapshot(Mb("VmRSS:"), Mb("VmHWM:"), Mb("RssAnon:"), Mb("RssFile:"), Mb("RssShmem:"));

        long Mb(string field) =>
            long.Parse(status.First(l => l.StartsWith(field, StringComparison.Ordinal))[field.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) / 1024;
    }

    public override string ToString() => $"{RssMb} MB ({AnonymousMb} / {FileMb} / {SharedMb})";
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
        _admin = StackExchange.Redis.ConnectionMultiplexer.Connect(address + ",allowAdmin=true,connectRetry=20");
    }

    public string Address { get; }

    public static RedisProcess Start(CpuSet cpus)
    {
        var port = ChildProcess.FreePort();
        var process = ChildProcess.Start(cpus, [Tools.Locate("redis-server"), "--port", port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], environment: null);
        _ = process.StandardOutput.ReadToEndAsync();
        _ = process.StandardError.ReadToEndAsync();
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

/// <summary>An nginx of the benchmark's own (its own prefix, pid file and logs; never the system
/// service), pinned with its workers to the given cores, one worker per core.</summary>
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

    public int Id => _process.Id;

    /// <summary>
    /// The upstream every target forwards to: <c>return 200</c> from nginx costs a fraction of
    /// what any .NET server would on the load generator's cores. It also checks what it is sent,
    /// so a misrouted request fails the run instead of being counted: the agent's own token must
    /// never arrive (403), and a hop credential must (401).
    /// </summary>
    public static NginxProcess StartUpstream(CpuSet cpus, string agentToken) => Start(cpus, "upstream", port => $$"""
        map "$http_authorization$http_x_api_key" $no_credential { "" 1; default 0; }
        server {
          listen 127.0.0.1:{{port}} backlog=4096;
          keepalive_requests 1000000;
          location = /mcp {
            if ($http_authorization = "Bearer {{agentToken}}") { return 403; }
            if ($no_credential) { return 401; }
            default_type application/json;
            return 200 '{{Roles.ToolResult}}';
          }
          location / {
            if ($http_authorization = "Bearer {{agentToken}}") { return 403; }
            if ($no_credential) { return 401; }
            default_type text/plain;
            return 200 'ok';
          }
        }
        """);

    /// <summary>nginx as a user would otherwise deploy it in front: upstream keep-alive and a
    /// static header. A reference, not a baseline.</summary>
    public static NginxProcess StartReverseProxy(CpuSet cpus, string upstream) => Start(cpus, "proxy", port => $$"""
        upstream u { server {{new Uri(upstream).Authority}}; keepalive 64; }
        server {
          listen 127.0.0.1:{{port}} backlog=4096;
          keepalive_requests 1000000;
          location / {
            proxy_pass http://u;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Authorization "Bearer static-hop-token";
          }
        }
        """);

    private static NginxProcess Start(CpuSet cpus, string name, Func<int, string> server)
    {
        var port = ChildProcess.FreePort();
        var directory = Directory.CreateTempSubdirectory($"agentgateway-bench-nginx-{name}-");
        var config = Path.Combine(directory.FullName, "nginx.conf");
        File.WriteAllText(config, $$"""
            worker_processes {{cpus.Count}};
            pid {{directory.FullName}}/nginx.pid;
            error_log {{directory.FullName}}/error.log;
            events { worker_connections 4096; }
            http {
              access_log off;
              client_body_temp_path {{directory.FullName}};
              proxy_temp_path {{directory.FullName}};
            {{server(port)}}
            }
            """);
        var process = ChildProcess.Start(cpus, [Tools.Locate("nginx"), "-p", directory.FullName, "-e", Path.Combine(directory.FullName, "error.log"), "-c", config, "-g", "daemon off;"], environment: null);
        _ = process.StandardOutput.ReadToEndAsync();
        var url = $"http://127.0.0.1:{port}/";
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                using var client = new TcpClient();
                client.Connect(IPAddress.Loopback, port);
                return new NginxProcess(process, directory, url);
            }
            catch (SocketException) when (!process.HasExited && deadline.Elapsed < TimeSpan.FromSeconds(10))
            {
                Thread.Sleep(50);
            }
            catch (SocketException)
            {
                var reason = process.HasExited ? process.StandardError.ReadToEnd() : "not listening after 10 s";
                process.Kill(entireProcessTree: true);
                directory.Delete(recursive: true);
                throw new InvalidOperationException($"nginx ({name}) did not start: {reason}");
            }
        }
    }

    public void Dispose()
    {
        // The workers are the master's children.
        _process.Kill(entireProcessTree: true);
        _process.Dispose();
        _directory.Delete(recursive: true);
    }
}
