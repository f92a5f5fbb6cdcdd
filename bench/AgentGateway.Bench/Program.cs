using System.Globalization;
using System.Security.Cryptography;
using AgentGateway.Bench;
using AgentGateway.Sandbox;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

// What the identity layer costs, per core. Every target runs in its own process pinned with
// taskset to its own core(s): bare YARP with a static header (the ceiling for a YARP-based
// gateway), nginx as a reverse proxy (a reference), and the shipped `agentgateway` command in two
// configurations — the core route and the full pipeline. The load generators (wrk for HTTP/1.1,
// h2load for HTTP/2 and for a fixed rate), this process (the issuer, the trace receiver), Redis
// and the nginx upstream run on the other cores. Each target is warmed until its rate is stable,
// then targets alternate in measured rounds; ratios are taken against bare YARP in the same run.
//   dotnet run -c Release --project bench/AgentGateway.Bench -- [--help for the options]
if (args is ["--role", var role, .. var roleArgs])
{
    return await Roles.RunAsync(role, roleArgs);
}

if (args.Contains("--pgbench"))
{
    // The database hop: pgbench through the gateway against PgBouncer and direct (PgBench.cs).
    return await PgBench.RunAsync(args);
}

if (args is ["--profile-report", var trace])
{
    // bench/PROFILING.md: a dotnet-trace sample, converted to Speedscope, summarised.
    return ProfileReport.Print(trace, top: 20);
}

BenchOptions options;
try
{
    options = BenchOptions.Parse(args);
}
catch (Exception ex) when (ex is ArgumentException or FormatException)
{
    Console.Error.WriteLine(args is ["--help"] ? "" : ex.Message);
    Console.Error.WriteLine(BenchOptions.Usage);
    return 2;
}

var missing = Tools.Required.Where(t => Tools.Find(t.Command) is null).ToArray();
if (missing.Length > 0)
{
    // The benchmark installs nothing itself.
    Console.Error.WriteLine($"missing: {string.Join(", ", missing.Select(m => m.Command))}. On Debian:");
    Console.Error.WriteLine($"  apt-get install -y {string.Join(' ', missing.Select(m => m.Package).Distinct())}");
    return 2;
}

// Another build of the gateway to measure (a publish output, say ReadyToRun); by default the
// `agentgateway` built beside this program.
var gatewayBinary = Path.GetFullPath(Path.Combine(options.GatewayDirectory ?? AppContext.BaseDirectory, "agentgateway"));
if (!File.Exists(gatewayBinary))
{
    Console.Error.WriteLine($"--gateway: no agentgateway program at {gatewayBinary}");
    return 2;
}

try
{
    return await BenchAsync();
}
catch (InvalidOperationException ex)
{
    Console.Error.WriteLine();
    Console.Error.WriteLine($"FAILED: {ex.Message}");
    return 1;
}

async Task<int> BenchAsync()
{
    // This process issues tokens and receives traces: it belongs with the load, off the target's
    // cores. -a: every thread the runtime has started so far; later ones inherit.
    await Tools.RunAsync([Tools.Locate("taskset"), "-a", "-p", "-c", options.LoadCpus.ToString(), Environment.ProcessId.ToString(CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(10));
    var loadAtStart = LoadAverage();
    Console.WriteLine($"AgentGateway benchmark — {Environment.ProcessorCount} cores ({CpuModel()}), .NET {Environment.Version}, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
    Console.WriteLine($"  targets on core(s) {options.TargetCpus}; load generators, issuer, trace receiver and Redis on {options.LoadCpus}; nginx upstream on {options.UpstreamCpus}");
    Console.WriteLine($"  load average at start: {loadAtStart:0.00}{(loadAtStart > 0.5 ? " — other processes are using the cores: treat these numbers as noise" : "")}");
    Console.WriteLine($"  gateway: {gatewayBinary}; warm-up: {options.WarmupWindow} s windows until 3 agree within {options.WarmupTolerance:P0} with tier-up done, {options.WarmupMin}–{options.WarmupMax} s");
    if (options.Rounds < 3)
    {
        Console.WriteLine($"  {options.Rounds} round(s): too few for a spread; a smoke run, not a measurement");
    }

    var work = Directory.CreateTempSubdirectory("agentgateway-bench-");
    try
    {
        return await MeasureAsync(work, loadAtStart);
    }
    finally
    {
        work.Delete(recursive: true);
    }
}

async Task<int> MeasureAsync(DirectoryInfo work, double loadAtStart)
{
    await using var idp = new DemoIdentityProvider();
    await idp.StartAsync();
    idp.AddClient("bench-agent", "bench-secret", "agentgateway");
    idp.AddClient("crm-gateway", "crm-secret", "crm-api");
    idp.AddClient("obo-gateway", "obo-secret", "crm-api");
    idp.AddClient("crm-trio", "trio-secret", "crm-api", TimeSpan.FromMinutes(1));
    var agentToken = idp.Mint("bench-agent", "agentgateway", TimeSpan.FromMinutes(50));
    var userTokens = Enumerable.Range(0, options.Users).Select(i => idp.Mint($"user-{i}", "agentgateway", TimeSpan.FromMinutes(50), authorizedParty: "bench-agent")).ToArray();

    await using var sink = await TraceReceiver.StartAsync();
    using var redis = RedisProcess.Start(options.LoadCpus);
    using var upstream = NginxProcess.StartUpstream(options.UpstreamCpus, agentToken);
    await using var yarp = await ChildProcess.StartRoleAsync(options.TargetCpus, "yarp", upstream.Url);
    using var nginx = NginxProcess.StartReverseProxy(options.TargetCpus, upstream.Url);
    var environment = new Dictionary<string, string>
    {
        ["AGW_BENCH_API_KEY"] = "bench-api-key",
        ["AGW_BENCH_CRM_SECRET"] = "crm-secret",
        ["AGW_BENCH_OBO_SECRET"] = "obo-secret",
        ["AGW_BENCH_TRIO_SECRET"] = "trio-secret",
        ["AGW_BENCH_CACHE_KEY"] = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)),
        // "Every span exported", also once the gateway honours the standard sampler settings.
        ["OTEL_TRACES_SAMPLER"] = "always_on",
    };
    var auditFile = Path.Combine(work.FullName, "audit.jsonl");
    await using var core = await StartGatewayAsync("core", BenchConfig.Core(idp.Url, upstream.Url, "AGW_BENCH_API_KEY"));
    await using var full = await StartGatewayAsync("full", BenchConfig.Gateway(idp.Url, upstream.Url, redis.Address, options.Otlp ? sink.Url : null, options.Audit ? auditFile : null, "crm-gateway", "AGW_BENCH_CRM_SECRET"));
    var idle = new[] { yarp, core, full }.ToDictionary(p => p, p => p.Memory());

    var wrk = new Wrk(options.LoadCpus, options.Connections, work);
    var h2load = new H2load(options.LoadCpus, work);
    var bearer = new Dictionary<string, string> { ["Authorization"] = "Bearer " + agentToken };
    var get = new RequestSpec("GET", "/api/accounts", bearer);
    var toolCall = new RequestSpec("POST", "/mcp", new Dictionary<string, string>(bearer) { ["Content-Type"] = "application/json", ["Accept"] = "application/json, text/event-stream" }, BenchConfig.ToolCallBody);
    // Every request a different user's token (wrk's Lua rotates it), so every request needs a
    // different exchanged token from the cache. Bare YARP is sent the same headers.
    var onBehalf = new RequestSpec("GET", "/obo/accounts", bearer, Rotate: new RotatingHeader("Subject-Token", userTokens));
    string[] without = [.. new[] { options.Otlp ? null : "no export", options.Audit ? null : "no audit" }.OfType<string>()];
    var fullName = "AgentGateway full" + (without.Length == 0 ? "" : $" ({string.Join(", ", without)})");
    var processes = new (string Name, ChildProcess Process)[] { ("bare YARP", yarp), ("AgentGateway core", core), (fullName, full) };
    Counter[] fullCounters =
    [
        new("Redis commands", redis.CommandsProcessed),
        new("token-endpoint requests", () => idp.TokenRequests("crm-gateway") + idp.TokenRequests("obo-gateway")),
        new("OTLP export requests", () => sink.Exports, MustGrow: options.Otlp),
        new("audit records", () => CountLines(auditFile), MustGrow: options.Audit),
    ];

    Target Wrk(string name, string url, RequestSpec spec, int pid) =>
        new(name, duration => wrk.RunAsync(url, spec, duration), () => Load.ProbeAsync(name, url, spec), pid);
    Target H2(string name, string url, RequestSpec spec, int pid) =>
        new(name, duration => h2load.ClosedAsync(url, spec, duration, options.H2Connections, options.H2Streams), () => Load.ProbeAsync(name, url, spec, http2: true), pid);
    Target Fixed(string name, string url, double rate, int pid) =>
        new(name, duration => h2load.FixedRateAsync(url, get, duration, rate, options.Connections, pipeline: 8), () => Load.ProbeAsync(name, url, get), pid);

    // To add a scenario: a key in BenchOptions.AllScenarios and an entry here whose targets start
    // with the baseline. A target is any load run that returns a Measurement (another tool too).
    var catalog = new Dictionary<string, Func<Scenario>>
    {
        ["core"] = () => new("core", "core route — agent JWT validated (cached), strip, grant, API-key inject; no Redis, no export, no audit", wrk.Describe,
            [Wrk("bare YARP", yarp.Url, get, yarp.Id), Wrk("nginx", nginx.Url, get, nginx.Id), Wrk("AgentGateway core", core.Url, get, core.Id)], MinRatio: 0.85),
        ["full"] = () => new("full", "full pipeline — cached OAuth hop token shared through Redis, every span exported over OTLP to a local receiver, audit log", wrk.Describe,
            [Wrk("bare YARP", yarp.Url, get, yarp.Id), Wrk(fullName, full.Url, get, full.Id)], MinRatio: 0.70, Counters: fullCounters),
        ["mcp"] = () => new("mcp", "MCP tools/call, body inspected and decided per call (full pipeline)", wrk.Describe + ", POST body from a Lua script",
            [Wrk("bare YARP", yarp.Url, toolCall, yarp.Id), Wrk(fullName, full.Url, toolCall, full.Id)], MinRatio: 0.65, Counters: fullCounters),
        ["obo"] = () => new("obo", $"on behalf of {options.Users:N0} users — token exchange, each request another user's token (full pipeline)", wrk.Describe + ", Subject-Token rotated by a Lua script",
            [Wrk("bare YARP", yarp.Url, onBehalf, yarp.Id), Wrk(fullName, full.Url, onBehalf, full.Id)], Counters: fullCounters),
        ["h2"] = () => new("h2", "HTTP/2 — the core route over cleartext HTTP/2", h2load.DescribeClosed(options.H2Connections, options.H2Streams),
            [H2("bare YARP", yarp.H2cUrl, get, yarp.Id), H2("AgentGateway core", core.H2cUrl, get, core.Id)]),
    };

    if (options.Hold > 0)
    {
        return await HoldAsync(catalog[options.Scenarios.First(catalog.ContainsKey)]());
    }

    // The on-behalf-of scenario reads every user's exchanged token from the cache; fetching them
    // is a cold start, not the steady state measured.
    if (options.Scenarios.Contains("obo"))
    {
        Console.WriteLine();
        Console.WriteLine($"Exchanging {options.Users:N0} user tokens once (cold cache)…");
        await Load.ClosedLoopAsync([full.Url], onBehalf, TimeSpan.FromMinutes(5), options.Connections, count: options.Users);
    }

    var results = new Dictionary<string, ScenarioResult>();
    foreach (var key in options.Scenarios.Where(catalog.ContainsKey))
    {
        results[key] = await Runner.RunAsync(catalog[key](), options);
    }

    if (options.Scenarios.Contains("fixed"))
    {
        var baseline = Wrk("bare YARP", yarp.Url, get, yarp.Id);
        var capacity = options.Rate is not null ? double.NaN
            : results.TryGetValue("core", out var coreResult) ? coreResult.MedianRate("bare YARP")
            : await CapacityAsync(baseline);
        var rate = options.Rate ?? Math.Round(capacity / 2);
        results["fixed"] = await Runner.RunAsync(
            new Scenario("fixed", $"p99 at a fixed {rate:N0} req/s{(options.Rate is null ? $", half bare YARP's {capacity:N0} req/s on the core route" : "")} — GET on the core route and the full pipeline", H2load.DescribeFixed(options.Connections, 8),
                [Fixed("bare YARP", yarp.Url, rate, yarp.Id), Fixed("AgentGateway core", core.Url, rate, core.Id), Fixed(fullName, full.Url, rate, full.Id)],
                MaxAddedP99: 0.3, FixedRate: true),
            options);
    }

    // Only the processes this run loaded: an idle one's "after load" would flatter it.
    var loaded = results.Values.SelectMany(r => r.Scenario.Targets).Select(t => t.Name).ToHashSet();
    var afterLoad = processes.Where(p => loaded.Contains(p.Name)).ToDictionary(p => p.Name, p => p.Process.Memory());
    Console.WriteLine();
    Console.WriteLine("## Resident set (MB, from /proc: anonymous — GC heaps, stacks / mapped files — runtime, assemblies / shared — JIT code under W^X)");
    Console.WriteLine($"   {"process",-18} {"idle after start",-22} {"after load",-22} {"peak",5}");
    foreach (var (name, process) in processes.Where(p => afterLoad.ContainsKey(p.Name)))
    {
        Console.WriteLine($"   {name,-18} {idle[process],-22} {afterLoad[name],-22} {afterLoad[name].PeakMb,5}");
    }

    var exitCode = 0;
    if (options.Scenarios.Contains("trio"))
    {
        exitCode = await TrioAsync();
    }

    var loadAtEnd = LoadAverage();
    Console.WriteLine();
    Console.WriteLine($"Load average at the end: {loadAtEnd:0.00}{(Math.Max(loadAtStart, loadAtEnd) > 0.5 ? " (busy machine: preliminary at best)" : "")}");
    PrintSummary(results, afterLoad);
    return exitCode;

    async Task<ChildProcess> StartGatewayAsync(string name, System.Text.Json.Nodes.JsonObject config)
    {
        var ports = (ChildProcess.FreePort(), ChildProcess.FreePort());
        var file = Path.Combine(work.FullName, $"gateway-{name}.json");
        await File.WriteAllTextAsync(file, BenchConfig.Listeners(config, ports.Item1, ports.Item2).ToJsonString());
        return await ChildProcess.StartGatewayAsync(options.TargetCpus, gatewayBinary, file, ports, environment);
    }

    async Task<double> CapacityAsync(Target baseline)
    {
        await baseline.Probe();
        var scenario = new Scenario("capacity", "", "", [baseline]);
        await Runner.WarmAsync(scenario, baseline, options);
        return (await baseline.Run(TimeSpan.FromSeconds(options.Seconds))).Rate;
    }

    async Task<int> HoldAsync(Scenario scenario)
    {
        // For a profiler: the gateway warmed under the scenario's load, then the same load held
        // while dotnet-trace or dotnet-counters attach to the printed pid (see bench/PROFILING.md).
        var target = options.HoldBaseline ? scenario.Targets.First(t => !t.IsGateway) : scenario.Targets.Last(t => t.IsGateway);
        await target.Probe();
        Console.WriteLine();
        Console.WriteLine($"## {scenario.Key}: {scenario.Title}");
        await Runner.WarmAsync(scenario, target, options);
        Console.WriteLine($"HOLDING {scenario.Key} load on {target.Name} pid {target.Pid} for {options.Hold} s");
        var held = await Runner.MeasuredAsync(target, TimeSpan.FromSeconds(options.Hold));
        Console.WriteLine($"held: {held.Rate:N0} req/s, p50 {held.P50:0.00} ms, p99 {held.P99:0.00} ms, CPU {held.CpuMicrosecondsPerRequest:0.0} µs per request, {held.Failures} failures");
        return held.Failures == 0 ? 0 : 1;
    }

    async Task<int> TrioAsync()
    {
        // Not a speed figure: three cold gateways on one Redis, under load within one hop
        // token's 60 s life, must fetch that token exactly once between them.
        Console.WriteLine();
        Console.WriteLine($"## trio: three cold gateways on one Redis, {options.TrioSeconds} s of load within one 60 s hop token's life");
        var config = BenchConfig.Gateway(idp.Url, upstream.Url, redis.Address, sink.Url, audit: null, "crm-trio", "AGW_BENCH_TRIO_SECRET");
        var trio = new List<ChildProcess>();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                trio.Add(await StartGatewayAsync($"trio-{i}", (System.Text.Json.Nodes.JsonObject)config.DeepClone()));
            }

            var answered = await Load.ClosedLoopAsync([.. trio.Select(t => t.Url)], get, TimeSpan.FromSeconds(options.TrioSeconds), options.Connections);
            var calls = idp.TokenRequests("crm-trio");
            Console.WriteLine($"   {answered:N0} requests spread over three processes; token-endpoint calls: {calls} (expected exactly 1){(calls == 1 ? "" : " — NOT as expected")}");
            return calls == 1 ? 0 : 1;
        }
        finally
        {
            foreach (var instance in trio)
            {
                await instance.DisposeAsync();
            }
        }
    }
}

void PrintSummary(Dictionary<string, ScenarioResult> results, Dictionary<string, MemorySnapshot> afterLoad)
{
    Console.WriteLine();
    Console.WriteLine("## Summary (medians; the range over rounds in brackets)");
    Console.WriteLine("| scenario | bare YARP req/s | AgentGateway req/s | ratio | target | met | CPU per request, AgentGateway / bare YARP |");
    Console.WriteLine("|---|---|---|---|---|---|---|");
    foreach (var (key, result) in results.Where(r => !r.Value.Scenario.FixedRate))
    {
        var gateway = result.Scenario.Targets.Last(t => t.IsGateway).Name;
        var ratios = result.Ratios(gateway);
        var ratio = ScenarioResult.Median(ratios);
        var minimum = result.Scenario.MinRatio;
        Console.WriteLine($"| {key} | {result.MedianRate("bare YARP"):N0} | {result.MedianRate(gateway):N0} | {ratio:0.00} ({Runner.Range(ratios, "0.00")}) | {(minimum is null ? "—" : $"≥ {minimum:0.00}")} | {(minimum is null ? "—" : ratio >= minimum ? "yes" : "**no**")} | {ScenarioResult.Median(result.CpuRatios(gateway)):0.00} ({Runner.Range(result.CpuRatios(gateway), "0.00")}) |");
    }

    if (results.TryGetValue("fixed", out var fixedRate))
    {
        foreach (var target in fixedRate.Scenario.Targets.Where(t => t.IsGateway))
        {
            var added = fixedRate.AddedP99(target.Name);
            var median = ScenarioResult.Median(added);
            var saturated = fixedRate.Saturated(target.Name) > 0;
            Console.WriteLine($"| p99 added, {target.Name} | {fixedRate.MedianP99("bare YARP"):0.00} ms | {fixedRate.MedianP99(target.Name):0.00} ms | +{median:0.00} ms ({Runner.Range(added, "0.00")}) | ≤ 0.3 ms | {(saturated ? "**no** (saturated at this rate)" : median <= 0.3 ? "yes" : "**no**")} | {ScenarioResult.Median(fixedRate.CpuRatios(target.Name)):0.00} |");
        }
    }

    foreach (var name in afterLoad.Keys.Where(n => n.StartsWith("AgentGateway", StringComparison.Ordinal)))
    {
        Console.WriteLine($"| resident set after load, {name} | {afterLoad["bare YARP"].RssMb} MB | {afterLoad[name].RssMb} MB | | ≤ 120 MB | {(afterLoad[name].RssMb <= 120 ? "yes" : "**no**")} | |");
    }

    var warm = results.Values.Where(r => r.Counts.ContainsKey("Redis commands")).ToArray();
    if (warm.Length > 0)
    {
        // Per-request calls grow with requests; the gateway's background work (revocation
        // reconcile, activity) with time. A warm gateway shows only the second.
        var requests = warm.Sum(r => r.GatewayRequests);
        var seconds = warm.Sum(r => r.Seconds);
        var redisCommands = warm.Sum(r => r.Counts["Redis commands"]);
        var tokenRequests = warm.Sum(r => r.Counts["token-endpoint requests"]);
        var background = tokenRequests == 0 && redisCommands <= 2 * seconds;
        Console.WriteLine($"| network calls once warm | | {redisCommands:N0} Redis commands and {tokenRequests:N0} token requests in {seconds:0} s, {requests:N0} gateway requests | {(double)(redisCommands + tokenRequests) / Math.Max(1, requests):0.0000} per request | 0 per request | {(background ? "yes (background only)" : "**no**")} | |");
    }
}

static long CountLines(string file)
{
    if (!File.Exists(file))
    {
        return 0;
    }

    using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
    var buffer = new byte[1 << 16];
    long lines = 0;
    int read;
    while ((read = stream.Read(buffer)) > 0)
    {
        lines += buffer.AsSpan(0, read).Count((byte)'\n');
    }

    return lines;
}

static double LoadAverage() => double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], CultureInfo.InvariantCulture);

static string CpuModel() =>
    File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown CPU";

/// <summary>Accepts OTLP/HTTP exports so the gateway's exporter does its full work, and counts them.</summary>
internal sealed class TraceReceiver(WebApplication app, string url) : IAsyncDisposable
{
    private long _exports;

    public string Url { get; } = url;

    public long Exports => Interlocked.Read(ref _exports);

    public static async Task<TraceReceiver> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        TraceReceiver? receiver = null;
        app.MapPost("/v1/{signal}", async (Microsoft.AspNetCore.Http.HttpContext context, string signal) =>
        {
            await context.Request.Body.CopyToAsync(Stream.Null);
            if (signal == "traces")
            {
                Interlocked.Increment(ref receiver!._exports);
            }

            return Microsoft.AspNetCore.Http.Results.Ok();
        });
        await app.StartAsync();
        receiver = new TraceReceiver(app, app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First().TrimEnd('/') + "/");
        return receiver;
    }

    public ValueTask DisposeAsync() => app.DisposeAsync();
}
