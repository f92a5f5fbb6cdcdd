using System.Globalization;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using AgentGateway.Bench;
using AgentGateway.Host.Sandbox;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

// What the identity layer costs. Every target runs in its own process on loopback: a fast
// upstream, bare YARP with a static header (the ceiling for a YARP-based gateway), nginx with
// proxy_set_header (when installed), and the shipped `agentgateway` command with the full
// pipeline (JWT validation, stripping, policy with grants, a cached OAuth hop token with Redis,
// tracing exported over OTLP, the audit log). This process is only the load generator, the
// issuer and the trace sink. The same closed-loop load is driven at each target in alternating
// rounds so machine drift cancels; then a fixed moderate rate measures the p99 each adds.
//   dotnet run -c Release --project bench/AgentGateway.Bench -- [--seconds 5] [--rounds 2] [--connections 32] [--rate 500] [--users 1000] [--trio-seconds 15] [--no-otlp] [--no-audit] [--gateway DIR]
if (args is ["--role", var role, .. var roleArgs])
{
    return await Roles.RunAsync(role, roleArgs);
}

var seconds = Option("--seconds", 5);
var rounds = Option("--rounds", 2);
var connections = Option("--connections", 32);
var rate = Option("--rate", 500);
var users = Option("--users", 1000);
var trioSeconds = Option("--trio-seconds", 15);
// To see what each part costs: the same run without trace export, or without the audit log.
var withOtlp = !args.Contains("--no-otlp");
var withAudit = !args.Contains("--no-audit");
// Another build of the gateway to measure (a publish output, say ReadyToRun); by default the
// `agentgateway` built beside this program.
var gatewayBinary = Path.GetFullPath(Path.Combine(StringOption("--gateway") ?? AppContext.BaseDirectory, "agentgateway"));
if (!File.Exists(gatewayBinary))
{
    Console.Error.WriteLine($"--gateway: no agentgateway program at {gatewayBinary}");
    return 2;
}

await using var idp = new DemoIdentityProvider();
await idp.StartAsync();
idp.AddClient("bench-agent", "bench-secret", "agentgateway");
idp.AddClient("crm-gateway", "crm-secret", "crm-api");
idp.AddClient("obo-gateway", "obo-secret", "crm-api");
idp.AddClient("crm-trio", "trio-secret", "crm-api", TimeSpan.FromMinutes(1));
await using var sink = await StartSinkAsync();
using var redis = RedisProcess.TryStart();
await using var upstream = await ChildProcess.StartRoleAsync("upstream");
await using var yarp = await ChildProcess.StartRoleAsync("yarp", upstream.Url);
using var nginx = NginxProcess.TryStart(upstream.Url);
var work = Directory.CreateTempSubdirectory("agentgateway-bench-");
var environment = new Dictionary<string, string>
{
    ["AGW_BENCH_CRM_SECRET"] = "crm-secret",
    ["AGW_BENCH_OBO_SECRET"] = "obo-secret",
    ["AGW_BENCH_TRIO_SECRET"] = "trio-secret",
    ["AGW_BENCH_CACHE_KEY"] = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)),
};
var configFile = Path.Combine(work.FullName, "gateway.json");
await File.WriteAllTextAsync(configFile, BenchConfig.Gateway(idp.Url, upstream.Url, redis?.Address, withOtlp ? sink.Url : null, withAudit ? Path.Combine(work.FullName, "audit.jsonl") : null, "crm-gateway", "AGW_BENCH_CRM_SECRET").ToJsonString());
await using var gateway = await ChildProcess.StartGatewayAsync(gatewayBinary, configFile, environment);
var gatewayIdle = gateway.Memory();
var yarpIdle = yarp.Memory();

var agentToken = idp.Mint("bench-agent", "agentgateway", TimeSpan.FromMinutes(50));
var userTokens = Enumerable.Range(0, users).Select(i => idp.Mint($"user-{i}", "agentgateway", TimeSpan.FromMinutes(50), authorizedParty: "bench-agent")).ToArray();

Console.WriteLine($"AgentGateway benchmark — {Environment.ProcessorCount} cores, {connections} connections, {rounds} rounds of {seconds} s each, alternating; every target in its own process");
Console.WriteLine($"  gateway: {gatewayBinary}; trace export: {(withOtlp ? "on" : "off")}; audit log: {(withAudit ? "on" : "off")}");
Console.WriteLine($"  Redis: {(redis is null ? "not installed — the gateway caches in process only" : redis.Address)}; nginx: {(nginx is null ? "not installed — skipped (apt-get install -y nginx-light)" : "yes")}");

RequestFactory Get(string url, string? token = null) => _ => Request(HttpMethod.Get, url, token);
RequestFactory ToolCall(string url, string? token = null) => _ =>
{
    var request = Request(HttpMethod.Post, url, token);
    request.Content = new StringContent(BenchConfig.ToolCallBody, Encoding.UTF8, "application/json");
    request.Headers.Accept.ParseAdd("application/json");
    request.Headers.Accept.ParseAdd("text/event-stream");
    return request;
};
RequestFactory OnBehalfOf(string url) => sequence =>
{
    var request = Request(HttpMethod.Get, url, agentToken);
    request.Headers.Add("Subject-Token", userTokens[sequence % userTokens.Length]);
    return request;
};

var scenarios = new List<Scenario>
{
    new("GET with a cached OAuth hop token", [
        new("direct", Get(upstream.Url + "api/accounts")),
        new("bare YARP", Get(yarp.Url + "api/accounts")),
        .. nginx is null ? Array.Empty<Target>() : [new("nginx", Get(nginx.Url + "api/accounts"))],
        new("AgentGateway", Get(gateway.Url + "api/accounts", agentToken)),
    ]),
    new("MCP tools/call, body inspected and decided per call", [
        new("bare YARP", ToolCall(yarp.Url + "mcp")),
        .. nginx is null ? Array.Empty<Target>() : [new("nginx", ToolCall(nginx.Url + "mcp"))],
        new("AgentGateway", ToolCall(gateway.Url + "mcp", agentToken)),
    ]),
    new($"On behalf of {users} users, each request a different user's exchanged token from cache", [
        new("bare YARP", Get(yarp.Url + "obo/accounts")),
        new("AgentGateway", OnBehalfOf(gateway.Url + "obo/accounts")),
    ]),
};

// Warm-up: connections, JIT, the issuer's keys, the hop token and every user's exchanged token.
foreach (var target in scenarios.SelectMany(s => s.Targets))
{
    await Load.ClosedLoopAsync(target.Next, TimeSpan.FromSeconds(1), connections);
}

await Load.ClosedLoopAsync(OnBehalfOf(gateway.Url + "obo/accounts"), TimeSpan.FromSeconds(Math.Max(2, users / 300)), connections);
var tokenRequestsBefore = idp.TokenRequests("crm-gateway") + idp.TokenRequests("obo-gateway");

var redisBefore = redis?.CommandsProcessed();
var gatewayRequests = 0L;
foreach (var scenario in scenarios)
{
    var results = scenario.Targets.ToDictionary(t => t.Name, _ => new List<Result>());
    for (var round = 0; round < rounds; round++)
    {
        foreach (var target in scenario.Targets)
        {
            results[target.Name].Add(await Load.ClosedLoopAsync(target.Next, TimeSpan.FromSeconds(seconds), connections));
        }
    }

    Console.WriteLine();
    Console.WriteLine($"## {scenario.Name}");
    Console.WriteLine($"{"target",-14} {"req/s",10} {"p50 ms",8} {"p99 ms",8}");
    var merged = results.ToDictionary(r => r.Key, r => Result.Merge(r.Value));
    foreach (var (name, result) in merged)
    {
        Console.WriteLine($"{name,-14} {result.RequestsPerSecond,10:0} {result.P50,8:0.00} {result.P99,8:0.00}");
    }

    gatewayRequests += merged["AgentGateway"].Requests;
    Console.WriteLine($"throughput AgentGateway / bare YARP: {merged["AgentGateway"].RequestsPerSecond / merged["bare YARP"].RequestsPerSecond:0.00} (target ≥ 0.85)");
    if (merged.TryGetValue("nginx", out var reference))
    {
        Console.WriteLine($"throughput AgentGateway / nginx:     {merged["AgentGateway"].RequestsPerSecond / reference.RequestsPerSecond:0.00}");
    }
}

var redisCommands = redis is null ? (long?)null : redis.CommandsProcessed() - redisBefore!.Value;
var tokenRequests = idp.TokenRequests("crm-gateway") + idp.TokenRequests("obo-gateway") - tokenRequestsBefore;

Console.WriteLine();
Console.WriteLine($"## At a fixed {rate} req/s for {seconds} s (open loop), GET with a cached hop token");
var fixedRate = new Dictionary<string, Result>();
foreach (var target in scenarios[0].Targets)
{
    fixedRate[target.Name] = await Load.FixedRateAsync(target.Next, rate, TimeSpan.FromSeconds(seconds));
    Console.WriteLine($"  {target.Name,-14} p50 {fixedRate[target.Name].P50,6:0.00} ms  p99 {fixedRate[target.Name].P99,6:0.00} ms   adds {fixedRate[target.Name].P99 - fixedRate["direct"].P99,6:0.00} ms over direct");
}

Console.WriteLine($"  AgentGateway adds {fixedRate["AgentGateway"].P99 - fixedRate["bare YARP"].P99:0.00} ms of p99 over bare YARP (target ≤ 1 ms)");

Console.WriteLine();
Console.WriteLine("## Network calls once warm");
Console.WriteLine(redisCommands is null
    ? "Redis commands per gateway request: n/a (no Redis)"
    : $"Redis commands during the measured rounds: {redisCommands} for {gatewayRequests} gateway requests ({(double)redisCommands / Math.Max(1, gatewayRequests):0.0000} per request)");
Console.WriteLine($"Token-endpoint requests during the measured rounds: {tokenRequests}");

var (rss, peak, anonymous, mapped) = gateway.Memory();
var (yarpRss, yarpPeak, yarpAnonymous, yarpMapped) = yarp.Memory();
Console.WriteLine();
Console.WriteLine("## Memory after sustained load (resident set, from /proc)");
Console.WriteLine($"  AgentGateway {rss} MB now, {peak} MB peak (target ≤ 150 MB); bare YARP {yarpRss} MB now, {yarpPeak} MB peak");
// The rest is shared memory: with W^X (on by default) the runtime maps JIT-compiled code through it.
Console.WriteLine($"  anonymous (heaps, stacks) / mapped files (runtime, assemblies) / shared (JIT code under W^X): AgentGateway {anonymous} / {mapped} / {rss - anonymous - mapped} MB, bare YARP {yarpAnonymous} / {yarpMapped} / {yarpRss - yarpAnonymous - yarpMapped} MB");
Console.WriteLine($"  idle after start: AgentGateway {gatewayIdle.CurrentMb} MB ({gatewayIdle.AnonymousMb} / {gatewayIdle.FileMb} / {gatewayIdle.CurrentMb - gatewayIdle.AnonymousMb - gatewayIdle.FileMb}), bare YARP {yarpIdle.CurrentMb} MB ({yarpIdle.AnonymousMb} / {yarpIdle.FileMb} / {yarpIdle.CurrentMb - yarpIdle.AnonymousMb - yarpIdle.FileMb})");

if (redis is not null && trioSeconds > 0)
{
    Console.WriteLine();
    Console.WriteLine($"## Three gateways on one Redis, cold, {trioSeconds} s of load within one 60 s hop token's life");
    var trioConfig = Path.Combine(work.FullName, "trio.json");
    await File.WriteAllTextAsync(trioConfig, BenchConfig.Gateway(idp.Url, upstream.Url, redis.Address, sink.Url, audit: null, "crm-trio", "AGW_BENCH_TRIO_SECRET").ToJsonString());
    var trio = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => ChildProcess.StartGatewayAsync(gatewayBinary, trioConfig, environment)));
    try
    {
        var result = await Load.ClosedLoopAsync(sequence => Request(HttpMethod.Get, trio[sequence % 3].Url + "api/accounts", agentToken), TimeSpan.FromSeconds(trioSeconds), connections);
        Console.WriteLine($"  {result.Requests} requests spread over three processes; token-endpoint calls: {idp.TokenRequests("crm-trio")} (expected exactly 1)");
    }
    finally
    {
        foreach (var instance in trio)
        {
            await instance.DisposeAsync();
        }
    }
}

work.Delete(recursive: true);
return 0;

int Option(string name, int fallback)
{
    var index = Array.IndexOf(args, name);
    return index >= 0 && index + 1 < args.Length && int.TryParse(args[index + 1], CultureInfo.InvariantCulture, out var value) ? value : fallback;
}

string? StringOption(string name)
{
    var index = Array.IndexOf(args, name);
    return index >= 0 && index + 1 < args.Length ? args[index + 1] : null;
}

static HttpRequestMessage Request(HttpMethod method, string url, string? token)
{
    var request = new HttpRequestMessage(method, url);
    if (token is not null)
    {
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
    }

    return request;
}

static async Task<Sink> StartSinkAsync()
{
    // Accepts OTLP/HTTP exports so the gateway's exporter does its full work.
    var builder = WebApplication.CreateSlimBuilder();
    builder.WebHost.UseUrls("http://127.0.0.1:0");
    builder.Logging.ClearProviders();
    var app = builder.Build();
    app.MapPost("/v1/{signal}", async (Microsoft.AspNetCore.Http.HttpContext context) =>
    {
        await context.Request.Body.CopyToAsync(Stream.Null);
        return Microsoft.AspNetCore.Http.Results.Ok();
    });
    await app.StartAsync();
    return new Sink(app, app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First().TrimEnd('/') + "/");
}

internal sealed record Target(string Name, RequestFactory Next);

internal sealed record Scenario(string Name, List<Target> Targets);

internal sealed record Sink(WebApplication App, string Url) : IAsyncDisposable
{
    public ValueTask DisposeAsync() => App.DisposeAsync();
}
