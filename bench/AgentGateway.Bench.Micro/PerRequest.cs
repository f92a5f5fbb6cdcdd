using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using AgentGateway.Bench;
using AgentGateway.Host;
using AgentGateway.Sandbox;
using BenchmarkDotNet.Attributes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Forwarder;

namespace AgentGateway.Bench.Micro;

/// <summary>The same requests through bare YARP and through the full AgentGateway pipeline.</summary>
[MemoryDiagnoser]
// Not sealed: BenchmarkDotNet refuses sealed benchmark classes.
public class PerRequest : IDisposable
{
    private readonly DemoIdentityProvider _idp = new();
    private WebApplication? _yarp;
    private WebApplication? _gateway;
    private HttpClient? _toYarp;
    private HttpClient? _toGateway;
    private string _agentToken = "";
    private string _directory = "";

    [GlobalSetup]
    public void Setup() => SetupAsync().GetAwaiter().GetResult();

    [GlobalCleanup]
    public void Dispose()
    {
        Dispose(disposing: true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
        if (!disposing)
        {
            return;
        }

        _toYarp?.Dispose();
        _toGateway?.Dispose();
        _yarp?.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _gateway?.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _idp.DisposeAsync().AsTask().GetAwaiter().GetResult();
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    // Bare YARP is sent the same headers, the agent's token included, as in the load benchmark:
    // the client's own work (formatting the Authorization header) is then the same on both sides.
    [Benchmark]
    public Task<string> YarpGet() => SendAsync(_toYarp!, Get(_agentToken));

    [Benchmark]
    public Task<string> GatewayGet() => SendAsync(_toGateway!, Get(_agentToken));

    [Benchmark]
    public Task<string> YarpToolCall() => SendAsync(_toYarp!, ToolCall(_agentToken));

    [Benchmark]
    public Task<string> GatewayToolCall() => SendAsync(_toGateway!, ToolCall(_agentToken));

    private static HttpRequestMessage Get(string token)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/api/accounts");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return request;
    }

    private static HttpRequestMessage ToolCall(string token)
    {
        var request = Get(token);
        request.Method = HttpMethod.Post;
        request.RequestUri = new Uri("/mcp", UriKind.Relative);
        request.Content = new StringContent(BenchConfig.ToolCallBody, Encoding.UTF8, "application/json");
        return request;
    }

    private static async Task<string> SendAsync(HttpClient client, HttpRequestMessage request)
    {
        using (request)
        using (var response = await client.SendAsync(request))
        {
            var body = await response.Content.ReadAsStringAsync();
            return response.IsSuccessStatusCode ? body : throw new InvalidOperationException($"{(int)response.StatusCode}: {body}");
        }
    }

    private async Task SetupAsync()
    {
        await _idp.StartAsync();
        _idp.AddClient("crm-gateway", "crm-secret", "crm-api");
        _idp.AddClient("obo-gateway", "obo-secret", "crm-api");
        _agentToken = _idp.Mint("bench-agent", "agentgateway", TimeSpan.FromMinutes(50));
        Environment.SetEnvironmentVariable("AGW_BENCH_CRM_SECRET", "crm-secret");
        Environment.SetEnvironmentVariable("AGW_BENCH_OBO_SECRET", "obo-secret");
        Environment.SetEnvironmentVariable("AGW_BENCH_CACHE_KEY", Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)));

        // Bare YARP: the same routes and one static header.
        var yarp = WebApplication.CreateSlimBuilder();
        yarp.WebHost.UseTestServer();
        yarp.Logging.ClearProviders();
        yarp.Services.AddReverseProxy().LoadFromMemory(
            [new RouteConfig
            {
                RouteId = "all",
                ClusterId = "c",
                Match = new RouteMatch { Path = "/{**rest}" },
                Transforms = [new Dictionary<string, string> { ["RequestHeader"] = "Authorization", ["Set"] = "Bearer static-hop-token" }],
            }],
            [new ClusterConfig { ClusterId = "c", Destinations = new Dictionary<string, DestinationConfig> { ["d"] = new() { Address = InMemoryUpstream.Address } } }]);
        yarp.Services.AddSingleton<IForwarderHttpClientFactory, InMemoryUpstream>();
        _yarp = yarp.Build();
        _yarp.MapReverseProxy();
        await _yarp.StartAsync();
        _toYarp = _yarp.GetTestClient();

        // AgentGateway: the load benchmark's configuration (trace export and audit on; no Redis, so
        // a warm request touches only process memory, as it does with Redis once warm).
        _directory = Directory.CreateTempSubdirectory("agentgateway-micro-").FullName;
        var sink = WebApplication.CreateSlimBuilder();
        sink.WebHost.UseUrls("http://127.0.0.1:0");
        sink.Logging.ClearProviders();
        var sinkApp = sink.Build();
        sinkApp.MapPost("/v1/{signal}", async (HttpContext c) => await c.Request.Body.CopyToAsync(Stream.Null));
        await sinkApp.StartAsync();
        var otlp = sinkApp.Urls.First() + "/";
        var config = Path.Combine(_directory, "gateway.json");
        await File.WriteAllTextAsync(config, BenchConfig.Gateway(_idp.Url, InMemoryUpstream.Address, redis: null, Environment.GetEnvironmentVariable("AGW_BENCH_NO_OTLP") is null ? otlp : null, Environment.GetEnvironmentVariable("AGW_BENCH_NO_AUDIT") is null ? Path.Combine(_directory, "audit.jsonl") : null, "crm-gateway", "AGW_BENCH_CRM_SECRET").ToJsonString());
        _gateway = GatewayHost.Build(config, [], builder =>
        {
            builder.WebHost.UseTestServer();
            // Logging as the shipped process has it (a provider, with the gateway's levels), only
            // discarded: with no provider at all, nothing is ever enabled, and ASP.NET Core would
            // skip work here (its request activity) that the real process does.
            builder.Logging.ClearProviders();
            builder.Logging.AddProvider(new DiscardingLoggerProvider());
            builder.Services.AddSingleton<IForwarderHttpClientFactory, InMemoryUpstream>();
        });
        await _gateway.MapAgentGatewayAsync();
        await _gateway.StartAsync();
        _toGateway = _gateway.GetTestClient();

        // Warm: the issuer's keys, the hop token, the JIT.
        for (var i = 0; i < 100; i++)
        {
            await GatewayGet();
            await GatewayToolCall();
        }
    }
}

/// <summary>An upstream that answers from memory, so the measurement is the proxies and nothing else.</summary>
internal sealed class InMemoryUpstream : IForwarderHttpClientFactory
{
    // Loopback, because the gateway refuses plain http elsewhere; nothing ever connects to it.
    public const string Address = "http://127.0.0.1:9/";

    private static readonly byte[] Ok = "ok"u8.ToArray();
    private static readonly byte[] ToolResult = """{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"customer 42: Ada Lovelace"}]}}"""u8.ToArray();

    public HttpMessageInvoker CreateClient(ForwarderHttpClientContext context) => new(new Handler());

    private sealed class Handler : HttpMessageHandler
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (request.Content is not null)
            {
                await request.Content.CopyToAsync(Stream.Null, cancellationToken);
            }

            var body = new ByteArrayContent(request.Method == HttpMethod.Post ? ToolResult : Ok);
            body.Headers.ContentType = new MediaTypeHeaderValue(request.Method == HttpMethod.Post ? "application/json" : "text/plain");
            return new HttpResponseMessage(HttpStatusCode.OK) { Content = body, RequestMessage = request };
        }
    }
}

/// <summary>A logging provider that is enabled at every level the filters let through and writes nothing.</summary>
internal sealed class DiscardingLoggerProvider : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => Discarding.Instance;

    public void Dispose()
    {
    }

    private sealed class Discarding : ILogger
    {
        public static readonly Discarding Instance = new();

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
        }
    }
}
