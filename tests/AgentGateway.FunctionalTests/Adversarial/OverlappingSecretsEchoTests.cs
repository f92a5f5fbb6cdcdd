using System.Text;
using System.Text.Json.Nodes;
using AgentGateway.FunctionalTests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace AgentGateway.FunctionalTests.Adversarial;

/// <summary>
/// Two configured secrets whose occurrences share characters — the end of one is the start of the
/// other — echoed by a real upstream (Kestrel) as one run: every character of the run is masked,
/// whether the run comes in one write or is cut (by the upstream flushing and waiting) anywhere
/// across it. The cut is made certain, not left to timing: the upstream sends the rest only after
/// the agent has received what came before the run, so the gateway has handled the first part
/// on its own.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class OverlappingSecretsEchoTests(GatewayFixture fx) : IAsyncLifetime
{
    private const string FirstVariable = "AGW_TEST_OVERLAP_FIRST";
    private const string SecondVariable = "AGW_TEST_OVERLAP_SECOND";
    private const string Before = "data: you sent ";
    private const string After = " ok\n\n";

    /// <summary>How many characters the second secret shares with the end of the first.</summary>
    private const int Shared = 24;

    private static readonly string First = "ok+" + Guid.NewGuid().ToString("N")[..12] + "/" + Guid.NewGuid().ToString("N") + "==";
    private static readonly string Second = First[^Shared..] + "/tail+" + Guid.NewGuid().ToString("N");

    /// <summary>The two as an echo joins them: the first, then the rest of the second.</summary>
    private static readonly string Run = First + Second[Shared..];

    private WebApplication _upstream = null!;
    private string _url = "";
    private string _token = "";
    private readonly List<string> _authorizations = [];
    private readonly TaskCompletionSource _agentHasTheStart = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _cut;

    public async Task InitializeAsync()
    {
        Environment.SetEnvironmentVariable(FirstVariable, First);
        Environment.SetEnvironmentVariable(SecondVariable, Second);
        await fx.ResetAsync();
        _token = await fx.AgentTokenAsync();

        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        _upstream = builder.Build();
        _upstream.Map("/echo", async context =>
        {
            lock (_authorizations)
            {
                _authorizations.AddRange(context.Request.Headers.Authorization.Select(v => v ?? ""));
            }

            context.Response.ContentType = "text/event-stream";
            var body = Encoding.ASCII.GetBytes(Before + Run + After);
            if (_cut < 0)
            {
                await context.Response.Body.WriteAsync(body, context.RequestAborted);
                return;
            }

            var at = Before.Length + _cut;
            await context.Response.Body.WriteAsync(body.AsMemory(0, at), context.RequestAborted);
            await context.Response.Body.FlushAsync(context.RequestAborted);
            await _agentHasTheStart.Task.WaitAsync(TimeSpan.FromSeconds(10), context.RequestAborted);
            await context.Response.Body.WriteAsync(body.AsMemory(at), context.RequestAborted);
        });
        await _upstream.StartAsync();
        _url = _upstream.Urls.First();
    }

    public async Task DisposeAsync() => await _upstream.DisposeAsync();

    /// <summary>Cuts (characters into the run; -1 for none). The first secret is 50 characters, the
    /// last 24 of them the second's start: cut inside the first before the shared part, inside the
    /// shared part, just after the first ends, inside the second's tail.</summary>
    [Theory]
    [InlineData(-1)]
    [InlineData(10)]
    [InlineData(40)]
    [InlineData(50)]
    [InlineData(62)]
    public async Task Overlapping_secrets_in_an_echo_are_masked_whole_however_the_answer_is_cut(int cut)
    {
        _cut = cut;
        await using var gateway = await GatewayInstance.StartAsync(Config());

        using var request = new HttpRequestMessage(HttpMethod.Get, "/echo");
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", _token);
        using var response = await gateway.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(200, (int)response.StatusCode);
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await using var body = await response.Content.ReadAsStreamAsync(deadline.Token);
        var received = new MemoryStream();
        var buffer = new byte[256];
        int read;
        while ((read = await body.ReadAsync(buffer, deadline.Token)) > 0)
        {
            received.Write(buffer, 0, read);
            if (received.Length >= Before.Length)
            {
                // What came before the run is out (the run's start is held back, or masked): the
                // gateway handled the first part as a write of its own.
                _agentHasTheStart.TrySetResult();
            }
        }

        var text = Encoding.ASCII.GetString(received.ToArray());
        Assert.Equal(Before + new string('*', Run.Length) + After, text);
        EchoOracle.AssertNotExposed(text, First);
        EchoOracle.AssertNotExposed(text, Second);
        Assert.Contains(gateway.Logs.Lines, l => l.Contains("echoed a gateway secret in the response body", StringComparison.Ordinal));
        Assert.DoesNotContain(gateway.Logs.Lines, l => l.Contains(First, StringComparison.Ordinal) || l.Contains(Second, StringComparison.Ordinal));
        lock (_authorizations)
        {
            Assert.Equal(["Bearer " + First], _authorizations);
        }
    }

    private JsonObject Config()
    {
        var config = fx.Config(withRedis: false);
        var gateway = config["Gateway"]!;
        gateway["Credentials"]!["overlap-first"] = new JsonObject { ["Kind"] = "ApiKey", ["Header"] = "Authorization", ["Format"] = "Bearer {secret}", ["Secret"] = "env:" + FirstVariable };
        gateway["Credentials"]!["overlap-second"] = new JsonObject { ["Kind"] = "ApiKey", ["Header"] = "X-Api-Key", ["Format"] = "{secret}", ["Secret"] = "env:" + SecondVariable };
        gateway["Grants"]!["crm-read"]!["Routes"]!.AsArray().Add("echo");
        config.WithUpstream("crm", _url);
        config["ReverseProxy"]!["Routes"]!["echo"] = new JsonObject
        {
            ["ClusterId"] = "crm",
            ["Match"] = new JsonObject { ["Path"] = "/echo" },
            ["Metadata"] = new JsonObject { ["Credential"] = "overlap-first" },
        };
        return config;
    }
}
