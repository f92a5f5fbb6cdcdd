using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using AgentGateway.Host;
using AgentGateway.Host.Sandbox;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Configuration;

// What the identity layer costs. One process starts a fast upstream, bare YARP with a static
// header (the ceiling for a YARP-based gateway), nginx with proxy_set_header when installed, and
// AgentGateway with the full pipeline (JWT validation, stripping, policy, a cached OAuth hop token
// with Redis when redis-server is installed, tracing with an exporter). The same closed-loop load
// is driven at each, alternating rounds so machine drift cancels, then a fixed moderate rate
// measures the p99 each adds over going direct.
//   dotnet run -c Release --project bench/AgentGateway.Bench -- [--seconds 5] [--rounds 2] [--connections 32] [--rate 500]
var seconds = Option("--seconds", 5);
var rounds = Option("--rounds", 2);
var connections = Option("--connections", 32);
var rate = Option("--rate", 500);

await using var upstream = await StartAsync(app => app.MapMethods("/{**path}", ["GET", "POST"], () => "ok"));
await using var yarp = await StartYarpAsync(Address(upstream));
await using var sink = await StartAsync(app => app.MapPost("/v1/{signal}", () => Microsoft.AspNetCore.Http.Results.Ok()));
var redis = StartRedis();
await using var idp = new DemoIdentityProvider();
await idp.StartAsync();
idp.AddClient("bench-agent", "bench-secret", "agentgateway");
idp.AddClient("crm-gateway", "crm-secret", "crm-api");
Environment.SetEnvironmentVariable("AGW_BENCH_CRM_SECRET", "crm-secret");
Environment.SetEnvironmentVariable("AGW_BENCH_CACHE_KEY", Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)));
var configFile = Path.Combine(Path.GetTempPath(), $"agentgateway-bench-{Guid.NewGuid():N}.json");
await File.WriteAllTextAsync(configFile, GatewayConfig(idp, Address(upstream), redis?.Address, Address(sink)).ToJsonString());
await using var gateway = GatewayHost.Build(configFile, ["--urls", "http://127.0.0.1:0"], b => b.Logging.ClearProviders());
await gateway.MapAgentGatewayAsync();
await gateway.StartAsync();
var nginx = StartNginx(Address(upstream));

var agentToken = idp.Mint("bench-agent", "agentgateway", TimeSpan.FromMinutes(50));
var targets = new List<(string Name, string Url, string? Token)>
{
    ("direct", Address(upstream) + "api/accounts", null),
    ("bare YARP", Address(yarp) + "api/accounts", null),
    ("AgentGateway", Address(gateway) + "api/accounts", agentToken),
};
if (nginx is not null)
{
    targets.Add(("nginx", nginx.Value.Url + "api/accounts", null));
}

Console.WriteLine($"AgentGateway benchmark — {Environment.ProcessorCount} cores, {connections} connections, {rounds} rounds of {seconds} s each, alternating");
Console.WriteLine($"  Redis: {(redis is null ? "not installed — the gateway runs in process only" : redis.Address)}; nginx: {(nginx is null ? "not installed — skipped" : "yes")}");
foreach (var (name, url, token) in targets)
{
    await RunClosedLoopAsync(url, token, TimeSpan.FromSeconds(1), connections); // warm-up (and the hop token's first fetch)
}

var redisBefore = redis?.CommandsProcessed();
var results = targets.ToDictionary(t => t.Name, _ => new List<Result>());
for (var round = 0; round < rounds; round++)
{
    foreach (var (name, url, token) in targets)
    {
        results[name].Add(await RunClosedLoopAsync(url, token, TimeSpan.FromSeconds(seconds), connections));
    }
}

var gatewayRequests = results["AgentGateway"].Sum(r => r.Requests);
var redisCommands = redis is null ? (long?)null : redis.CommandsProcessed() - redisBefore!.Value;

Console.WriteLine();
Console.WriteLine($"{"target",-14} {"req/s",10} {"p50 ms",8} {"p99 ms",8}");
foreach (var (name, list) in results)
{
    var merged = Result.Merge(list);
    Console.WriteLine($"{name,-14} {merged.RequestsPerSecond,10:0} {merged.P50,8:0.00} {merged.P99,8:0.00}");
}

var gatewayRps = Result.Merge(results["AgentGateway"]).RequestsPerSecond;
Console.WriteLine();
Console.WriteLine($"throughput AgentGateway / bare YARP: {gatewayRps / Result.Merge(results["bare YARP"]).RequestsPerSecond:0.00} (target ≥ 0.85)");
if (nginx is not null)
{
    Console.WriteLine($"throughput AgentGateway / nginx:     {gatewayRps / Result.Merge(results["nginx"]).RequestsPerSecond:0.00}");
}

Console.WriteLine();
Console.WriteLine($"At a fixed {rate} req/s for {seconds} s (open loop):");
var direct = await RunFixedRateAsync(targets[0].Url, null, rate, TimeSpan.FromSeconds(seconds));
Console.WriteLine($"  {"direct",-14} p99 {direct.P99,7:0.00} ms");
foreach (var (name, url, token) in targets.Skip(1))
{
    var measured = await RunFixedRateAsync(url, token, rate, TimeSpan.FromSeconds(seconds));
    Console.WriteLine($"  {name,-14} p99 {measured.P99,7:0.00} ms   adds {measured.P99 - direct.P99,6:0.00} ms over direct");
}

Console.WriteLine();
Console.WriteLine(redisCommands is null
    ? "Redis commands per gateway request: n/a (no Redis)"
    : $"Redis commands during the measured rounds: {redisCommands} for {gatewayRequests} gateway requests ({(double)redisCommands / Math.Max(1, gatewayRequests):0.0000} per request; warm caches need none)");
Console.WriteLine($"Process working set (all targets and the load generator share this process): {Process.GetCurrentProcess().WorkingSet64 / (1024 * 1024)} MB");

await gateway.StopAsync();
nginx?.Process.Kill();
redis?.Dispose();
File.Delete(configFile);
return 0;

int Option(string name, int fallback)
{
    var index = Array.IndexOf(args, name);
    return index >= 0 && index + 1 < args.Length && int.TryParse(args[index + 1], CultureInfo.InvariantCulture, out var value) ? value : fallback;
}

static string Address(WebApplication app) =>
    app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First().TrimEnd('/') + "/";

static async Task<WebApplication> StartAsync(Action<WebApplication> map)
{
    var builder = WebApplication.CreateSlimBuilder();
    builder.WebHost.UseUrls("http://127.0.0.1:0");
    builder.Logging.ClearProviders();
    var app = builder.Build();
    map(app);
    await app.StartAsync();
    return app;
}

static async Task<WebApplication> StartYarpAsync(string upstream)
{
    var builder = WebApplication.CreateSlimBuilder();
    builder.WebHost.UseUrls("http://127.0.0.1:0");
    builder.Logging.ClearProviders();
    builder.Services.AddReverseProxy().LoadFromMemory(
        [new RouteConfig
        {
            RouteId = "api",
            ClusterId = "c",
            Match = new RouteMatch { Path = "/{**rest}" },
            Transforms = [new Dictionary<string, string> { ["RequestHeader"] = "Authorization", ["Set"] = "Bearer static-hop-token" }],
        }],
        [new ClusterConfig { ClusterId = "c", Destinations = new Dictionary<string, DestinationConfig> { ["d"] = new() { Address = upstream } } }]);
    var app = builder.Build();
    app.MapReverseProxy();
    await app.StartAsync();
    return app;
}

static JsonObject GatewayConfig(DemoIdentityProvider idp, string upstream, string? redis, string otlp)
{
    var gateway = new JsonObject
    {
        ["Inbound"] = new JsonObject
        {
            ["Issuers"] = new JsonObject
            {
                ["bench"] = new JsonObject { ["Issuer"] = idp.Url, ["JwksUri"] = idp.Url + "jwks", ["Audiences"] = new JsonArray("agentgateway"), ["Algorithms"] = new JsonArray("ES256") },
            },
        },
        ["Agents"] = new JsonObject
        {
            ["bench-agent"] = new JsonObject
            {
                ["Owner"] = "bench@example.test",
                ["Identities"] = new JsonArray(new JsonObject { ["Issuer"] = "bench", ["Subject"] = "bench-agent" }),
                ["Grants"] = new JsonArray("api"),
            },
        },
        ["Grants"] = new JsonObject { ["api"] = new JsonObject { ["Routes"] = new JsonArray("api"), ["Methods"] = new JsonArray("GET"), ["Paths"] = new JsonArray("/api/**") } },
        ["Credentials"] = new JsonObject
        {
            ["crm"] = new JsonObject { ["Kind"] = "OAuthClientCredentials", ["TokenEndpoint"] = idp.Url + "token", ["ClientId"] = "crm-gateway", ["ClientSecret"] = "env:AGW_BENCH_CRM_SECRET" },
        },
    };
    if (redis is not null)
    {
        gateway["Redis"] = redis;
        gateway["Cache"] = new JsonObject { ["EncryptionKey"] = "env:AGW_BENCH_CACHE_KEY" };
    }

    return new JsonObject
    {
        ["OTEL_EXPORTER_OTLP_ENDPOINT"] = otlp,
        ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
        ["ReverseProxy"] = new JsonObject
        {
            ["Routes"] = new JsonObject
            {
                ["api"] = new JsonObject { ["ClusterId"] = "c", ["Match"] = new JsonObject { ["Path"] = "/api/{**rest}" }, ["Metadata"] = new JsonObject { ["Credential"] = "crm" } },
            },
            ["Clusters"] = new JsonObject { ["c"] = new JsonObject { ["Destinations"] = new JsonObject { ["d"] = new JsonObject { ["Address"] = upstream } } } },
        },
        ["Gateway"] = gateway,
    };
}

static RedisProcess? StartRedis()
{
    var binary = Binaries.Redis.FirstOrDefault(File.Exists);
    return binary is null ? null : RedisProcess.Start(binary);
}

static (Process Process, string Url)? StartNginx(string upstream)
{
    var binary = Binaries.Nginx.FirstOrDefault(File.Exists);
    if (binary is null)
    {
        return null;
    }

    var port = FreePort();
    var directory = Directory.CreateTempSubdirectory("agentgateway-bench-nginx-");
    var config = Path.Combine(directory.FullName, "nginx.conf");
    File.WriteAllText(config, $$"""
        worker_processes 1;
        pid {{directory.FullName}}/nginx.pid;
        error_log {{directory.FullName}}/error.log;
        events { worker_connections 1024; }
        http {
          access_log off;
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
    return (process, $"http://127.0.0.1:{port}/");
}

static int FreePort()
{
    using var listener = new TcpListener(IPAddress.Loopback, 0);
    listener.Start();
    return ((IPEndPoint)listener.LocalEndpoint).Port;
}

static HttpClient Client(int connections) => new(new SocketsHttpHandler { MaxConnectionsPerServer = connections, UseProxy = false, PooledConnectionLifetime = TimeSpan.FromMinutes(10) });

static async Task<Result> RunClosedLoopAsync(string url, string? token, TimeSpan duration, int connections)
{
    using var http = Client(connections);
    var stop = Stopwatch.StartNew();
    var latencies = new List<double>[connections];
    var failures = 0;
    await Task.WhenAll(Enumerable.Range(0, connections).Select(async worker =>
    {
        var mine = latencies[worker] = new List<double>(100_000);
        while (stop.Elapsed < duration)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, url);
            if (token is not null)
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            }

            var started = Stopwatch.GetTimestamp();
            using var response = await http.SendAsync(request);
            await response.Content.LoadIntoBufferAsync();
            mine.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            if (!response.IsSuccessStatusCode)
            {
                Interlocked.Increment(ref failures);
            }
        }
    }));
    if (failures > 0)
    {
        throw new InvalidOperationException($"{failures} requests to {url} failed: a benchmark of errors measures nothing");
    }

    return Result.From([.. latencies.SelectMany(l => l)], stop.Elapsed);
}

static async Task<Result> RunFixedRateAsync(string url, string? token, int perSecond, TimeSpan duration)
{
    using var http = Client(256);
    var latencies = new System.Collections.Concurrent.ConcurrentBag<double>();
    var interval = TimeSpan.FromSeconds(1.0 / perSecond);
    var stop = Stopwatch.StartNew();
    var pending = new List<Task>();
    for (var sent = 0; stop.Elapsed < duration; sent++)
    {
        var due = interval * sent;
        if (due > stop.Elapsed)
        {
            await Task.Delay(due - stop.Elapsed);
        }

        pending.Add(Task.Run(async () =>
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, url);
            if (token is not null)
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            }

            var started = Stopwatch.GetTimestamp();
            using var response = await http.SendAsync(request);
            await response.Content.LoadIntoBufferAsync();
            latencies.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        }));
    }

    await Task.WhenAll(pending);
    return Result.From([.. latencies], stop.Elapsed);
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

    public static Result Merge(List<Result> results) =>
        From([.. results.SelectMany(r => r.Sorted)], TimeSpan.FromTicks(results.Sum(r => r.Elapsed.Ticks)));

    private double Percentile(double p) => Sorted.Length == 0 ? 0 : Sorted[Math.Min(Sorted.Length - 1, (int)(p * Sorted.Length))];
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

    public static RedisProcess Start(string binary)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
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

/// <summary>Where Debian puts the reference servers.</summary>
internal static class Binaries
{
    public static readonly string[] Redis = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"];

    public static readonly string[] Nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"];
}
