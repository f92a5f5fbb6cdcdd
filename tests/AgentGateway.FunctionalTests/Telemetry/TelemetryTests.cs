using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using AgentGateway.FunctionalTests.Infrastructure;
using AgentGateway.Host;

namespace AgentGateway.FunctionalTests.Telemetry;

/// <summary>
/// Every credential use is a span, exported over OTLP to a real receiver, and a hash-chained audit
/// record, which stays complete whatever the sampling; no secret reaches any sink.
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
    public async Task A_request_is_its_server_span_one_span_per_credential_use_and_the_upstream_call()
    {
        var userToken = await fx.UserTokenAsync("alice");
        var agentToken = await fx.AgentTokenAsync();
        var traceIds = new List<string>();
        var host = "";
        await using (var gateway = await GatewayInstance.StartAsync(Observed(fx.Config(withRedis: true))))
        {
            host = gateway.Client.BaseAddress!.Host;
            // The first use fetches the hop token, the second takes it from the cache.
            for (var i = 0; i < 2; i++)
            {
                using var response = await SendAsync(gateway, "/crm-obo/accounts", agentToken, ("Subject-Token", userToken));
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            }
        }

        var spans = _otlp.Spans;
        var servers = spans.Where(s => s.Kind == 2 && s.Attribute("agentgateway.route.id") == "crm-obo").ToList();
        Assert.Equal(2, servers.Count);
        foreach (var (server, miss) in new[] { (servers[0], true), (servers[1], false) })
        {
            var trace = spans.Where(s => s.TraceId == server.TraceId).ToList();

            // Identify and policy are attributes of the request's span, not spans of their own.
            Assert.Equal("support-bot", server.Attribute("agentgateway.agent.id"));
            Assert.NotNull(server.Attribute("agentgateway.agent.issuer"));
            Assert.Equal("crm-for-users", server.Attribute("agentgateway.policy.grant"));
            Assert.Equal("allowed", server.Attribute("agentgateway.policy.decision"));
            Assert.Equal("forwarded", server.Attribute("agentgateway.decision"));
            Assert.Empty(server.Events);

            // The request's semantic-convention attributes: ASP.NET Core's from its start, the
            // gateway's from its end (the route YARP matched, the status sent to the agent).
            Assert.Equal("GET", server.Attribute("http.request.method"));
            Assert.Equal("/crm-obo/accounts", server.Attribute("url.path"));
            Assert.Equal("http", server.Attribute("url.scheme"));
            Assert.Equal(host, server.Attribute("server.address"));
            Assert.Equal("1.1", server.Attribute("network.protocol.version"));
            Assert.Equal("200", server.Attribute("http.response.status_code"));
            Assert.StartsWith("/crm-obo/", server.Attribute("http.route"), StringComparison.Ordinal);
            Assert.Equal("GET " + server.Attribute("http.route"), server.Name);
            Assert.Null(server.Attribute("error.type"));

            // The gateway's one span of its own: the credential use, directly under the request.
            var credential = Assert.Single(trace, s => s.Scope == "AgentGateway");
            Assert.Equal("agentgateway.credential", credential.Name);
            Assert.Equal(server.SpanId, credential.ParentSpanId);
            Assert.Equal("crm-obo", credential.Attribute("agentgateway.credential.name"));
            Assert.Equal("OAuthTokenExchange", credential.Attribute("agentgateway.credential.kind"));
            Assert.StartsWith("fp:", credential.Attribute("agentgateway.credential.fingerprint"), StringComparison.Ordinal);
            Assert.NotNull(credential.Attribute("agentgateway.credential.expires_at"));
            Assert.Equal("Authorization", credential.Attribute("agentgateway.credential.header"));
            Assert.Equal(new Uri(fx.Crm.Url).Host, credential.Attribute("server.address"));
            Assert.Equal("crm-for-users", credential.Attribute("agentgateway.policy.grant"));

            // Token-endpoint calls are the credential span's children, and only on a cache miss.
            var children = trace.Where(s => s.ParentSpanId == credential.SpanId).ToList();
            if (miss)
            {
                Assert.Equal("Fetched", credential.Attribute("agentgateway.credential.source"));
                Assert.Contains(children, s => s.Kind == 3 && s.Attribute("url.full")?.Contains("/connect/token", StringComparison.Ordinal) == true);
            }
            else
            {
                Assert.Equal("LocalCache", credential.Attribute("agentgateway.credential.source"));
                Assert.Empty(children);
            }

            // The forwarded request: a client span under the request, with the upstream's status.
            var upstream = Assert.Single(trace, s => s.Kind == 3 && s.Attribute("server.port") == new Uri(fx.Crm.Url).Port.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Assert.Equal(server.SpanId, upstream.ParentSpanId);
            Assert.Equal("200", upstream.Attribute("http.response.status_code"));

            // Who acts, on every span the gateway makes or describes; each attribute once.
            foreach (var span in new[] { server, credential })
            {
                Assert.Empty(span.Repeated);
                Assert.Equal("support-bot", span.Attribute("agentgateway.agent.id"));
                Assert.Equal("alice", span.Attribute("agentgateway.delegation.user"));
                Assert.Equal("alice,support-bot", span.Attribute("agentgateway.delegation.chain"));
            }

            traceIds.Add(server.TraceId);
        }

        Assert.Equal(traceIds, await AuditTraceIdsAsync("credential-use"));
        Assert.Equal(2, fx.Crm.Received.Count);
        fx.Crm.AssertNeverSaw(agentToken);
        fx.Crm.AssertNeverSaw(userToken);
    }

    [Fact]
    public async Task Each_credential_span_carries_the_expiry_of_the_token_it_used_when_a_route_changes_token()
    {
        // Token A lives an hour; after the upstream refuses it, the route fetches token B, which
        // lives three. The span reuses its formatted expiry while the token's expiry is the same,
        // so a reuse keyed on anything less would describe B with A's expiry.
        fx.Auth.SetTokenLifetime(Clients.CrmHop, TimeSpan.FromHours(1));
        var agentToken = await fx.AgentTokenAsync();
        var scenario = "refuse-once-" + Guid.NewGuid().ToString("N");
        try
        {
            await using (var gateway = await GatewayInstance.StartAsync(Observed(fx.Config(withRedis: false))))
            {
                using (var first = await SendAsync(gateway, "/crm/warm", agentToken))
                {
                    Assert.Equal(HttpStatusCode.OK, first.StatusCode);
                }

                fx.Auth.SetTokenLifetime(Clients.CrmHop, TimeSpan.FromHours(3));
                fx.Crm.Server.Given(WireMock.RequestBuilders.Request.Create().WithPath("/flaky").UsingAnyMethod())
                    .AtPriority(1)
                    .InScenario(scenario)
                    .WillSetStateTo("refused")
                    .RespondWith(WireMock.ResponseBuilders.Response.Create().WithStatusCode(401).WithHeader("WWW-Authenticate", "Bearer error=\"invalid_token\"").WithBody("token revoked"));

                // Sent with A (refused), retried with B; then B again, from the cache.
                using (var retried = await SendAsync(gateway, "/crm/flaky", agentToken))
                {
                    Assert.Equal(HttpStatusCode.OK, retried.StatusCode);
                }

                using (var after = await SendAsync(gateway, "/crm/after", agentToken))
                {
                    Assert.Equal(HttpStatusCode.OK, after.StatusCode);
                }
            }
        }
        finally
        {
            foreach (var mapping in fx.Crm.Server.Mappings.Where(m => m.Scenario == scenario).ToList())
            {
                fx.Crm.Server.DeleteMapping(mapping.Guid);
            }
        }

        var uses = _otlp.Spans.Where(s => s.Name == "agentgateway.credential" && s.Attribute("agentgateway.credential.name") == "crm").ToList();
        Assert.Equal(4, uses.Count);
        var byToken = uses.GroupBy(s => s.Attribute("agentgateway.credential.fingerprint")).ToList();
        Assert.Equal(2, byToken.Count);
        var expiries = byToken.Select(g => Assert.Single(g.Select(s => s.Attribute("agentgateway.credential.expires_at")).Distinct()))
            .Select(text => DateTimeOffset.Parse(text!, System.Globalization.CultureInfo.InvariantCulture))
            .Order()
            .ToList();
        var apart = expiries[1] - expiries[0];
        Assert.InRange(apart, TimeSpan.FromHours(2) - TimeSpan.FromMinutes(5), TimeSpan.FromHours(2) + TimeSpan.FromMinutes(5));
        fx.Crm.AssertNeverSaw(agentToken);
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
        Assert.Equal("403", server.Attribute("http.response.status_code"));
        Assert.Equal(2, server.Status);
        Assert.Equal("support-bot", server.Attribute("agentgateway.agent.id"));
        var refusal = Assert.Single(server.Events);
        Assert.Equal("agentgateway.refusal", refusal.Name);
        Assert.Equal("grant-missing", refusal.Attribute("agentgateway.decision"));
        Assert.Equal("403", refusal.Attribute("http.response.status_code"));
        Assert.Contains("billing", refusal.Attribute("agentgateway.refusal.detail"), StringComparison.Ordinal);
        Assert.DoesNotContain(_otlp.Spans, s => s.TraceId == server.TraceId && s.Scope == "AgentGateway");
    }

    [Fact]
    public async Task A_request_is_measured_by_its_duration_and_the_gateways_counters_not_by_per_buffer_or_per_match_counters()
    {
        var token = await fx.AgentTokenAsync();
        var config = Observed(fx.Config(withRedis: false));
        config["OTEL_TRACES_EXPORTER"] = "none";
        await using (var gateway = await GatewayInstance.StartAsync(config))
        {
            for (var i = 0; i < 2; i++)
            {
                using var response = await gateway.GetAsAgentAsync("/crm/accounts", token);
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            }
        }

        // Disposing the gateway flushed its metrics; instrument names travel as UTF-8 in the protobuf.
        var metrics = string.Join('\n', _otlp.Payloads.Where(p => p.Path == "/v1/metrics").Select(p => Encoding.UTF8.GetString(p.Body)));
        foreach (var exported in new[] { "agentgateway.decisions", "agentgateway.credential.uses", "agentgateway.upstream.responses", "http.server.request.duration", "kestrel.active_connections" })
        {
            Assert.Contains(exported, metrics, StringComparison.Ordinal);
        }

        // Recorded on every block rented, every route match, twice per request: not exported, so
        // never enabled and never recorded.
        foreach (var dropped in new[] { "aspnetcore.memory_pool.rented", "aspnetcore.routing.match_attempts", "http.server.active_requests", "http.client.request.duration" })
        {
            Assert.DoesNotContain(dropped, metrics, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task An_upstream_5xx_makes_the_request_span_an_error_whose_type_is_the_status()
    {
        var agentToken = await fx.AgentTokenAsync();
        var mapping = Guid.NewGuid();
        var path = "/unavailable-" + mapping.ToString("N");
        fx.Crm.Server.Given(WireMock.RequestBuilders.Request.Create().WithPath(path).UsingAnyMethod())
            .WithGuid(mapping)
            .AtPriority(1)
            .RespondWith(WireMock.ResponseBuilders.Response.Create().WithStatusCode(503).WithBody("down"));
        try
        {
            await using var gateway = await GatewayInstance.StartAsync(Observed(fx.Config(withRedis: false)));
            using var response = await SendAsync(gateway, "/crm" + path, agentToken);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        }
        finally
        {
            fx.Crm.Server.DeleteMapping(mapping);
        }

        // The gateway forwarded the answer; the span says the request failed, and why.
        var server = Assert.Single(_otlp.Spans, s => s.Kind == 2 && s.Attribute("url.path") == "/crm" + path);
        Assert.Equal("forwarded", server.Attribute("agentgateway.decision"));
        Assert.Equal("503", server.Attribute("http.response.status_code"));
        Assert.Equal("503", server.Attribute("error.type"));
        Assert.Equal(2, server.Status);
        Assert.Equal("GET " + server.Attribute("http.route"), server.Name);
        fx.Crm.AssertNeverSaw(agentToken);
    }

    [Fact]
    public async Task Sampled_out_requests_leave_no_span_yet_every_audit_record_and_pass_their_trace_on()
    {
        var token = await fx.AgentTokenAsync();
        var config = Observed(fx.Config(withRedis: false));
        config["OTEL_TRACES_SAMPLER"] = "traceidratio";
        config["OTEL_TRACES_SAMPLER_ARG"] = "0";
        await using (var gateway = await GatewayInstance.StartAsync(config))
        {
            for (var i = 0; i < 3; i++)
            {
                using var response = await gateway.GetAsAgentAsync("/crm/accounts", token);
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            }
        }

        // Disposing the gateway flushed its exporters: metrics came, spans did not.
        Assert.Contains(_otlp.Payloads, p => p.Path == "/v1/metrics");
        Assert.Empty(_otlp.Spans);
        var audited = await AuditTraceIdsAsync("credential-use");
        Assert.Equal(3, audited.Count);
        Assert.Equal(audited, UpstreamTraceIds(3));
        Assert.All(Enumerable.Range(0, 3), i => Assert.EndsWith("-00", fx.Crm.Header(i, "traceparent"), StringComparison.Ordinal));
    }

    [Fact]
    public async Task OTEL_TRACES_EXPORTER_none_exports_no_span_and_registers_no_tracing_while_metrics_still_go()
    {
        var token = await fx.AgentTokenAsync();
        var config = Observed(fx.Config(withRedis: false));
        config["OTEL_TRACES_EXPORTER"] = "none";
        await using (var gateway = await GatewayInstance.StartAsync(config))
        {
            Assert.Null(gateway.Services.GetService(typeof(OpenTelemetry.Trace.TracerProvider)));
            Assert.NotNull(gateway.Services.GetService(typeof(OpenTelemetry.Metrics.MeterProvider)));
            using var response = await gateway.GetAsAgentAsync("/crm/accounts", token);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        // Disposing the gateway flushed its exporters.
        Assert.Contains(_otlp.Payloads, p => p.Path == "/v1/metrics");
        Assert.DoesNotContain(_otlp.Payloads, p => p.Path == "/v1/traces");
        Assert.Single(await AuditTraceIdsAsync("credential-use"));

        // And every signal off: nothing of OpenTelemetry at all.
        config["OTEL_METRICS_EXPORTER"] = "none";
        config["OTEL_LOGS_EXPORTER"] = " None ";
        await using (var gateway = await GatewayInstance.StartAsync(config))
        {
            Assert.Null(gateway.Services.GetService(typeof(OpenTelemetry.Trace.TracerProvider)));
            Assert.Null(gateway.Services.GetService(typeof(OpenTelemetry.Metrics.MeterProvider)));
            Assert.Null(gateway.Services.GetService(typeof(OpenTelemetry.Logs.LoggerProvider)));
        }
    }

    [Fact]
    public async Task Exporting_nothing_registers_no_telemetry_and_still_passes_the_audited_trace_on()
    {
        var token = await fx.AgentTokenAsync();
        var config = fx.Config(withRedis: false).WithAudit(_audit);
        const string agentTrace = "4bf92f3577b34da6a3ce929d0e0e4736";
        await using (var gateway = await GatewayInstance.StartAsync(config))
        {
            Assert.Null(gateway.Services.GetService(typeof(OpenTelemetry.Trace.TracerProvider)));
            Assert.Null(gateway.Services.GetService(typeof(OpenTelemetry.Metrics.MeterProvider)));

            // ASP.NET Core starts a request activity when its hosting log category is on at any
            // level, or something listens: neither, so no activity and no HTTP client span.
            var loggers = (Microsoft.Extensions.Logging.ILoggerFactory)gateway.Services.GetService(typeof(Microsoft.Extensions.Logging.ILoggerFactory))!;
            Assert.False(loggers.CreateLogger("Microsoft.AspNetCore.Hosting.Diagnostics").IsEnabled(Microsoft.Extensions.Logging.LogLevel.Critical));
            for (var i = 0; i < 2; i++)
            {
                // The agent's own trace headers, which must not reach the upstream.
                using var request = new HttpRequestMessage(HttpMethod.Get, "/crm/accounts");
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
                request.Headers.TryAddWithoutValidation("traceparent", $"00-{agentTrace}-00f067aa0ba902b7-01");
                request.Headers.TryAddWithoutValidation("tracestate", "agent=chosen-state");
                request.Headers.TryAddWithoutValidation("baggage", "user=mallory");
                using var response = await gateway.Client.SendAsync(request);
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            }
        }

        // The upstream was told the audited trace of each request, as W3C traceparent (not sampled:
        // nothing records it), and nothing the agent chose about it.
        var audited = await AuditTraceIdsAsync("credential-use");
        Assert.Equal(2, audited.Count);
        Assert.Equal(audited, UpstreamTraceIds(2));
        Assert.DoesNotContain(agentTrace, audited);
        for (var i = 0; i < 2; i++)
        {
            Assert.Matches("^00-[0-9a-f]{32}-[0-9a-f]{16}-00$", fx.Crm.Header(i, "traceparent"));
            Assert.Null(fx.Crm.Header(i, "tracestate"));
            Assert.Null(fx.Crm.Header(i, "baggage"));
        }
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
        return config.WithAudit(_audit);
    }

    /// <summary>The trace ids of the audit records of <paramref name="event"/>, in order.</summary>
    private async Task<List<string>> AuditTraceIdsAsync(string @event) =>
        [.. (await File.ReadAllLinesAsync(_audit)).Select(l => JsonDocument.Parse(l).RootElement)
            .Where(r => r.GetProperty("event").GetString() == @event)
            .Select(r => r.GetProperty("traceId").GetString()!)];

    /// <summary>The trace ids of the <c>traceparent</c> headers the CRM upstream received, in order.</summary>
    private List<string> UpstreamTraceIds(int count) =>
        [.. Enumerable.Range(0, count).Select(i => fx.Crm.Header(i, "traceparent")?.Split('-')[1] ?? "(none)")];

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
