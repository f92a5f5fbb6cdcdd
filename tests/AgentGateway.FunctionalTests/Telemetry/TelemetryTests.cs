using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using AgentGateway.FunctionalTests.Infrastructure;
using AgentGateway.Host;

namespace AgentGateway.FunctionalTests.Telemetry;

/// <summary>
/// Every credential use is an auditable span, exported over OTLP to a real receiver, and a
/// hash-chained audit record; no secret reaches any sink.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class TelemetryTests(GatewayFixture fx) : IAsyncLifetime
{
    private readonly string _audit = Path.Combine(Path.GetTempPath(), $"agentgateway-audit-{Guid.NewGuid():N}.jsonl");
    private OtlpReceiver _otlp = null!;

    public async Task InitializeAsync()
    {
        await fx.ResetAsync();
        _otlp = await OtlpReceiver.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _otlp.DisposeAsync();
        File.Delete(_audit);
    }

    [Fact]
    public async Task One_request_over_an_on_behalf_of_hop_is_traced_from_identity_to_injection()
    {
        var userToken = await fx.UserTokenAsync("alice");
        var agentToken = await fx.AgentTokenAsync();
        string traceId;
        await using (var gateway = await GatewayInstance.StartAsync(Observed(fx.Config(withRedis: true))))
        {
            using var response = await SendAsync(gateway, "/crm-obo/accounts", agentToken, ("Subject-Token", userToken));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            traceId = response.Headers.TryGetValues("traceparent", out var values) ? values.Single().Split('-')[1] : "";
        }

        var spans = _otlp.Spans;
        var server = Assert.Single(spans, s => s.Kind == 2 && s.Attribute("agentgateway.route.id") == "crm-obo");
        var trace = spans.Where(s => s.TraceId == server.TraceId).ToList();
        var identify = Assert.Single(trace, s => s.Name == "agentgateway.identify");
        var policy = Assert.Single(trace, s => s.Name == "agentgateway.policy");
        var acquire = Assert.Single(trace, s => s.Name == "agentgateway.credential.acquire");
        var inject = Assert.Single(trace, s => s.Name == "agentgateway.credential.inject");

        Assert.Equal(server.SpanId, identify.ParentSpanId);
        Assert.True(DescendsFrom(policy, server, trace), "the policy span belongs under the request");
        Assert.True(DescendsFrom(acquire, server, trace), "the acquisition span belongs under the request");
        Assert.True(DescendsFrom(inject, server, trace), "the injection span belongs under the request");
        // The token exchange the acquisition made is its child: an HttpClient span to the token endpoint.
        Assert.Contains(trace, s => s.Kind == 3 && DescendsFrom(s, acquire, trace) && s.Attribute("url.full")?.Contains("/connect/token", StringComparison.Ordinal) == true);
        // The forwarded request: a client span with the upstream's status.
        Assert.Contains(trace, s => s.Kind == 3 && s.Attribute("http.response.status_code") == "200" && s.Attribute("server.port") == new Uri(fx.Crm.Url).Port.ToString(System.Globalization.CultureInfo.InvariantCulture));

        foreach (var span in new[] { identify, policy, acquire, inject })
        {
            Assert.Equal("AgentGateway", span.Scope);
            Assert.Equal("support-bot", span.Attribute("agentgateway.agent.id"));
        }

        foreach (var span in new[] { server, policy, acquire, inject })
        {
            Assert.Equal("alice", span.Attribute("agentgateway.delegation.user"));
            Assert.Equal("alice,support-bot", span.Attribute("agentgateway.delegation.chain"));
        }

        Assert.Equal("crm-for-users", policy.Attribute("agentgateway.policy.grant"));
        Assert.Equal("allowed", policy.Attribute("agentgateway.policy.decision"));
        Assert.Equal("crm-obo", acquire.Attribute("agentgateway.credential.name"));
        Assert.Equal("OAuthTokenExchange", acquire.Attribute("agentgateway.credential.kind"));
        Assert.Equal("Fetched", acquire.Attribute("agentgateway.credential.source"));
        Assert.StartsWith("fp:", acquire.Attribute("agentgateway.credential.fingerprint"), StringComparison.Ordinal);
        Assert.NotNull(acquire.Attribute("agentgateway.credential.expires_at"));
        Assert.Equal("Authorization", inject.Attribute("agentgateway.credential.header"));
        Assert.Equal(new Uri(fx.Crm.Url).Host, inject.Attribute("server.address"));
        Assert.Equal(acquire.Attribute("agentgateway.credential.fingerprint"), inject.Attribute("agentgateway.credential.fingerprint"));
        Assert.Equal("forwarded", server.Attribute("agentgateway.decision"));
        if (traceId.Length > 0)
        {
            Assert.Equal(traceId, server.TraceId);
        }

        fx.Crm.AssertNeverSaw(agentToken);
        fx.Crm.AssertNeverSaw(userToken);
    }

    [Fact]
    public async Task A_refusal_is_traced_with_its_reason()
    {
        var token = await fx.AgentTokenAsync(Clients.Alpha);
        await using (var gateway = await GatewayInstance.StartAsync(Observed(fx.Config(withRedis: false))))
        {
            using var response = await gateway.GetAsAgentAsync("/billing/invoices", token);
            await ProblemAssert.IsProblemAsync(response, HttpStatusCode.Forbidden, "grant-missing");
        }

        var server = Assert.Single(_otlp.Spans, s => s.Kind == 2 && s.Attribute("agentgateway.route.id") == "billing");
        Assert.Equal("grant-missing", server.Attribute("agentgateway.decision"));
        Assert.Equal(2, server.Status);
        Assert.Equal("support-bot", server.Attribute("agentgateway.agent.id"));
    }

    [Fact]
    public async Task No_secret_reaches_any_sink_in_any_encoding()
    {
        var userToken = await fx.UserTokenAsync("alice");
        var agentToken = await fx.AgentTokenAsync();
        var problems = new StringBuilder();
        IReadOnlyCollection<string> logs;
        await using (var gateway = await GatewayInstance.StartAsync(Observed(fx.Config(withRedis: true))))
        {
            using (var ok = await SendAsync(gateway, "/crm/accounts?access_token=" + agentToken, agentToken))
            using (var llm = await SendAsync(gateway, "/llm/openai/v1/models", agentToken, ("x-api-key", "agent-brought-" + fx.OpenAiKey[3..])))
            using (var obo = await SendAsync(gateway, "/crm-obo/accounts", agentToken, ("Subject-Token", userToken)))
            using (var leaked = await SendAsync(gateway, "/crm/accounts", agentToken, ("X-Debug", fx.OpenAiKey)))
            using (var denied = await SendAsync(gateway, "/billing/x", agentToken))
            using (var anonymous = await SendAsync(gateway, "/crm/accounts", "not-a-jwt-" + fx.CrmSecret))
            {
                foreach (var response in new[] { ok, llm, obo, leaked, denied, anonymous })
                {
                    problems.AppendLine(await response.Content.ReadAsStringAsync());
                    problems.AppendLine(response.Headers.ToString());
                }
            }

            logs = gateway.Logs.Lines;
        }

        var hopTokens = Enumerable.Range(0, fx.Crm.Received.Count).Select(i => fx.Crm.Header(i, "Authorization")).OfType<string>()
            .Where(h => h.StartsWith("Bearer ", StringComparison.Ordinal)).Select(h => h["Bearer ".Length..]).Distinct().ToList();
        Assert.NotEmpty(hopTokens);
        var canaries = new List<string> { agentToken, userToken, fx.OpenAiKey, fx.CrmSecret, fx.OboSecret, fx.AnthropicKey };
        canaries.AddRange(hopTokens);
        var sinks = new Dictionary<string, string>
        {
            ["problem bodies and headers"] = problems.ToString(),
            ["logs"] = string.Join('\n', logs),
            ["audit"] = await File.ReadAllTextAsync(_audit),
            ["spans"] = string.Join('\n', _otlp.Spans.SelectMany(s => s.Attributes.Select(a => $"{a.Key}={Flatten(a.Value)}"))),
        };
        foreach (var (path, body) in _otlp.Payloads)
        {
            // Raw OTLP bytes (traces, metrics, logs): strings travel as UTF-8 inside the protobuf.
            sinks["otlp " + path + " " + sinks.Count] = Encoding.UTF8.GetString(body);
        }

        Assert.Contains(_otlp.Payloads, p => p.Path == "/v1/metrics");
        Assert.Contains(_otlp.Payloads, p => p.Path == "/v1/logs");
        foreach (var canary in canaries)
        {
            foreach (var form in Forms(canary))
            {
                foreach (var (sink, text) in sinks)
                {
                    Assert.False(text.Contains(form, StringComparison.Ordinal), $"a secret (form {Describe(form, canary)}) reached the {sink}");
                }
            }
        }
    }

    [Fact]
    public async Task The_audit_log_chains_every_use_and_refusal_and_verify_names_the_first_broken_record()
    {
        var token = await fx.AgentTokenAsync();
        await using (var gateway = await GatewayInstance.StartAsync(Observed(fx.Config(withRedis: false))))
        {
            using (await gateway.GetAsAgentAsync("/crm/accounts", token))
            using (await gateway.GetAsAgentAsync("/billing/x", token))
            using (await gateway.GetAsAgentAsync("/llm/openai/v1/models", token))
            {
            }
        }

        // A restart continues the chain in the same file.
        await using (var gateway = await GatewayInstance.StartAsync(Observed(fx.Config(withRedis: false))))
        {
            using (await gateway.GetAsAgentAsync("/crm/accounts", token))
            {
            }
        }

        var lines = await File.ReadAllLinesAsync(_audit);
        Assert.Equal(4, lines.Length);
        var records = lines.Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(["credential-use", "refusal", "credential-use", "credential-use"], records.Select(r => r.GetProperty("event").GetString()));
        Assert.Equal([1L, 2, 3, 4], records.Select(r => r.GetProperty("seq").GetInt64()));
        Assert.Equal("support-bot", records[0].GetProperty("agent").GetString());
        Assert.Equal("crm", records[0].GetProperty("credential").GetString());
        Assert.Equal("OAuthClientCredentials", records[0].GetProperty("kind").GetString());
        Assert.StartsWith("fp:", records[0].GetProperty("fingerprint").GetString(), StringComparison.Ordinal);
        Assert.Matches("^[0-9a-f]{32}$", records[0].GetProperty("traceId").GetString());
        Assert.Equal("grant-missing", records[1].GetProperty("reason").GetString());
        Assert.Equal(403, records[1].GetProperty("status").GetInt32());
        Assert.Equal(0, (await VerifyAsync(_audit)).Code);

        var edited = _audit + ".edited";
        await File.WriteAllLinesAsync(edited, [lines[0], lines[1].Replace("grant-missing", "forwarded", StringComparison.Ordinal), lines[2], lines[3]]);
        var removed = _audit + ".removed";
        await File.WriteAllLinesAsync(removed, [lines[0], lines[2], lines[3]]);
        try
        {
            var (editedCode, editedError) = await VerifyAsync(edited);
            var (removedCode, removedError) = await VerifyAsync(removed);

            Assert.Equal(GatewayCommand.ConfigInvalid, editedCode);
            Assert.Contains("broken at line 2", editedError, StringComparison.Ordinal);
            Assert.Contains("altered", editedError, StringComparison.Ordinal);
            Assert.Equal(GatewayCommand.ConfigInvalid, removedCode);
            Assert.Contains("broken at line 2", removedError, StringComparison.Ordinal);
            Assert.Contains("removed", removedError, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(edited);
            File.Delete(removed);
        }
    }

    /// <summary>Exporting to the test's receiver quickly, and auditing to the test's file.</summary>
    private JsonObject Observed(JsonObject config)
    {
        config["OTEL_EXPORTER_OTLP_ENDPOINT"] = _otlp.Url;
        config["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf";
        config["OTEL_BSP_SCHEDULE_DELAY"] = "100";
        config["OTEL_METRIC_EXPORT_INTERVAL"] = "200";
        config["Gateway"]!["Audit"] = new JsonObject { ["Path"] = _audit };
        return config;
    }

    private static bool DescendsFrom(OtlpReceiver.Span span, OtlpReceiver.Span ancestor, IReadOnlyList<OtlpReceiver.Span> trace)
    {
        var current = span;
        for (var depth = 0; depth < 10 && current is not null; depth++)
        {
            if (current.ParentSpanId == ancestor.SpanId)
            {
                return true;
            }

            current = trace.FirstOrDefault(s => s.SpanId == current.ParentSpanId);
        }

        return false;
    }

    private static async Task<(int Code, string Error)> VerifyAsync(string file)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var code = await GatewayCommand.RunAsync(["audit", "verify", file], stdout, stderr);
        return (code, stderr.ToString());
    }

    private static async Task<HttpResponseMessage> SendAsync(GatewayInstance gateway, string path, string token, params (string Name, string Value)[] headers)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        foreach (var (name, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        return await gateway.Client.SendAsync(request);
    }

    /// <summary>The secret and the encodings it could travel in.</summary>
    private static IEnumerable<string> Forms(string secret)
    {
        var bytes = Encoding.UTF8.GetBytes(secret);
        var base64 = Convert.ToBase64String(bytes);
        yield return secret;
        yield return base64.TrimEnd('=');
        yield return base64.TrimEnd('=').Replace('+', '-').Replace('/', '_');
        yield return Uri.EscapeDataString(secret);
        if (secret.Count(c => c == '.') == 2)
        {
            // A JWT's signature alone identifies it.
            yield return secret[(secret.LastIndexOf('.') + 1)..];
        }
    }

    private static string Describe(string form, string canary) => form == canary ? "plain" : form.Length < 20 ? "short" : "encoded";

    private static string Flatten(object? value) => value is string[] list ? string.Join(",", list) : Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? "";
}
