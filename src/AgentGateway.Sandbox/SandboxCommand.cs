using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using AgentGateway.Host;
using AgentGateway.Proxy.Inventory;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ModelContextProtocol.Client;

namespace AgentGateway.Sandbox;

/// <summary>
/// <c>agentgateway-sandbox</c>: the whole product in one process, with nothing outside it — a demo
/// identity provider, an upstream for each hop kind, and the real gateway (the same host, the same
/// pipeline) on its embedded default. It plays a short agent task through the gateway and prints
/// each step the way a person wants to read it; what it prints about decisions and injected
/// credentials comes from the gateway's own audit trail. Exit code 0 only if every step behaved.
/// </summary>
internal static class SandboxCommand
{
    public const int Ok = 0;

    /// <summary>A step did not behave as expected.</summary>
    public const int Failed = 1;

    public const int Usage = 2;

    internal const string AgentId = "sandbox-agent";
    internal const string AgentSecret = "sandbox-agent-secret";
    internal const string Operator = "sandbox-operator";
    internal const string OperatorSecret = "sandbox-operator-secret";

    private const string Help = """
        Usage:
          agentgateway-sandbox [--serve] [--redis]         the whole product in one process: a demo identity
                                                          provider, upstreams, and an agent task played
                                                          through the real gateway (--serve keeps it up on
                                                          http://127.0.0.1:5080; --redis shares the cache
                                                          through Redis at 127.0.0.1:6379)
          agentgateway-sandbox --upstreams --out DIR [--host NAME] [--bind ADDRESS] [--port N]
                                                          only the demo identity provider (port N) and
                                                          upstreams (N+1, MCP N+2) over TLS, for gateways
                                                          elsewhere (deploy/compose.yaml); writes the CA
                                                          certificate and the hop secrets to DIR
          agentgateway-sandbox --help                     this text

        The production command, agentgateway, runs a gateway on your own configuration.
        """;

    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (args.Contains("--help") || args.Contains("-h"))
        {
            await stdout.WriteLineAsync(Help);
            return Ok;
        }

        if (args.FirstOrDefault(a => a.StartsWith('-') && a is not ("--serve" or "--redis" or "--upstreams" or "--out" or "--host" or "--bind" or "--port")) is { } unknown)
        {
            await stderr.WriteLineAsync($"Unknown option '{unknown}'.");
            await stderr.WriteLineAsync(Help);
            return Usage;
        }

        return args.Contains("--upstreams") ? await SandboxUpstreamsCommand.RunAsync(args, stdout, stderr) : await RunStoryAsync(args, stdout);
    }

    internal static string? OptionValue(string[] args, string name)
    {
        var index = Array.IndexOf(args, name);
        return index >= 0 && index + 1 < args.Length ? args[index + 1] : null;
    }

    /// <summary>The story's parties: the agent and an operator (demo secrets: they hold nothing but
    /// their own demo identity), and the gateway's clients for the CRM and the MCP hop.</summary>
    internal static void AddClients(DemoIdentityProvider idp, string crmSecret, string toolsSecret)
    {
        idp.AddAgent(AgentId, AgentSecret, "agentgateway");
        idp.AddClient(Operator, OperatorSecret, "agentgateway");
        idp.AddClient("crm-gateway", crmSecret, "crm-api");
        idp.AddClient("tools-gateway", toolsSecret, "tools");
    }

    private static async Task<int> RunStoryAsync(string[] args, TextWriter stdout)
    {
        var serve = args.Contains("--serve");
        var redis = args.Contains("--redis") ? "127.0.0.1:6379" : null;
        var work = Directory.CreateTempSubdirectory("agentgateway-sandbox-");
        var llmKey = "sk-sandbox-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
        Environment.SetEnvironmentVariable("AGW_SANDBOX_LLM_KEY", llmKey);
        Environment.SetEnvironmentVariable("AGW_SANDBOX_CRM_SECRET", "sandbox-crm-secret");
        Environment.SetEnvironmentVariable("AGW_SANDBOX_TOOLS_SECRET", "sandbox-tools-secret");
        Environment.SetEnvironmentVariable("AGW_SANDBOX_CACHE_KEY", Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)));

        await using var idp = new DemoIdentityProvider();
        AddClients(idp, crmSecret: "sandbox-crm-secret", toolsSecret: "sandbox-tools-secret");
        await idp.StartAsync(SandboxListener.Loopback);
        // The managed identity SDK finds "this machine's" identity endpoint through its own override.
        Environment.SetEnvironmentVariable("AZURE_POD_IDENTITY_AUTHORITY_HOST", idp.Url.TrimEnd('/'));
        await using var upstreams = new DemoUpstreams(idp, llmKey);
        await upstreams.StartAsync(SandboxListener.Loopback);
        // The database hop over PostgreSQL's own protocol, when PostgreSQL is installed here.
        var (postgres, noPostgres) = await SandboxPostgres.TryStartAsync();
        await using var database = postgres;
        Environment.SetEnvironmentVariable("AGW_SANDBOX_DB_PASSWORD", postgres?.Password);

        var configFile = Path.Combine(work.FullName, "gateway.json");
        var auditFile = Path.Combine(work.FullName, "audit.jsonl");
        await File.WriteAllTextAsync(configFile, Config(idp, upstreams, auditFile, redis, postgres).ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        await using var gateway = GatewayHost.Build(configFile, ["--urls", serve ? "http://127.0.0.1:5080" : "http://127.0.0.1:0"], builder => builder.Logging.ClearProviders());
        await gateway.MapAgentGatewayAsync();
        await gateway.StartAsync();
        var address = new Uri(gateway.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
        var admin = new Uri(gateway.Services.GetRequiredService<AdminServer>().Addresses[0]);

        await stdout.WriteLineAsync("AgentGateway sandbox — everything runs in this process; nothing outside it is needed.");
        await stdout.WriteLineAsync($"  identity provider  {idp.Url}");
        await stdout.WriteLineAsync($"  upstreams          {upstreams.ApiUrl} (LLM, CRM, database, e-mail), MCP tools {upstreams.McpUrl}mcp");
        await stdout.WriteLineAsync($"  gateway            {address} (admin API {admin}), configuration {configFile}");
        await stdout.WriteLineAsync($"  shared cache       {(redis is null ? "none: in process (embedded default)" : "Redis at " + redis)}");
        var databasePort = postgres is null ? 0 : gateway.Services.GetRequiredService<AgentGateway.Proxy.Database.PostgresListener>().EndpointOf(SandboxPostgres.Database)!.Port;
        await stdout.WriteLineAsync(postgres is null
            ? $"  PostgreSQL         not shown ({noPostgres}); to see an agent's psql session through the gateway: {SandboxPostgres.InstallHint}"
            : $"  PostgreSQL         127.0.0.1:{postgres.Port}; the gateway's PostgreSQL listener 127.0.0.1:{databasePort} (database '{SandboxPostgres.Database}')");
        await stdout.WriteLineAsync();

        using var story = new Story(stdout, address, auditFile, upstreams) { Postgres = postgres, DatabasePort = databasePort };
        await story.RunAsync(idp, admin);
        await story.PrintSummaryAsync();

        if (serve)
        {
            var token = await Story.AgentTokenAsync(idp);
            await stdout.WriteLineAsync();
            await stdout.WriteLineAsync("Serving until Ctrl+C. Try (a fresh agent token, valid 15 minutes):");
            await stdout.WriteLineAsync($"  TOKEN={token}");
            await stdout.WriteLineAsync($"  curl -s {address}llm/v1/chat/completions -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' -d '{{\"model\":\"sandbox-small\",\"messages\":[]}}'");
            await stdout.WriteLineAsync($"  curl -s {address}crm/accounts/42 -H \"Authorization: Bearer $TOKEN\" -H 'Agent-Task: my-task'");
            await stdout.WriteLineAsync($"  curl -s -X POST {address}email/send -H \"Authorization: Bearer $TOKEN\" -H 'Agent-Task: my-task'   # refused: toxic combination");
            await stdout.WriteLineAsync($"  curl -s {address}crm/accounts/42   # refused: no identity");
            await stdout.WriteLineAsync($"  audit trail: {auditFile}");
            await UntilStoppedAsync();
        }

        await gateway.StopAsync();
        return story.AllBehaved ? Ok : Failed;
    }

    /// <summary>Waits for Ctrl+C or, in a container, SIGTERM.</summary>
    internal static async Task UntilStoppedAsync()
    {
        var stop = new TaskCompletionSource();
        using var interrupt = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGINT, Stop);
        using var terminate = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, Stop);
        await stop.Task;

        void Stop(System.Runtime.InteropServices.PosixSignalContext context)
        {
            context.Cancel = true;
            stop.TrySetResult();
        }
    }

    /// <summary>The embedded default, plus what the story needs: one agent, its grants, a separation
    /// rule, one credential per hop kind, the admin API and the audit trail.</summary>
    private static JsonObject Config(DemoIdentityProvider idp, DemoUpstreams upstreams, string auditFile, string? redis, SandboxPostgres? postgres)
    {
        JsonObject Route(string path, string credential, string? inspect = null, string cluster = "api")
        {
            var metadata = new JsonObject { ["Credential"] = credential };
            if (inspect is not null)
            {
                metadata["Inspect"] = inspect;
            }

            return new JsonObject { ["ClusterId"] = cluster, ["Match"] = new JsonObject { ["Path"] = path }, ["Metadata"] = metadata };
        }

        var gateway = new JsonObject
        {
            ["Inbound"] = new JsonObject
            {
                ["Issuers"] = new JsonObject
                {
                    ["sandbox"] = new JsonObject
                    {
                        ["Issuer"] = idp.Url,
                        ["JwksUri"] = idp.Url + "jwks",
                        ["Audiences"] = new JsonArray("agentgateway"),
                        ["Algorithms"] = new JsonArray("ES256"),
                    },
                },
            },
            ["Agents"] = new JsonObject
            {
                [AgentId] = new JsonObject
                {
                    ["Owner"] = "support-team@sandbox.test",
                    ["Description"] = "Answers customer tickets",
                    ["Identities"] = new JsonArray(new JsonObject { ["Issuer"] = "sandbox", ["Subject"] = AgentId }),
                    ["Grants"] = new JsonArray("llm", "crm-read", "database", "tools", "email"),
                },
            },
            ["Grants"] = new JsonObject
            {
                ["llm"] = new JsonObject { ["Routes"] = new JsonArray("llm"), ["Models"] = new JsonArray("sandbox-*") },
                ["crm-read"] = new JsonObject { ["Routes"] = new JsonArray("crm"), ["Methods"] = new JsonArray("GET"), ["Labels"] = new JsonArray("reads-customer-data") },
                ["database"] = new JsonObject { ["Routes"] = new JsonArray("db") },
                ["tools"] = new JsonObject { ["Routes"] = new JsonArray("mcp"), ["Mcp"] = new JsonObject { ["Tools"] = new JsonArray("lookup_*") } },
                ["email"] = new JsonObject { ["Routes"] = new JsonArray("email") },
            },
            ["Policy"] = new JsonObject
            {
                ["Separation"] = new JsonObject
                {
                    ["no-exfiltration"] = new JsonObject { ["After"] = new JsonArray("reads-customer-data"), ["Deny"] = new JsonArray("email") },
                },
            },
            ["Credentials"] = new JsonObject
            {
                ["llm"] = new JsonObject { ["Kind"] = "ApiKey", ["Secret"] = "env:AGW_SANDBOX_LLM_KEY" },
                ["crm"] = new JsonObject { ["Kind"] = "OAuthClientCredentials", ["TokenEndpoint"] = idp.Url + "token", ["ClientId"] = "crm-gateway", ["ClientSecret"] = "env:AGW_SANDBOX_CRM_SECRET" },
                ["database"] = new JsonObject { ["Kind"] = "ManagedIdentity", ["Provider"] = "Azure", ["Scopes"] = new JsonArray("https://database.sandbox/.default") },
                ["tools"] = new JsonObject
                {
                    ["Kind"] = "McpOAuth",
                    ["Resource"] = upstreams.McpUrl + "mcp",
                    ["AuthorizationServers"] = new JsonArray(idp.Url),
                    ["ClientId"] = "tools-gateway",
                    ["ClientSecret"] = "env:AGW_SANDBOX_TOOLS_SECRET",
                },
            },
            ["Admin"] = new JsonObject { ["Urls"] = "http://127.0.0.1:0", ["Issuer"] = "sandbox", ["Subjects"] = new JsonArray(Operator) },
            ["Audit"] = new JsonObject { ["Path"] = auditFile },
        };
        if (redis is not null)
        {
            gateway["Redis"] = redis;
            gateway["Cache"] = new JsonObject { ["EncryptionKey"] = "env:AGW_SANDBOX_CACHE_KEY" };
        }

        if (postgres is not null)
        {
            // Loopback both ways, so no TLS: off loopback the listener needs Tls and the upstream VerifyFull.
            gateway["Databases"] = new JsonObject
            {
                [SandboxPostgres.Database] = new JsonObject
                {
                    ["Listen"] = "127.0.0.1:0",
                    ["Upstream"] = new JsonObject { ["Host"] = "127.0.0.1", ["Port"] = postgres.Port, ["Database"] = SandboxPostgres.Database, ["Tls"] = "Disable" },
                },
            };
            gateway["Grants"]!["tickets"] = new JsonObject
            {
                ["Databases"] = new JsonObject { [SandboxPostgres.Database] = new JsonObject { ["Role"] = SandboxPostgres.Role, ["Password"] = "env:AGW_SANDBOX_DB_PASSWORD" } },
            };
            gateway["Agents"]![AgentId]!["Grants"]!.AsArray().Add("tickets");
        }

        return new JsonObject
        {
            ["ReverseProxy"] = new JsonObject
            {
                ["Routes"] = new JsonObject
                {
                    ["llm"] = Route("/llm/{**rest}", "llm", "Llm"),
                    ["crm"] = Route("/crm/{**rest}", "crm"),
                    ["db"] = Route("/db/{**rest}", "database"),
                    ["email"] = Route("/email/{**rest}", "none"),
                    ["mcp"] = Route("/mcp/{**rest}", "tools", "Mcp", cluster: "tools"),
                },
                ["Clusters"] = new JsonObject
                {
                    ["api"] = new JsonObject { ["Destinations"] = new JsonObject { ["d"] = new JsonObject { ["Address"] = upstreams.ApiUrl } } },
                    ["tools"] = new JsonObject { ["Destinations"] = new JsonObject { ["d"] = new JsonObject { ["Address"] = upstreams.McpUrl } } },
                },
            },
            ["Gateway"] = gateway,
        };
    }

    /// <summary>The agent task, step by step, with what each step should come to.</summary>
    private sealed class Story(TextWriter output, Uri gateway, string auditFile, DemoUpstreams upstreams) : IDisposable
    {
        private readonly HttpClient _http = new() { BaseAddress = gateway };
        private readonly List<(string Step, string Expected, string Got, bool Ok)> _results = [];
        private int _auditLines;
        private string _token = "";

        public bool AllBehaved => _results.Count > 0 && _results.All(r => r.Ok);

        public SandboxPostgres? Postgres { get; init; }

        public int DatabasePort { get; init; }

        public void Dispose() => _http.Dispose();

        public static async Task<string> AgentTokenAsync(DemoIdentityProvider idp)
        {
            using var response = await new HttpClient().PostAsync(idp.Url + "token", new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "client_credentials",
                ["client_id"] = AgentId,
                ["client_secret"] = AgentSecret,
            }));
            return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("access_token").GetString()!;
        }

        public async Task RunAsync(DemoIdentityProvider idp, Uri admin)
        {
            _token = await AgentTokenAsync(idp);
            await Heading(1, "The agent proves who it is", $"client credentials at the demo identity provider: its own token, for the gateway only (aud agentgateway), 15 minutes");
            await output.WriteLineAsync($"  agent        {AgentId}, owned by support-team@sandbox.test");
            Record("own identity", "a token", "a token", _token.Length > 0);

            await SendAsync(2, "Ask the LLM for a draft", HttpMethod.Post, "/llm/v1/chat/completions", """{"model":"sandbox-small","messages":[{"role":"user","content":"Draft a reply"}]}""",
                task: "ticket-1", expected: 200, extra: ("x-api-key", "sk-an-old-key-the-agent-should-not-have"));
            await SendAsync(3, "Read the customer from the CRM", HttpMethod.Get, "/crm/accounts/42", null, task: "ticket-1", expected: 200);
            await SendAsync(4, "Read it again (the hop token comes from cache)", HttpMethod.Get, "/crm/accounts/42", null, task: "ticket-1", expected: 200);
            await SendAsync(5, "Query the ticket database", HttpMethod.Post, "/db/query", """{"sql":"select 1"}""", task: "ticket-1", expected: 200);
            await McpAsync(6, "Call an MCP tool it is granted (lookup_customer)", "lookup_customer", expectAllowed: true);
            await McpAsync(7, "Call an MCP tool it is not granted (delete_customer)", "delete_customer", expectAllowed: false);
            await SendAsync(8, "E-mail the customer data in the same task", HttpMethod.Post, "/email/send", "{}", task: "ticket-1", expected: 403, reason: "toxic-combination");
            await SendAsync(9, "E-mail under a fresh task id: the agent's own history still holds", HttpMethod.Post, "/email/send", "{}", task: "ticket-2", expected: 403, reason: "toxic-combination");
            var step = 10;
            Task<(int Code, string Output)>? openSession = null;
            if (Postgres is { } database)
            {
                await Heading(step++, "Query the ticket database with psql (PostgreSQL's own protocol)", $"psql host=127.0.0.1 port={DatabasePort} dbname={SandboxPostgres.Database} user={SandboxPostgres.Role}, password = the agent's own token");
                var (code, text) = await database.PsqlAsync(DatabasePort, SandboxPostgres.Role, SandboxPostgres.Database, _token, "SELECT current_user || ' sees ' || count(*) || ' tickets' FROM ticket");
                await output.WriteLineAsync($"  psql         {(code == 0 ? text : "failed: " + Shorten(text))}");
                var audited = await DatabaseAuditAsync();
                Record("psql through the gateway", $"{SandboxPostgres.Role} sees 3 tickets", code == 0 ? text : "exit " + code, code == 0 && text == $"{SandboxPostgres.Role} sees 3 tickets" && audited && !text.Contains(database.Password, StringComparison.Ordinal));

                await Heading(step++, "Keep a database session open with a long query", "psql … -c 'SELECT pg_sleep(60)'");
                openSession = database.PsqlAsync(DatabasePort, SandboxPostgres.Role, SandboxPostgres.Database, _token, "SELECT pg_sleep(60)");
                await Task.Delay(1000);
                await output.WriteLineAsync("  psql         running");
            }

            await Heading(step++, "An operator revokes the agent", $"POST {admin}admin/agents/{AgentId}/revoke with an operator's token");
            using var revoke = new HttpRequestMessage(HttpMethod.Post, new Uri(admin, $"/admin/agents/{AgentId}/revoke")) { Content = new StringContent("""{"reason":"sandbox demonstration"}""", Encoding.UTF8, "application/json") };
            revoke.Headers.Authorization = new AuthenticationHeaderValue("Bearer", idp.Mint(Operator, "agentgateway", TimeSpan.FromMinutes(5)));
            using (var revoked = await _http.SendAsync(revoke))
            {
                await output.WriteLineAsync($"  admin API    {(int)revoked.StatusCode}");
                Record("revoke", "200", ((int)revoked.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture), revoked.StatusCode == HttpStatusCode.OK);
            }

            await SendAsync(step++, "The revoked agent tries again", HttpMethod.Post, "/llm/v1/chat/completions", """{"model":"sandbox-small","messages":[]}""", task: "ticket-3", expected: 401, reason: "agent-revoked");
            if (openSession is not null)
            {
                await Heading(step, "The revoked agent's open database session", "nothing: the gateway ends it");
                var ended = await Task.WhenAny(openSession, Task.Delay(TimeSpan.FromSeconds(15))) == openSession;
                var (code, text) = ended ? await openSession : (0, "still running");
                await output.WriteLineAsync($"  psql         {Shorten(text.Replace('\n', ' '))}");
                Record("open session ended", "FATAL, agent revoked", ended ? (text.Contains("was revoked", StringComparison.Ordinal) ? "FATAL, agent revoked" : "exit " + code) : "still open", ended && code != 0 && text.Contains("was revoked", StringComparison.Ordinal));
            }
        }

        /// <summary>The audit record of the database session just opened: credential, kind, fingerprint.</summary>
        private async Task<bool> DatabaseAuditAsync()
        {
            var deadline = DateTime.UtcNow.AddSeconds(5);
            while (DateTime.UtcNow < deadline)
            {
                var lines = File.Exists(auditFile) ? await ReadSharedAsync(auditFile) : [];
                var start = lines.Skip(_auditLines).Select(l => JsonDocument.Parse(l).RootElement).LastOrDefault(r => r.GetProperty("event").GetString() == "database-session-start");
                if (start.ValueKind == JsonValueKind.Object)
                {
                    _auditLines = lines.Length;
                    await output.WriteLineAsync($"  decision     allowed by grant '{start.GetProperty("grant").GetString()}' as role '{start.GetProperty("role").GetString()}'");
                    await output.WriteLineAsync($"  injected     {start.GetProperty("kind").GetString()} for {start.GetProperty("destination").GetString()} {start.GetProperty("fingerprint").GetString()}, by SCRAM-SHA-256; the agent never saw it");
                    return true;
                }

                await Task.Delay(25);
            }

            await output.WriteLineAsync("  audit        MISSING: no database-session-start record within 5 s");
            return false;
        }

        public async Task PrintSummaryAsync()
        {
            await output.WriteLineAsync();
            await output.WriteLineAsync("Summary");
            var width = _results.Max(r => r.Step.Length);
            foreach (var (step, expected, got, ok) in _results)
            {
                await output.WriteLineAsync($"  {(ok ? "ok  " : "FAIL")}  {step.PadRight(width)}  expected {expected,-24} got {got}");
            }

            await output.WriteLineAsync(AllBehaved ? "Every step behaved as expected." : "Some steps did not behave as expected.");
        }

        private async Task SendAsync(int number, string title, HttpMethod method, string path, string? body, string task, int expected, string? reason = null, (string Name, string Value)? extra = null, bool credential = true)
        {
            await Heading(number, title, $"{method} {path}  (task {task})");
            using var request = new HttpRequestMessage(method, path);
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _token);
            request.Headers.Add("Agent-Task", task);
            if (extra is { } header)
            {
                request.Headers.Add(header.Name, header.Value);
            }

            if (body is not null)
            {
                request.Content = new StringContent(body, Encoding.UTF8, "application/json");
            }

            await output.WriteLineAsync($"  presented    Authorization: Bearer <the agent's own token>{(extra is { } e ? $", {e.Name}: <a key it should not hold>" : "")}");
            using var response = await _http.SendAsync(request);
            var text = await response.Content.ReadAsStringAsync();
            var audited = await ReportAsync(response, text, reason, credential && reason is null);
            var gotReason = ProblemReason(text);
            var ok = (int)response.StatusCode == expected && (reason is null || gotReason == reason) && audited;
            Record(title, reason is null ? expected.ToString(System.Globalization.CultureInfo.InvariantCulture) : $"{expected} {reason}", $"{(int)response.StatusCode}{(gotReason is null ? "" : " " + gotReason)}", ok);
        }

        private async Task McpAsync(int number, string title, string tool, bool expectAllowed)
        {
            await Heading(number, title, "a real MCP client (Streamable HTTP) through the gateway");
            await output.WriteLineAsync("  presented    Authorization: Bearer <the agent's own token>");
            string got;
            try
            {
                var transport = new HttpClientTransport(new HttpClientTransportOptions
                {
                    Endpoint = new Uri(gateway, "/mcp"),
                    TransportMode = HttpTransportMode.StreamableHttp,
                    AdditionalHeaders = new Dictionary<string, string> { ["Authorization"] = "Bearer " + _token, ["Agent-Task"] = "ticket-1" },
                });
                await using var client = await McpClient.CreateAsync(transport);
                var result = await client.CallToolAsync(tool, new Dictionary<string, object?> { ["id"] = "42" });
                got = result.IsError == true ? "tool error" : "allowed";
                await output.WriteLineAsync($"  tool result  {string.Join(" ", result.Content.OfType<ModelContextProtocol.Protocol.TextContentBlock>().Select(c => c.Text))}");
            }
            catch (Exception ex) when (ex is HttpRequestException or ModelContextProtocol.McpException)
            {
                got = ex.Message.Contains("mcp-tool-denied", StringComparison.Ordinal) ? "403 mcp-tool-denied" : "failed: " + ex.GetType().Name;
            }

            var audited = await AuditAsync(expectAllowed ? null : "mcp-tool-denied", credential: expectAllowed);
            var executed = upstreams.ToolCalls.Any(c => c.StartsWith(tool, StringComparison.Ordinal));
            await output.WriteLineAsync($"  server       {(executed ? $"executed {tool}" : $"never executed {tool}")}; agent token seen: {(upstreams.ToolCalls.Contains("AGENT TOKEN ARRIVED") ? "YES" : "no")}");
            var ok = expectAllowed ? got == "allowed" && executed : got == "403 mcp-tool-denied" && !executed;
            Record(title, expectAllowed ? "allowed" : "403 mcp-tool-denied", got, ok && audited && !upstreams.ToolCalls.Contains("AGENT TOKEN ARRIVED"));
        }

        private async Task<bool> ReportAsync(HttpResponseMessage response, string text, string? refusal, bool injects)
        {
            var audited = await AuditAsync(refusal, injects);
            var credential = response.Headers.TryGetValues("X-Sandbox-Credential", out var c) ? c.First() : null;
            var seen = response.Headers.TryGetValues("X-Sandbox-Agent-Token-Seen", out var s) ? s.First() : null;
            await output.WriteLineAsync(credential is null
                ? $"  answer       {(int)response.StatusCode} {Shorten(text)}"
                : $"  upstream     {(int)response.StatusCode}: credential {credential}; agent token seen: {seen}; {Shorten(text)}");
            return audited;
        }

        /// <summary>Prints what the gateway's audit trail recorded for the step's request(s) and says
        /// whether it holds the record the step must leave: the refusal with its reason, or a
        /// credential use. The trail is written off the request path, so the answer can arrive
        /// before its record: wait for the record instead of taking whatever is there (an MCP
        /// call's initialize record, say, ahead of the refused tools/call).</summary>
        private async Task<bool> AuditAsync(string? refusal, bool credential)
        {
            var fresh = new List<JsonElement>();
            var deadline = DateTime.UtcNow.AddSeconds(5);
            while (true)
            {
                var lines = File.Exists(auditFile) ? await ReadSharedAsync(auditFile) : [];
                fresh.AddRange(lines.Skip(_auditLines).Select(l => JsonDocument.Parse(l).RootElement));
                _auditLines = lines.Length;
                if (Holds(fresh) || DateTime.UtcNow > deadline)
                {
                    break;
                }

                await Task.Delay(25);
            }

            if (fresh.LastOrDefault(r => r.GetProperty("event").GetString() == "refusal") is { ValueKind: JsonValueKind.Object } refused)
            {
                await output.WriteLineAsync($"  stripped     everything the agent brought (never forwarded)");
                await output.WriteLineAsync($"  decision     refused: {refused.GetProperty("reason").GetString()} — {refused.GetProperty("detail").GetString()}");
                await output.WriteLineAsync($"  trace        {refused.GetProperty("traceId").GetString()}");
            }
            else if (fresh.LastOrDefault(r => r.GetProperty("event").GetString() == "credential-use") is { ValueKind: JsonValueKind.Object } use)
            {
                await output.WriteLineAsync($"  stripped     Authorization and every credential the agent brought");
                await output.WriteLineAsync($"  decision     allowed by grant '{use.GetProperty("grant").GetString()}'");
                var source = use.GetProperty("source").GetString() switch
                {
                    "Fetched" => "fresh from its issuer",
                    "LocalCache" => "from the in-process cache",
                    "SharedCache" => "from the shared cache (Redis)",
                    _ => "configured key",
                };
                await output.WriteLineAsync($"  injected     {use.GetProperty("kind").GetString()} '{use.GetProperty("credential").GetString()}' {use.GetProperty("fingerprint").GetString()}, {source}");
                await output.WriteLineAsync($"  trace        {use.GetProperty("traceId").GetString()}");
            }
            else
            {
                await output.WriteLineAsync("  stripped     Authorization and every credential the agent brought");
                await output.WriteLineAsync("  decision     allowed; this hop needs no credential");
            }

            if (!Holds(fresh))
            {
                await output.WriteLineAsync($"  audit        MISSING: no {(refusal is null ? "credential-use" : $"'{refusal}' refusal")} record within 5 s");
                return false;
            }

            return true;

            bool Holds(List<JsonElement> records) => refusal is not null
                ? records.Any(r => Is(r, "refusal") && r.GetProperty("reason").GetString() == refusal)
                : !credential || records.Any(r => Is(r, "credential-use"));

            static bool Is(JsonElement record, string kind) => record.GetProperty("event").GetString() == kind;
        }

        private static async Task<string[]> ReadSharedAsync(string path)
        {
            await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(stream);
            var text = await reader.ReadToEndAsync();

            // Only whole lines: the gateway may be part-way through writing the last one.
            return text[..(text.LastIndexOf('\n') + 1)].Split('\n', StringSplitOptions.RemoveEmptyEntries);
        }

        private async Task Heading(int number, string title, string how)
        {
            await output.WriteLineAsync();
            await output.WriteLineAsync($"Step {number}. {title}");
            await output.WriteLineAsync($"  request      {how}");
        }

        private void Record(string step, string expected, string got, bool ok) => _results.Add((step, expected, got, ok));

        private static string? ProblemReason(string text)
        {
            try
            {
                return JsonDocument.Parse(text).RootElement.TryGetProperty("reason", out var reason) ? reason.GetString() : null;
            }
            catch (JsonException)
            {
                return null;
            }
        }

        private static string Shorten(string text) => text.Length <= 110 ? text : text[..107] + "...";
    }
}
