using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using AgentGateway.FunctionalTests.Infrastructure;

namespace AgentGateway.FunctionalTests.Policy;

/// <summary>
/// Grants decided on every request: methods and paths on the forwarded path, LLM models on the
/// body forwarded byte for byte, rate limits across replicas, delegation, hours, shadow mode,
/// toxic combinations within a task, and the gateway's own secrets coming back from an agent.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class PolicyTests(GatewayFixture fx) : IAsyncLifetime
{
    public Task InitializeAsync() => fx.ResetAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task Methods_and_paths_are_decided_on_the_path_as_forwarded()
    {
        var config = fx.Config(withRedis: false);
        config["Gateway"]!["Grants"]!["crm-read"] = new JsonObject
        {
            ["Routes"] = new JsonArray("crm"),
            ["Methods"] = new JsonArray("GET"),
            // The route removes "/crm": rules see "/accounts/…", as the upstream does.
            ["Paths"] = new JsonArray("/accounts/**", "/health"),
        };
        await using var gateway = await GatewayInstance.StartAsync(config);
        var token = await fx.AgentTokenAsync();

        using var allowed = await SendAsync(gateway, HttpMethod.Get, "/crm/accounts/42/orders", token);
        using var wrongPath = await SendAsync(gateway, HttpMethod.Get, "/crm/admin/users", token);
        using var prefixTrick = await SendAsync(gateway, HttpMethod.Get, "/crm/accountsX", token);
        using var wrongMethod = await SendAsync(gateway, HttpMethod.Delete, "/crm/accounts/42", token);
        using var encodedSlash = await SendAsync(gateway, HttpMethod.Get, "/crm/accounts%2F..%2Fadmin", token);
        using var doubleSlash = await SendAsync(gateway, HttpMethod.Get, "/crm/accounts//x", token);
        using var matrix = await SendAsync(gateway, HttpMethod.Get, "/crm/accounts/1;admin", token);

        Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
        await ProblemAssert.IsProblemAsync(wrongPath, HttpStatusCode.Forbidden, "path-denied");
        await ProblemAssert.IsProblemAsync(prefixTrick, HttpStatusCode.Forbidden, "path-denied");
        await ProblemAssert.IsProblemAsync(wrongMethod, HttpStatusCode.Forbidden, "method-denied");
        await ProblemAssert.IsProblemAsync(encodedSlash, HttpStatusCode.BadRequest, "bad-request");
        await ProblemAssert.IsProblemAsync(doubleSlash, HttpStatusCode.BadRequest, "bad-request");
        await ProblemAssert.IsProblemAsync(matrix, HttpStatusCode.BadRequest, "bad-request");
        var forwarded = Assert.Single(fx.Crm.Received);
        Assert.Equal("/accounts/42/orders", forwarded.RequestMessage.Path);
        fx.Crm.AssertNeverSaw(token);
    }

    [Fact]
    public async Task A_second_grant_can_allow_what_the_first_does_not()
    {
        var config = fx.Config(withRedis: false);
        var grants = config["Gateway"]!["Grants"]!;
        grants["crm-read"] = new JsonObject { ["Routes"] = new JsonArray("crm"), ["Methods"] = new JsonArray("GET") };
        grants["crm-write"] = new JsonObject { ["Routes"] = new JsonArray("crm"), ["Methods"] = new JsonArray("POST"), ["Paths"] = new JsonArray("/orders") };
        config["Gateway"]!["Agents"]!["support-bot"]!["Grants"]!.AsArray().Add("crm-write");
        await using var gateway = await GatewayInstance.StartAsync(config);
        var token = await fx.AgentTokenAsync();

        using var read = await SendAsync(gateway, HttpMethod.Get, "/crm/anything", token);
        using var write = await SendAsync(gateway, HttpMethod.Post, "/crm/orders", token, "{}");
        using var writeElsewhere = await SendAsync(gateway, HttpMethod.Post, "/crm/accounts", token, "{}");

        Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        Assert.Equal(HttpStatusCode.OK, write.StatusCode);
        // The write grant got furthest (the method matched): its refusal is the one reported.
        await ProblemAssert.IsProblemAsync(writeElsewhere, HttpStatusCode.Forbidden, "path-denied");
        Assert.Equal(2, fx.Crm.Received.Count);
    }

    [Fact]
    public async Task Llm_models_are_decided_on_the_body_and_the_same_bytes_are_forwarded()
    {
        var config = WithModels(fx.Config(withRedis: false), "gpt-4o-mini", "gpt-4.1*");
        await using var gateway = await GatewayInstance.StartAsync(config);
        var token = await fx.AgentTokenAsync();
        const string allowedBody = "{\"model\":\"gpt-4.1-nano\",\"messages\":[{\"role\":\"user\",\"content\":\"h\\u00e9llo\"}]}";

        using var allowed = await SendAsync(gateway, HttpMethod.Post, "/llm/openai/v1/chat/completions", token, allowedBody);
        using var denied = await SendAsync(gateway, HttpMethod.Post, "/llm/openai/v1/chat/completions", token, "{\"model\":\"gpt-5\",\"messages\":[]}");
        using var none = await SendAsync(gateway, HttpMethod.Post, "/llm/openai/v1/chat/completions", token, "{\"messages\":[]}");
        using var twice = await SendAsync(gateway, HttpMethod.Post, "/llm/openai/v1/chat/completions", token, "{\"model\":\"gpt-4o-mini\",\"model\":\"gpt-5\"}");
        using var escaped = await SendAsync(gateway, HttpMethod.Post, "/llm/openai/v1/chat/completions", token, "{\"model\":\"gpt\\u002d5\"}");

        Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
        await ProblemAssert.IsProblemAsync(denied, HttpStatusCode.Forbidden, "model-denied");
        await ProblemAssert.IsProblemAsync(none, HttpStatusCode.Forbidden, "model-denied");
        await ProblemAssert.IsProblemAsync(twice, HttpStatusCode.BadRequest, "bad-request");
        await ProblemAssert.IsProblemAsync(escaped, HttpStatusCode.Forbidden, "model-denied");
        var forwarded = Assert.Single(fx.Llm.Received);
        Assert.Equal(allowedBody, forwarded.RequestMessage.Body);
        Assert.Equal("Bearer " + fx.OpenAiKey, fx.Llm.Header(0, "Authorization"));
        fx.Llm.AssertNeverSaw(token);
    }

    [Fact]
    public async Task The_rate_limit_holds_across_two_gateway_instances_on_one_redis()
    {
        var config = fx.Config(withRedis: true);
        config["Gateway"]!["Grants"]!["crm-read"]!["RateLimit"] = new JsonObject { ["Requests"] = 3, ["Window"] = "00:10:00" };
        await using var first = await GatewayInstance.StartAsync(config);
        await using var second = await GatewayInstance.StartAsync(config);
        var token = await fx.AgentTokenAsync();

        var statuses = new List<HttpStatusCode>();
        foreach (var gateway in new[] { first, second, first })
        {
            using var response = await gateway.GetAsAgentAsync("/crm/accounts", token);
            statuses.Add(response.StatusCode);
        }

        using var over = await second.GetAsAgentAsync("/crm/accounts", token);

        Assert.All(statuses, s => Assert.Equal(HttpStatusCode.OK, s));
        var problem = await ProblemAssert.IsProblemAsync(over, HttpStatusCode.TooManyRequests, "rate-limited");
        Assert.Contains("3 requests per", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        var retryAfter = int.Parse(over.Headers.GetValues("Retry-After").Single(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(retryAfter, 1, 600);
        Assert.Equal(3, fx.Crm.Received.Count);
    }

    [Fact]
    public async Task A_toxic_combination_is_refused_within_a_task_naming_the_earlier_step_and_a_fresh_task_escapes_nothing()
    {
        var config = WithEmailHop(fx.Config(withRedis: true));
        config["Gateway"]!["Grants"]!["crm-read"]!["Labels"] = new JsonArray("reads-crm");
        config["Gateway"]!["Policy"] = new JsonObject
        {
            ["Separation"] = new JsonObject
            {
                ["no-exfiltration"] = new JsonObject { ["After"] = new JsonArray("reads-crm"), ["Deny"] = new JsonArray("email-send") },
            },
        };
        await using var first = await GatewayInstance.StartAsync(config);
        await using var second = await GatewayInstance.StartAsync(config);
        var token = await fx.AgentTokenAsync();
        var task = "ticket-" + Guid.NewGuid().ToString("N")[..8];

        using var emailFirst = await SendAsync(first, HttpMethod.Post, "/email/send", token, "{}", task: "other-" + task);
        using var read = await SendAsync(first, HttpMethod.Get, "/crm/accounts", token, task: task);
        using var toxic = await SendAsync(second, HttpMethod.Post, "/email/send", token, "{}", task: task);
        // The same step under another label: a fresh task id, a changed one, none at all.
        using var fresh = await SendAsync(second, HttpMethod.Post, "/email/send", token, "{}", task: task + "-next");
        using var none = await SendAsync(first, HttpMethod.Post, "/email/send", token, "{}");
        using var earlierTask = await SendAsync(first, HttpMethod.Post, "/email/send", token, "{}", task: "other-" + task);

        Assert.Equal(HttpStatusCode.OK, emailFirst.StatusCode);
        Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        var problem = await ProblemAssert.IsProblemAsync(toxic, HttpStatusCode.Forbidden, "toxic-combination");
        var detail = problem.GetProperty("detail").GetString()!;
        Assert.Contains("crm-read", detail, StringComparison.Ordinal);
        Assert.Contains("route 'crm'", detail, StringComparison.Ordinal);
        Assert.Contains("no-exfiltration", detail, StringComparison.Ordinal);
        await ProblemAssert.IsProblemAsync(fresh, HttpStatusCode.Forbidden, "toxic-combination");
        await ProblemAssert.IsProblemAsync(none, HttpStatusCode.Forbidden, "toxic-combination");
        await ProblemAssert.IsProblemAsync(earlierTask, HttpStatusCode.Forbidden, "toxic-combination");
        // Two forwarded, and the task header never left the gateway.
        Assert.Equal(2, fx.Crm.Received.Count);
        Assert.All(Enumerable.Range(0, 2), i => Assert.Null(fx.Crm.Header(i, "Agent-Task")));
        fx.Crm.AssertNeverSaw(token);
    }

    [Fact]
    public async Task Without_a_task_an_agent_instances_own_history_holds_across_replicas_and_instances_stay_apart()
    {
        var prefix = "worker-" + Guid.NewGuid().ToString("N")[..6];
        await fx.Auth.RegisterClientAsync(prefix + "-1", "worker-secret", [], "gateway");
        await fx.Auth.RegisterClientAsync(prefix + "-2", "worker-secret", [], "gateway");
        var config = WithSeparation(WithEmailHop(fx.Config(withRedis: true)));
        config["Gateway"]!["Agents"]!["workers"] = new JsonObject
        {
            ["Owner"] = "batch-team@example.test",
            ["Class"] = new JsonObject { ["Issuer"] = "corp", ["SubjectPattern"] = prefix + "-*" },
            ["Grants"] = new JsonArray("crm-read", "email-send"),
        };
        await using var first = await GatewayInstance.StartAsync(config);
        await using var second = await GatewayInstance.StartAsync(config);
        var one = await fx.Auth.GetTokenAsync(prefix + "-1", "worker-secret", "gateway");
        var two = await fx.Auth.GetTokenAsync(prefix + "-2", "worker-secret", "gateway");

        using var read = await SendAsync(first, HttpMethod.Get, "/crm/accounts", one);
        using var toxic = await SendAsync(second, HttpMethod.Post, "/email/send", one, "{}");
        using var labelled = await SendAsync(first, HttpMethod.Post, "/email/send", one, "{}", task: "fresh-" + prefix);
        using var otherInstance = await SendAsync(second, HttpMethod.Post, "/email/send", two, "{}");

        Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        var problem = await ProblemAssert.IsProblemAsync(toxic, HttpStatusCode.Forbidden, "toxic-combination");
        Assert.Contains($"instance '{prefix}-1'", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        await ProblemAssert.IsProblemAsync(labelled, HttpStatusCode.Forbidden, "toxic-combination");
        Assert.Equal(HttpStatusCode.OK, otherInstance.StatusCode);
        Assert.Equal(2, fx.Crm.Received.Count);
        fx.Crm.AssertNeverSaw(one);
        fx.Crm.AssertNeverSaw(two);
    }

    [Fact]
    public async Task Require_task_refuses_task_less_requests_on_the_grants_a_rule_names()
    {
        var config = WithSeparation(WithEmailHop(fx.Config(withRedis: false)));
        config["Gateway"]!["Policy"]!["Separation"]!["no-exfiltration"]!["RequireTask"] = true;
        config["Gateway"]!["Grants"]!["llm"] = new JsonObject { ["Routes"] = new JsonArray("openai") };
        await using var gateway = await GatewayInstance.StartAsync(config);
        var token = await fx.AgentTokenAsync();

        using var readNone = await SendAsync(gateway, HttpMethod.Get, "/crm/accounts", token);
        using var emailNone = await SendAsync(gateway, HttpMethod.Post, "/email/send", token, "{}");
        using var readTask = await SendAsync(gateway, HttpMethod.Get, "/crm/accounts", token, task: "t1");
        using var unnamed = await gateway.GetAsAgentAsync("/llm/openai/v1/models", token);

        var problem = await ProblemAssert.IsProblemAsync(readNone, HttpStatusCode.Forbidden, "task-required");
        Assert.Contains("no-exfiltration", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        await ProblemAssert.IsProblemAsync(emailNone, HttpStatusCode.Forbidden, "task-required");
        Assert.Equal(HttpStatusCode.OK, readTask.StatusCode);
        Assert.Equal(HttpStatusCode.OK, unnamed.StatusCode);
        Assert.Single(fx.Crm.Received);
    }

    [Fact]
    public async Task A_configured_task_claim_is_the_only_source_of_the_task_and_its_absence_is_covered()
    {
        var config = WithSeparation(WithEmailHop(fx.Config(withRedis: false)));
        config["Gateway"]!["Policy"]!["Task"] = new JsonObject { ["Claim"] = "task" };
        await using var gateway = await GatewayInstance.StartAsync(config);
        var now = DateTime.UtcNow;
        var withTask = fx.Auth.Mint(Clients.Alpha, AuthorizationServer.GatewayAudience, now.AddMinutes(-1), now.AddMinutes(10), claims: new Dictionary<string, object> { ["task"] = "ticket-7" });
        var without = fx.Auth.Mint(Clients.Alpha, AuthorizationServer.GatewayAudience, now.AddMinutes(-1), now.AddMinutes(10));

        using var claimed = await SendAsync(gateway, HttpMethod.Get, "/crm/accounts", withTask, task: "ticket-7");
        using var contradicted = await SendAsync(gateway, HttpMethod.Get, "/crm/accounts", withTask, task: "ticket-8");
        // A token without the claim: the header does not stand in for it...
        using var headerOnly = await SendAsync(gateway, HttpMethod.Post, "/email/send", without, "{}", task: "ticket-9");
        // ...and without a task the agent's own history still holds: it read the CRM in ticket-7.
        using var taskless = await SendAsync(gateway, HttpMethod.Post, "/email/send", without, "{}");

        Assert.Equal(HttpStatusCode.OK, claimed.StatusCode);
        await ProblemAssert.IsProblemAsync(contradicted, HttpStatusCode.BadRequest, "bad-request");
        var problem = await ProblemAssert.IsProblemAsync(headerOnly, HttpStatusCode.BadRequest, "bad-request");
        Assert.Contains("'task' claim", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        await ProblemAssert.IsProblemAsync(taskless, HttpStatusCode.Forbidden, "toxic-combination");
        Assert.Single(fx.Crm.Received);
    }

    [Fact]
    public async Task A_shadow_grant_never_opens_what_the_enforced_grants_refuse()
    {
        // The report: GET on /accounts/** enforced, a tighter shadow grant beside it, and
        // DELETE /admin/users/x reached the upstream on the shadow grant.
        var config = fx.Config(withRedis: false);
        var grants = config["Gateway"]!["Grants"]!;
        grants["crm-read"] = new JsonObject { ["Routes"] = new JsonArray("crm"), ["Methods"] = new JsonArray("GET"), ["Paths"] = new JsonArray("/accounts/**") };
        grants["crm-tighter"] = new JsonObject
        {
            ["Routes"] = new JsonArray("crm", "billing"), ["Methods"] = new JsonArray("GET"), ["Paths"] = new JsonArray("/accounts/*"), ["Shadow"] = true,
            ["RateLimit"] = new JsonObject { ["Requests"] = 1, ["Window"] = "00:10:00" },
        };
        config["Gateway"]!["Agents"]!["support-bot"]!["Grants"]!.AsArray().Add("crm-tighter");
        var audit = Path.Combine(Path.GetTempPath(), $"agentgateway-shadow-{Guid.NewGuid():N}.jsonl");
        config.WithAudit(audit);
        var gateway = await GatewayInstance.StartAsync(config);
        try
        {
            var token = await fx.AgentTokenAsync();

            var refused = new List<(string, HttpStatusCode, string?)>();
            foreach (var (method, path) in new[]
            {
                (HttpMethod.Delete, "/crm/admin/users/x"), (HttpMethod.Post, "/crm/admin/users"), (HttpMethod.Put, "/crm/accounts/1"),
                (HttpMethod.Get, "/crm/admin/users"), (HttpMethod.Delete, "/crm/accounts/1"),
                // A route only the shadow grant names is not opened by it.
                (HttpMethod.Get, "/billing/accounts/1"), (HttpMethod.Delete, "/billing/admin/users/x"),
            })
            {
                using var response = await SendAsync(gateway, method, path, token, method == HttpMethod.Get || method == HttpMethod.Delete ? null : "{}");
                refused.Add(($"{method} {path}", response.StatusCode, ReasonOf(await response.Content.ReadAsStringAsync())));
            }

            using var allowed = await SendAsync(gateway, HttpMethod.Get, "/crm/accounts/1/orders", token);
            using var again = await SendAsync(gateway, HttpMethod.Get, "/crm/accounts/1", token);
            using var third = await SendAsync(gateway, HttpMethod.Get, "/crm/accounts/2", token);

            Assert.All(refused, r => Assert.True(r.Item2 == HttpStatusCode.Forbidden && r.Item3 is "method-denied" or "path-denied" or "grant-missing", $"{r.Item1}: {(int)r.Item2} {r.Item3}"));
            Assert.Equal("grant-missing", refused[^1].Item3);
            Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
            // The shadow rate limit (1 per 10 minutes) is recorded, never enforced.
            Assert.Equal(HttpStatusCode.OK, again.StatusCode);
            Assert.Equal(HttpStatusCode.OK, third.StatusCode);
            Assert.Equal(["/accounts/1/orders", "/accounts/1", "/accounts/2"], fx.Crm.Received.Select(r => r.RequestMessage.Path));
            Assert.Contains(gateway.Logs.Lines, l => l.Contains("Shadow policy would refuse agent support-bot on route crm: crm-tighter: path-denied", StringComparison.Ordinal));
            Assert.Contains(gateway.Logs.Lines, l => l.Contains("crm-tighter: rate-limited", StringComparison.Ordinal));
            fx.Crm.AssertNeverSaw(token);
        }
        finally
        {
            await gateway.DisposeAsync();
        }

        // The audit trail has them too, on the records of the requests that were forwarded.
        var uses = (await File.ReadAllLinesAsync(audit)).Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement)
            .Where(r => r.GetProperty("event").GetString() == "credential-use").ToList();
        File.Delete(audit);
        Assert.Equal(
            ["crm-tighter: path-denied", null, "crm-tighter: rate-limited"],
            uses.Select(r => r.TryGetProperty("shadow", out var shadow) ? shadow.GetString() : null));
        Assert.All(uses, r => Assert.Equal("crm-read", r.GetProperty("grant").GetString()));
    }

    [Fact]
    public async Task A_shadow_separation_rule_records_and_never_refuses()
    {
        var config = WithEmailHop(fx.Config(withRedis: false));
        config["Gateway"]!["Policy"] = new JsonObject
        {
            ["Separation"] = new JsonObject
            {
                ["no-exfiltration"] = new JsonObject { ["After"] = new JsonArray("crm-read"), ["Deny"] = new JsonArray("email-send"), ["Shadow"] = true, ["RequireTask"] = true },
            },
        };
        await using var gateway = await GatewayInstance.StartAsync(config);
        var token = await fx.AgentTokenAsync();

        using var read = await SendAsync(gateway, HttpMethod.Get, "/crm/accounts", token, task: "t1");
        using var taskless = await SendAsync(gateway, HttpMethod.Get, "/crm/accounts", token);
        using var email = await SendAsync(gateway, HttpMethod.Post, "/email/send", token, "{}", task: "t1");

        Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        Assert.Equal(HttpStatusCode.OK, taskless.StatusCode);
        Assert.Equal(HttpStatusCode.OK, email.StatusCode);
        Assert.Contains(gateway.Logs.Lines, l => l.Contains("on route crm: rule no-exfiltration: task-required", StringComparison.Ordinal));
        Assert.Contains(gateway.Logs.Lines, l => l.Contains("on route email: rule no-exfiltration: toxic-combination", StringComparison.Ordinal));
        Assert.Equal(3, fx.Crm.Received.Count);
    }

    [Fact]
    public async Task Without_redis_a_separation_rule_is_still_kept_in_process()
    {
        var config = WithEmailHop(fx.Config(withRedis: false));
        config["Gateway"]!["Policy"] = new JsonObject
        {
            ["Separation"] = new JsonObject { ["no-exfiltration"] = new JsonObject { ["After"] = new JsonArray("crm-read"), ["Deny"] = new JsonArray("email-send") } },
        };
        await using var gateway = await GatewayInstance.StartAsync(config);
        var token = await fx.AgentTokenAsync();

        using var read = await SendAsync(gateway, HttpMethod.Get, "/crm/a", token, task: "t1");
        using var toxic = await SendAsync(gateway, HttpMethod.Post, "/email/send", token, "{}", task: "t1");

        Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        await ProblemAssert.IsProblemAsync(toxic, HttpStatusCode.Forbidden, "toxic-combination");
    }

    [Fact]
    public async Task An_inspected_body_is_searched_as_it_was_parsed_its_names_its_decoded_strings_and_hop_tokens_in_it()
    {
        var (started, token, hopToken) = await StartWithAHopTokenAsync();
        await using var gateway = started;
        var escaped = string.Concat(fx.OpenAiKey.Select(c => $"\\u{(int)c:x4}"));
        static string Chat(string extra) => "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]" + extra + "}";

        using var clean = await SendAsync(gateway, HttpMethod.Post, "/llm/openai/v1/chat/completions", token, Chat(""));
        using var inName = await SendAsync(gateway, HttpMethod.Post, "/llm/openai/v1/chat/completions", token, Chat($",\"{escaped}\":1"));
        using var inEscapes = await SendAsync(gateway, HttpMethod.Post, "/llm/openai/v1/chat/completions", token, Chat($",\"user\":\"{escaped}\""));
        using var hopTokenIn = await SendAsync(gateway, HttpMethod.Post, "/llm/openai/v1/chat/completions", token, Chat($",\"user\":\"seen: {hopToken}\""));

        Assert.Equal(HttpStatusCode.OK, clean.StatusCode);
        await ProblemAssert.IsProblemAsync(inName, HttpStatusCode.Forbidden, "secret-in-request");
        await ProblemAssert.IsProblemAsync(inEscapes, HttpStatusCode.Forbidden, "secret-in-request");
        await ProblemAssert.IsProblemAsync(hopTokenIn, HttpStatusCode.Forbidden, "secret-in-request");
        Assert.Single(fx.Llm.Received);
        fx.Llm.AssertNeverSaw(token);
    }

    [Fact]
    public async Task A_secret_outside_any_string_of_an_inspected_body_is_found_in_its_raw_text()
    {
        // A key of digits (an account number, a PIN-like key) sent as a JSON number: no name or
        // string holds it, only the body's raw text does.
        const string variable = "AGW_TEST_NUMERIC_KEY";
        var numeric = "7" + string.Concat(Enumerable.Range(0, 23).Select(_ => (char)('0' + Random.Shared.Next(10))));
        Environment.SetEnvironmentVariable(variable, numeric);
        var config = WithModels(fx.Config(withRedis: false), "gpt-4o-mini")
            .WithHop("numeric", new JsonObject { ["Kind"] = "ApiKey", ["Header"] = "X-Api-Key", ["Format"] = "{secret}", ["Secret"] = "env:" + variable });
        await using var gateway = await GatewayInstance.StartAsync(config);
        var token = await fx.AgentTokenAsync();
        static string Chat(string extra) => "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]" + extra + "}";

        using var clean = await SendAsync(gateway, HttpMethod.Post, "/llm/openai/v1/chat/completions", token, Chat(",\"seed\":42"));
        using var asNumber = await SendAsync(gateway, HttpMethod.Post, "/llm/openai/v1/chat/completions", token, Chat($",\"seed\":{numeric}"));

        Assert.Equal(HttpStatusCode.OK, clean.StatusCode);
        await ProblemAssert.IsProblemAsync(asNumber, HttpStatusCode.Forbidden, "secret-in-request");
        Assert.Single(fx.Llm.Received);
        fx.Llm.AssertNeverSaw(numeric);
        fx.Llm.AssertNeverSaw(token);
    }

    [Fact]
    public async Task A_secret_the_gateway_holds_coming_back_from_the_agent_is_refused_and_recorded()
    {
        var (started, token, hopToken) = await StartWithAHopTokenAsync();
        await using var gateway = started;
        using var inHeader = await SendAsync(gateway, HttpMethod.Get, "/crm/accounts", token, headers: ("X-Debug", "key=" + fx.OpenAiKey));
        using var inQuery = await SendAsync(gateway, HttpMethod.Get, "/crm/accounts?note=" + Uri.EscapeDataString("token " + hopToken), token);
        using var inBody = await SendAsync(gateway, HttpMethod.Post, "/llm/openai/v1/chat/completions", token,
            "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"my key is " + fx.OpenAiKey[..9] + "\\u002d" + fx.OpenAiKey[10..] + "\"}]}");
        using var clientSecret = await SendAsync(gateway, HttpMethod.Get, "/crm/accounts", token, headers: ("X-Note", fx.CrmSecret));

        await ProblemAssert.IsProblemAsync(inHeader, HttpStatusCode.Forbidden, "secret-in-request");
        await ProblemAssert.IsProblemAsync(inQuery, HttpStatusCode.Forbidden, "secret-in-request");
        await ProblemAssert.IsProblemAsync(inBody, HttpStatusCode.Forbidden, "secret-in-request");
        await ProblemAssert.IsProblemAsync(clientSecret, HttpStatusCode.Forbidden, "secret-in-request");
        Assert.Single(fx.Crm.Received);
        Assert.Empty(fx.Llm.Received);
        Assert.Contains(gateway.Logs.Lines, l => l.Contains("SECURITY: agent support-bot sent a secret the gateway holds", StringComparison.Ordinal));
        Assert.DoesNotContain(gateway.Logs.Lines, l => l.Contains(fx.OpenAiKey, StringComparison.Ordinal) || l.Contains(hopToken, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Delegation_hours_and_shadow_mode()
    {
        var config = fx.Config(withRedis: false);
        var grants = config["Gateway"]!["Grants"]!;
        var now = DateTimeOffset.UtcNow;
        grants["llm"] = new JsonObject
        {
            ["Routes"] = new JsonArray("anthropic"),
            // A window that is not now: it opens in two hours.
            ["Hours"] = new JsonArray(new JsonObject { ["From"] = now.AddHours(2).ToString("HH:mm"), ["To"] = now.AddHours(3).ToString("HH:mm") }),
        };
        grants["crm-read"] = new JsonObject { ["Routes"] = new JsonArray("crm"), ["RequireDelegation"] = true };
        grants["billing"] = new JsonObject { ["Routes"] = new JsonArray("billing") };
        grants["billing-read-only"] = new JsonObject { ["Routes"] = new JsonArray("billing"), ["Methods"] = new JsonArray("GET"), ["Shadow"] = true };
        config["Gateway"]!["Agents"]!["support-bot"]!["Grants"]!.AsArray().Add("billing");
        config["Gateway"]!["Agents"]!["support-bot"]!["Grants"]!.AsArray().Add("billing-read-only");
        await using var gateway = await GatewayInstance.StartAsync(config);
        var token = await fx.AgentTokenAsync();
        var userToken = await fx.UserTokenAsync("alice");

        using var late = await gateway.GetAsAgentAsync("/llm/anthropic/v1/messages", token);
        using var alone = await gateway.GetAsAgentAsync("/crm/accounts", token);
        using var forUser = await SendAsync(gateway, HttpMethod.Get, "/crm/accounts", token, headers: ("Subject-Token", userToken));
        using var shadowed = await SendAsync(gateway, HttpMethod.Post, "/billing/invoices", token, "{}");

        await ProblemAssert.IsProblemAsync(late, HttpStatusCode.Forbidden, "outside-hours");
        await ProblemAssert.IsProblemAsync(alone, HttpStatusCode.Forbidden, "delegation-required");
        Assert.Equal(HttpStatusCode.OK, forUser.StatusCode);
        Assert.Equal(HttpStatusCode.OK, shadowed.StatusCode);
        Assert.Contains(gateway.Logs.Lines, l => l.Contains("Shadow policy would refuse agent support-bot on route billing: billing-read-only: method-denied", StringComparison.Ordinal));
        Assert.Empty(fx.Llm.Received);
        Assert.Equal(2, fx.Crm.Received.Count);
        fx.Crm.AssertNeverSaw(userToken);
    }

    /// <summary>Route <c>openai</c> inspects LLM bodies; grant <c>llm</c> allows <paramref name="models"/> there.</summary>
    /// <summary>A gateway allowing <c>gpt-4o-mini</c>, the agent's token, and the CRM hop token the
    /// gateway fetched for one request: a secret of the gateway's that an agent could send back.</summary>
    private async Task<(GatewayInstance Gateway, string Token, string HopToken)> StartWithAHopTokenAsync()
    {
        var gateway = await GatewayInstance.StartAsync(WithModels(fx.Config(withRedis: false), "gpt-4o-mini"));
        try
        {
            var token = await fx.AgentTokenAsync();
            using (var warm = await gateway.GetAsAgentAsync("/crm/accounts", token))
            {
                Assert.Equal(HttpStatusCode.OK, warm.StatusCode);
            }

            return (gateway, token, fx.Crm.Header(0, "Authorization")!["Bearer ".Length..]);
        }
        catch
        {
            await gateway.DisposeAsync();
            throw;
        }
    }

    private static JsonObject WithModels(JsonObject config, params string[] models)
    {
        config["ReverseProxy"]!["Routes"]!["openai"]!["Metadata"]!["Inspect"] = "Llm";
        config["Gateway"]!["Grants"]!["llm"] = new JsonObject
        {
            ["Routes"] = new JsonArray("openai"),
            ["Models"] = new JsonArray([.. models.Select(m => (JsonNode)m)]),
        };
        return config;
    }

    /// <summary>Rule <c>no-exfiltration</c>: no <c>email-send</c> after <c>crm-read</c>.</summary>
    private static JsonObject WithSeparation(JsonObject config)
    {
        config["Gateway"]!["Policy"] = new JsonObject
        {
            ["Separation"] = new JsonObject
            {
                ["no-exfiltration"] = new JsonObject { ["After"] = new JsonArray("crm-read"), ["Deny"] = new JsonArray("email-send") },
            },
        };
        return config;
    }

    private static string? ReasonOf(string body)
    {
        try
        {
            return System.Text.Json.JsonDocument.Parse(body).RootElement.GetProperty("reason").GetString();
        }
        catch (System.Text.Json.JsonException)
        {
            return null;
        }
    }

    /// <summary>Route <c>email</c> (the CRM upstream, no hop credential) opened by grant <c>email-send</c>.</summary>
    private static JsonObject WithEmailHop(JsonObject config)
    {
        config["ReverseProxy"]!["Routes"]!["email"] = new JsonObject
        {
            ["ClusterId"] = "crm",
            ["Match"] = new JsonObject { ["Path"] = "/email/{**rest}" },
            ["Metadata"] = new JsonObject { ["Credential"] = "none" },
        };
        config["Gateway"]!["Grants"]!["email-send"] = new JsonObject { ["Routes"] = new JsonArray("email") };
        config["Gateway"]!["Agents"]!["support-bot"]!["Grants"]!.AsArray().Add("email-send");
        return config;
    }

    private static async Task<HttpResponseMessage> SendAsync(
        GatewayInstance gateway, HttpMethod method, string path, string token, string? body = null, string? task = null, (string Name, string Value)? headers = null)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (body is not null)
        {
            request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        }

        if (task is not null)
        {
            request.Headers.Add("Agent-Task", task);
        }

        if (headers is { } header)
        {
            request.Headers.TryAddWithoutValidation(header.Name, header.Value);
        }

        return await gateway.Client.SendAsync(request);
    }
}
