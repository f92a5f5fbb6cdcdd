using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using AgentGateway.Bench;
using AgentGateway.Bench.Micro;
using AgentGateway.Host;
using AgentGateway.Sandbox;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Forwarder;

// Per-request cost of the identity layer, in process and without sockets: one request through
// bare YARP and the same through AgentGateway, both forwarding to an in-memory upstream. The
// difference in time and bytes allocated is the gateway's own code.
//   dotnet run -c Release --project bench/AgentGateway.Bench.Micro [-- --loop get|tool|yarp SECONDS, for a profiler]
if (args is ["--loop", var scenario, var secondsText])
{
    // For a profiler to attach to: one benchmark method in a loop, nothing else.
    using var rig = new PerRequest();
    rig.Setup();
    // AGW_MICRO_ALLOCATIONS=1: also list the types allocated in the measured half, by sampled bytes.
    using var sampler = Environment.GetEnvironmentVariable("AGW_MICRO_ALLOCATIONS") is null ? null : new AllocationSampler();
    var seconds = int.Parse(secondsText, CultureInfo.InvariantCulture);
    var until = DateTime.UtcNow.AddSeconds(seconds);
    // The second half is measured: CPU time of the whole process (the exporter's and audit
    // writer's threads included, which compete with requests on a pinned core) and bytes
    // allocated, per request.
    var half = DateTime.UtcNow.AddSeconds(seconds / 2.0);
    var (requests, measuring) = (0L, false);
    var (cpu, allocated, gen0, gen1, gen2, paused) = (TimeSpan.Zero, 0L, 0, 0, 0, TimeSpan.Zero);
    while (DateTime.UtcNow < until)
    {
        await (scenario switch { "tool" => rig.GatewayToolCall(), "yarp" => rig.YarpGet(), _ => rig.GatewayGet() });
        requests++;
        if (!measuring && DateTime.UtcNow >= half)
        {
            (measuring, requests) = (true, 0);
            (cpu, allocated) = (System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime, GC.GetTotalAllocatedBytes(precise: true));
            (gen0, gen1, gen2, paused) = (GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2), GC.GetTotalPauseDuration());
            sampler?.Start();
        }
    }

    var spent = System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime - cpu;
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"loop {scenario}: {requests} requests in the second half; {spent.TotalMicroseconds / requests:0.0} µs CPU (all threads) and {(GC.GetTotalAllocatedBytes(precise: true) - allocated) / (double)requests:0} B allocated per request; collections gen0 {GC.CollectionCount(0) - gen0}, gen1 {GC.CollectionCount(1) - gen1}, gen2 {GC.CollectionCount(2) - gen2}, {(GC.GetTotalPauseDuration() - paused).TotalMicroseconds / requests:0.00} µs paused per request; working set {Environment.WorkingSet / 1048576} MB"));
    foreach (var line in sampler?.Top(40, requests) ?? [])
    {
        Console.WriteLine(line);
    }

    return 0;
}

var summary = BenchmarkRunner.Run<PerRequest>(DefaultConfig.Instance
    .AddJob(Job.Default.WithWarmupCount(3).WithIterationCount(15).WithToolchain(InProcessEmitToolchain.Instance))
    .WithOptions(ConfigOptions.DisableOptimizationsValidator), args);

double Allocated(string method) => summary.Reports
    .Where(r => r.BenchmarkCase.Descriptor.WorkloadMethod.Name == method)
    .Select(r => r.GcStats.GetBytesAllocatedPerOperation(r.BenchmarkCase) ?? 0)
    .Single();

double Mean(string method) => summary.Reports
    .Where(r => r.BenchmarkCase.Descriptor.WorkloadMethod.Name == method)
    .Select(r => r.ResultStatistics?.Mean ?? double.NaN)
    .Single();

Console.WriteLine();
var measured = summary.Reports.Select(r => r.BenchmarkCase.Descriptor.WorkloadMethod.Name).ToHashSet();
foreach (var (yarp, gateway, what) in new[] { ("YarpGet", "GatewayGet", "GET with an OAuth hop token"), ("YarpToolCall", "GatewayToolCall", "MCP tools/call, body inspected") })
{
    if (!measured.Contains(yarp) || !measured.Contains(gateway))
    {
        // Left out by --filter.
        continue;
    }

    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"{what}: the gateway's own code adds {Allocated(gateway) - Allocated(yarp):0} bytes and {(Mean(gateway) - Mean(yarp)) / 1000:0.0} µs per request ({Allocated(gateway):0} B against bare YARP's {Allocated(yarp):0} B)"));
}

return 0;

