using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using AgentGateway.FunctionalTests.Infrastructure;

namespace AgentGateway.FunctionalTests.Lifecycle;

/// <summary>
/// A configuration pays in memory only for the cloud SDKs it uses: Azure.Identity with MSAL for an
/// Azure managed identity, Google's auth library for a GCP one, the AWS SDK for an AwsSigV4
/// credential, nothing of any of them otherwise; for OpenTelemetry only when it exports; for the
/// Redis client only when Redis is configured; and for data protection's key ring (XML) only when
/// a cluster uses affinity cookies. Each
/// case is a real <c>agentgateway run</c> process of its own (the test process has loaded them all
/// for other tests); after it served a request, the process itself lists what it has loaded
/// (<c>AppDomain.CurrentDomain.GetAssemblies()</c>, asked by <see cref="StartupHook"/>, which the
/// runtime runs in it through <c>DOTNET_STARTUP_HOOKS</c>).
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class LazyAssemblyTests(GatewayFixture fx) : IAsyncLifetime
{
    private static readonly string[] Azure = ["Azure.Identity", "Azure.Core", "Microsoft.Identity.Client"];
    private static readonly string[] Google = ["Google.Apis.Auth", "Google.Apis.Core", "Google.Apis"];
    private static readonly string[] Aws = ["AWSSDK.Core", "AWSSDK.SecurityToken"];
    private readonly DirectoryInfo _work = Directory.CreateTempSubdirectory("agentgateway-assemblies-");

    public Task InitializeAsync() => fx.ResetAsync();

    public Task DisposeAsync()
    {
        _work.Delete(recursive: true);
        return Task.CompletedTask;
    }

    [Fact]
    public async Task The_cloud_identity_SDKs_are_loaded_only_by_a_configuration_whose_credentials_use_them()
    {
        var none = await LoadedAsync(fx.Config(withRedis: false));
        Assert.Contains("AgentGateway.Credentials", none);
        Assert.Empty(none.Intersect(Azure));
        Assert.Empty(none.Intersect(Google));
        Assert.Empty(none.Intersect(Aws));

        var azure = await LoadedAsync(WithManagedIdentity(fx.Config(withRedis: false), "Azure"));
        // (Azure.Identity itself is a small assembly here that the runtime may not need to load:
        // what the managed identity runs on is Azure.Core and MSAL.)
        Assert.Contains("Azure.Core", azure);
        Assert.Contains("Microsoft.Identity.Client", azure);
        Assert.Empty(azure.Intersect(Google));
        Assert.Empty(azure.Intersect(Aws));

        var gcp = await LoadedAsync(WithManagedIdentity(fx.Config(withRedis: false), "Gcp"));
        Assert.Contains("Google.Apis.Auth", gcp);
        Assert.Empty(gcp.Intersect(Azure));
        Assert.Empty(gcp.Intersect(Aws));

        // An AwsSigV4 credential loads nothing of the others; the AWS SDK itself not even until
        // the credential is first fetched (the request here is refused before that).
        var aws = await LoadedAsync(WithAwsSigV4(fx.Config(withRedis: false)));
        Assert.Contains("AgentGateway.Credentials", aws);
        Assert.Empty(aws.Intersect(Azure));
        Assert.Empty(aws.Intersect(Google));
    }

    [Fact]
    public async Task OpenTelemetry_is_loaded_only_when_something_is_exported_and_no_endpoint_compiles_expression_trees()
    {
        var none = await LoadedAsync(fx.Config(withRedis: false));
        Assert.Contains("AgentGateway.Proxy", none);
        Assert.DoesNotContain(none, static name => name.StartsWith("OpenTelemetry", StringComparison.Ordinal));
        // The gateway's own endpoints are plain request delegates: ASP.NET Core's request delegate
        // factory, which compiles expression trees for handlers that return results, never runs.
        Assert.DoesNotContain("System.Linq.Expressions", none);

        var config = fx.Config(withRedis: false);
        // Nothing listens there: the exporter's failures are its own and never reach a request.
        config["OTEL_EXPORTER_OTLP_ENDPOINT"] = $"http://127.0.0.1:{Loopback.FreePort()}";
        var exporting = await LoadedAsync(config);
        Assert.Contains("OpenTelemetry", exporting);
        Assert.Contains("OpenTelemetry.Exporter.OpenTelemetryProtocol", exporting);
    }

    [Fact]
    public async Task The_Redis_client_is_loaded_only_by_a_configuration_that_names_Redis()
    {
        // Without Redis the revocation, ephemeral-agent and cancel-key stores and /readyz (which the
        // start-up loop below polls) run without naming a type of the client library.
        var none = await LoadedAsync(fx.Config(withRedis: false));
        Assert.Contains("AgentGateway.Proxy", none);
        Assert.DoesNotContain("StackExchange.Redis", none);

        var redis = await LoadedAsync(fx.Config(withRedis: true));
        Assert.Contains("StackExchange.Redis", redis);
    }

    [Fact]
    public async Task Data_protection_loads_no_key_ring_at_start()
    {
        // YARP registers data protection for its affinity cookies, which this configuration does
        // not use: its key ring (XML key files) is not read or written at start.
        var none = await LoadedAsync(fx.Config(withRedis: false));
        Assert.Contains("AgentGateway.Proxy", none);
        Assert.DoesNotContain("System.Private.Xml", none);
        Assert.DoesNotContain("System.Private.Xml.Linq", none);
    }

    private static JsonObject WithAwsSigV4(JsonObject config)
    {
        config["Gateway"]!["Credentials"]!["aws"] = new JsonObject { ["Kind"] = "AwsSigV4", ["Region"] = "us-east-1", ["Service"] = "bedrock" };
        return config;
    }

    private static JsonObject WithManagedIdentity(JsonObject config, string provider)
    {
        config["Gateway"]!["Credentials"]!["cloud"] = provider == "Azure"
            ? new JsonObject { ["Kind"] = "ManagedIdentity", ["Provider"] = "Azure", ["Scopes"] = new JsonArray("https://database.windows.net/.default") }
            : new JsonObject { ["Kind"] = "ManagedIdentity", ["Provider"] = "Gcp" };
        return config;
    }

    /// <summary>Runs the gateway on <paramref name="config"/>, sends it a request, and returns the
    /// names of the assemblies it has loaded.</summary>
    private async Task<HashSet<string>> LoadedAsync(JsonObject config)
    {
        var file = Path.Combine(_work.FullName, $"gateway-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(file, config.ToJsonString());
        var url = new Uri($"http://127.0.0.1:{Loopback.FreePort()}/");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        var list = file + ".assemblies";
        start.Environment["DOTNET_STARTUP_HOOKS"] = typeof(StartupHook).Assembly.Location;
        start.Environment[StartupHook.ListVariable] = list;
        foreach (var argument in new[] { Path.Combine(AppContext.BaseDirectory, "agentgateway.dll"), "run", "--config", file, "--urls", url.ToString().TrimEnd('/') })
        {
            start.ArgumentList.Add(argument);
        }

        var output = new StringBuilder();
        using var process = Process.Start(start)!;
        process.OutputDataReceived += (_, e) => { lock (output) { output.AppendLine(e.Data); } };
        process.ErrorDataReceived += (_, e) => { lock (output) { output.AppendLine(e.Data); } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (true)
            {
                Assert.False(process.HasExited, "the gateway exited: " + output);
                Assert.True(DateTime.UtcNow < deadline, "the gateway was not ready within 60 s: " + output);
                try
                {
                    using var ready = await http.GetAsync(new Uri(url, "readyz"));
                    if (ready.StatusCode == HttpStatusCode.OK)
                    {
                        break;
                    }
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                {
                }

                await Task.Delay(200);
            }

            // Through the pipeline once: identified (and refused) like any request.
            using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(url, "crm/accounts"));
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "not-a-token");
            using var refused = await http.SendAsync(request);
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);

            await File.WriteAllTextAsync(list + ".ask", "");
            var listed = DateTime.UtcNow.AddSeconds(30);
            while (!File.Exists(list))
            {
                Assert.True(DateTime.UtcNow < listed, "the gateway did not list its assemblies: " + output);
                await Task.Delay(50);
            }

            return [.. await File.ReadAllLinesAsync(list)];
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
    }
}
