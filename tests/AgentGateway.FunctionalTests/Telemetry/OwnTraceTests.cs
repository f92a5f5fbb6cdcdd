using System.Text.Json;
using System.Text.Json.Nodes;
using AgentGateway.FunctionalTests.Infrastructure;
using Microsoft.IdentityModel.JsonWebTokens;

namespace AgentGateway.FunctionalTests.Telemetry;

/// <summary>
/// The trace id the gateway records is its own: every request starts a fresh trace the agent
/// cannot choose, which the audit record, the problem body, the provenance assertion and the
/// upstream's traceparent all carry. The agent's traceparent is noted apart (<c>agentTraceId</c>),
/// and neither its trace state nor its baggage travels on.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class OwnTraceTests(GatewayFixture fx) : IAsyncLifetime
{
    private const string AgentTrace = "4bf92f3577b34da6a3ce929d0e0e4736";

    private readonly string _audit = Path.Combine(Path.GetTempPath(), $"agentgateway-audit-{Guid.NewGuid():N}.jsonl");
    private readonly RawUpstream _upstream = RawUpstream.Start();
    private string _token = "";

    public async Task InitializeAsync()
    {
        await fx.ResetAsync();
        _token = await fx.AgentTokenAsync();
    }

    public async Task DisposeAsync()
    {
        await _upstream.DisposeAsync();
        File.Delete(_audit);
    }

    [Fact]
    public async Task Every_request_is_recorded_under_the_gateways_own_trace_and_the_agents_apart()
    {
        var config = fx.Config(withRedis: false).WithUpstream("llm", _upstream.Url).WithAudit(_audit);
        config["ReverseProxy"]!["Routes"]!["openai"]!["Metadata"]!["Provenance"] = "true";
        await using var gateway = await GatewayInstance.StartAsync(config);
        // Every propagator's fields, one in a spelling a CGI-style upstream reads as the same header.
        var chosen = $"traceparent: 00-{AgentTrace}-00f067aa0ba902b7-01\r\ntracestate: agent=chosen-state\r\nbaggage: user=mallory\r\n"
            + "Request_Id: |mallory-request.1.\r\nCorrelation-Context: user=mallory\r\n";

        var forwarded = await RawHttp.SendAsync(gateway, Get("/llm/openai/v1/models", chosen));
        var refused = await RawHttp.SendAsync(gateway, Get("/billing/invoices", chosen));
        var again = await RawHttp.SendAsync(gateway, Get("/llm/openai/v1/models", chosen));
        var malformed = await RawHttp.SendAsync(gateway, Get("/llm/openai/v1/models", "traceparent: 00-not-a-trace-01\r\n"));

        Assert.StartsWith("HTTP/1.1 200", forwarded, StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 403", refused, StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 200", again, StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 200", malformed, StringComparison.Ordinal);
        var records = await AuditAsync(4);
        Assert.Equal(["credential-use", "refusal", "credential-use", "credential-use"], records.Select(r => r.GetProperty("event").GetString()));
        var traces = records.Select(r => r.GetProperty("traceId").GetString()!).ToList();
        Assert.All(traces, t => Assert.Matches("^[0-9a-f]{32}$", t));
        Assert.DoesNotContain(AgentTrace, traces);
        Assert.Equal(4, traces.Distinct().Count());
        Assert.Equal([AgentTrace, AgentTrace, AgentTrace], records.Take(3).Select(r => r.GetProperty("agentTraceId").GetString()));
        Assert.False(records[3].TryGetProperty("agentTraceId", out _));

        // The refusal's problem body names the trace its audit record has.
        var problem = JsonDocument.Parse(refused[refused.IndexOf('{', StringComparison.Ordinal)..(refused.LastIndexOf('}') + 1)]).RootElement;
        Assert.Equal(traces[1], problem.GetProperty("traceId").GetString());

        // The upstream is told the gateway's trace, and nothing the agent chose about it.
        Assert.Equal(3, _upstream.Received.Count);
        var used = new[] { traces[0], traces[2], traces[3] };
        for (var i = 0; i < 3; i++)
        {
            var received = _upstream.Received[i];
            Assert.Equal(used[i], Assert.Single(received.Headers("traceparent")).Split('-')[1]);
            var provenance = new JsonWebToken(Assert.Single(received.Headers("AgentGateway-Provenance")));
            Assert.Equal(used[i], provenance.GetPayloadValue<string>("trace_id"));
            Assert.DoesNotContain(AgentTrace, received.Text, StringComparison.Ordinal);
            Assert.DoesNotContain("chosen-state", received.Text, StringComparison.Ordinal);
            Assert.DoesNotContain("mallory", received.Text, StringComparison.Ordinal);
        }

        _upstream.AssertNeverSaw(_token);
    }

    /// <summary>An agent that learnt another request's trace id (from a problem body, a log, a
    /// colleague) and names it in its traceparent does not join that trace: its request gets one of
    /// the gateway's own, and the forged id is kept as the agent's claim only. A traceparent sent
    /// twice, or not in W3C form, is no claim at all.</summary>
    [Fact]
    public async Task A_traceparent_naming_another_requests_trace_does_not_join_it()
    {
        var config = fx.Config(withRedis: false).WithUpstream("llm", _upstream.Url).WithAudit(_audit);
        await using var gateway = await GatewayInstance.StartAsync(config);

        var refused = await RawHttp.SendAsync(gateway, Get("/billing/invoices", ""));
        var victim = JsonDocument.Parse(refused[refused.IndexOf('{', StringComparison.Ordinal)..(refused.LastIndexOf('}') + 1)]).RootElement.GetProperty("traceId").GetString()!;
        var joining = await RawHttp.SendAsync(gateway, Get("/llm/openai/v1/models", $"traceparent: 00-{victim}-00f067aa0ba902b7-01\r\n"));
        var twice = await RawHttp.SendAsync(gateway, Get("/llm/openai/v1/models", $"traceparent: 00-{victim}-00f067aa0ba902b7-01\r\ntraceparent: 00-{AgentTrace}-00f067aa0ba902b7-01\r\n"));
        var upper = await RawHttp.SendAsync(gateway, Get("/llm/openai/v1/models", $"traceparent: 00-{victim.ToUpperInvariant()}-00F067AA0BA902B7-01\r\n"));

        Assert.StartsWith("HTTP/1.1 200", joining, StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 200", twice, StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 200", upper, StringComparison.Ordinal);
        var records = await AuditAsync(4);
        Assert.Equal(4, records.Count);
        Assert.Equal(victim, records[0].GetProperty("traceId").GetString());
        var traces = records.Skip(1).Select(r => r.GetProperty("traceId").GetString()!).ToList();
        Assert.DoesNotContain(victim, traces);
        Assert.DoesNotContain(AgentTrace, traces);
        Assert.Equal(3, traces.Distinct().Count());
        Assert.Equal(victim, records[1].GetProperty("agentTraceId").GetString());
        Assert.False(records[2].TryGetProperty("agentTraceId", out _));
        Assert.False(records[3].TryGetProperty("agentTraceId", out _));
        Assert.All(_upstream.Received, r => Assert.DoesNotContain(victim, r.Text, StringComparison.OrdinalIgnoreCase));
        Assert.Equal(traces, _upstream.Received.Select(r => Assert.Single(r.Headers("traceparent")).Split('-')[1]));
        _upstream.AssertNeverSaw(_token);
    }

    /// <summary>The audit trail is written off the request path: wait for it, with a deadline.</summary>
    private async Task<List<JsonElement>> AuditAsync(int count)
    {
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (true)
        {
            var lines = File.Exists(_audit) ? await ReadSharedAsync(_audit) : [];
            if (lines.Length >= count || DateTime.UtcNow > deadline)
            {
                return [.. lines.Select(l => JsonDocument.Parse(l).RootElement)];
            }

            await Task.Delay(50);
        }
    }

    private static async Task<string[]> ReadSharedAsync(string path)
    {
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(stream);
        return (await reader.ReadToEndAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    private string Get(string target, string headers) =>
        $"GET {target} HTTP/1.1\r\nHost: gateway.test\r\nAuthorization: Bearer {_token}\r\n{headers}Connection: close\r\n\r\n";
}
