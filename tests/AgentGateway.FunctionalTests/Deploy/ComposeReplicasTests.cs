using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using AgentGateway.FunctionalTests.Infrastructure;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace AgentGateway.FunctionalTests.Deploy;

/// <summary>
/// deploy/compose.yaml's wiring, run without a container engine: <c>agentgateway-sandbox
/// --upstreams</c> as the sandbox service, and two <c>agentgateway run</c> processes on the shipped
/// deploy/compose/gateway.json as the replicas, sharing one Redis — with the compose file's
/// environment (SSL_CERT_FILE on the sandbox's CA, the managed identity override) and only its
/// service names swapped for loopback. Every hop kind works through either replica, nothing the
/// agent holds arrives upstream, and a revocation at one replica holds at the other.
/// </summary>
public sealed class ComposeReplicasTests : IAsyncLifetime
{
    private static readonly string Root = Repository.Root;
    private readonly DirectoryInfo _work = Directory.CreateTempSubdirectory("agentgateway-compose-");
    private readonly List<Child> _children = [];
    private RedisServer? _redis;

    public async Task InitializeAsync() => _redis = await RedisServer.StartAsync();

    public async Task DisposeAsync()
    {
        foreach (var child in _children)
        {
            child.Dispose();
        }

        if (_redis is not null)
        {
            await _redis.DisposeAsync();
        }

        _work.Delete(recursive: true);
    }

    [Fact]
    public async Task Two_replicas_on_the_compose_config_swap_every_hop_against_the_sandbox_upstreams()
    {
        try
        {
            await PlayAsync();
        }
        catch (Exception failure)
        {
            // Four processes are involved; what they printed is what explains a failure in CI.
            throw new Xunit.Sdk.XunitException(failure.Message + string.Concat(_children.Select(c => $"\n--- output of {c.Name} ---\n{c.Output}")), failure);
        }
    }

    private async Task PlayAsync()
    {
        var port = Loopback.FreePorts(3);
        var shared = Path.Combine(_work.FullName, "sandbox");
        var sandbox = Start("sandbox", "agentgateway-sandbox.dll", ["--upstreams", "--host", "localhost", "--port", port.ToString(CultureInfo.InvariantCulture), "--out", shared], []);
        await sandbox.WaitForOutputAsync("Ready;");
        var authorityFile = Path.Combine(shared, "ca.pem");
        using var authority = X509CertificateLoader.LoadCertificateFromFile(authorityFile);
        Assert.DoesNotContain("PRIVATE KEY", await File.ReadAllTextAsync(authorityFile), StringComparison.Ordinal);

        // The compose file's environment for each replica, with loopback for the service names.
        var environment = new Dictionary<string, string>
        {
            ["Gateway__Redis"] = _redis!.ConnectionString,
            ["AGW_CACHE_KEY"] = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)),
            ["SSL_CERT_FILE"] = authorityFile,
            ["AZURE_POD_IDENTITY_AUTHORITY_HOST"] = $"https://localhost:{port}",
        };
        var replicas = new List<(Uri Proxy, Uri Admin)>();
        for (var i = 1; i <= 2; i++)
        {
            var (proxy, admin) = (new Uri($"http://127.0.0.1:{Loopback.FreePort()}/"), new Uri($"http://127.0.0.1:{Loopback.FreePort()}/"));
            var config = Path.Combine(_work.FullName, $"gateway-{i}.json");
            await File.WriteAllTextAsync(config, ComposeConfig(port, shared, admin, Path.Combine(_work.FullName, $"audit-{i}.jsonl")));
            var replica = Start($"gateway-{i}", "agentgateway.dll", ["run", "--config", config, "--urls", proxy.ToString().TrimEnd('/')], environment);
            await WaitReadyAsync(replica, proxy);
            replicas.Add((proxy, admin));
        }

        using var trusting = new HttpClient(TrustOnly(authority));
        var idp = new Uri($"https://localhost:{port}/");
        var agentToken = await TokenAsync(trusting, idp, "sandbox-agent", "sandbox-agent-secret");
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };

        // Every hop kind, through both replicas; the upstream says which credential arrived and
        // whether the agent's own token did.
        foreach (var (proxy, _) in replicas)
        {
            await AssertHopAsync(http, proxy, agentToken, HttpMethod.Post, "llm/v1/chat/completions", """{"model":"sandbox-small","messages":[]}""", "api key: ok");
            await AssertHopAsync(http, proxy, agentToken, HttpMethod.Get, "crm/accounts/42", null, "OAuth token for crm-api: ok");
            await AssertHopAsync(http, proxy, agentToken, HttpMethod.Post, "db/query", "{}", "managed-identity token: ok");
        }

        // The MCP hop through replica 2 with a real client; the sandbox's MCP server answers 403 to
        // any request that carries the agent's token, so a tool result means it never arrived.
        Assert.Equal("customer 42: Ada Lovelace, premium", await CallToolAsync(replicas[1].Proxy, agentToken, "lookup_customer"));
        var denied = await Assert.ThrowsAnyAsync<Exception>(() => CallToolAsync(replicas[1].Proxy, agentToken, "delete_customer"));
        Assert.Contains("mcp-tool-denied", denied.Message, StringComparison.Ordinal);

        // An operator revokes the agent at replica 1; replica 2 refuses it too (through Redis).
        var operatorToken = await TokenAsync(trusting, idp, "sandbox-operator", "sandbox-operator-secret");
        using var revoke = new HttpRequestMessage(HttpMethod.Post, new Uri(replicas[0].Admin, "admin/agents/sandbox-agent/revoke"))
        {
            Content = new StringContent("""{"reason":"compose test"}""", Encoding.UTF8, "application/json"),
        };
        revoke.Headers.Authorization = new AuthenticationHeaderValue("Bearer", operatorToken);
        using (var revoked = await http.SendAsync(revoke))
        {
            Assert.Equal(HttpStatusCode.OK, revoked.StatusCode);
        }

        var refusedAtReplica2 = false;
        for (var attempt = 0; attempt < 50 && !refusedAtReplica2; attempt++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(replicas[1].Proxy, "crm/accounts/42"));
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", agentToken);
            using var response = await http.SendAsync(request);
            refusedAtReplica2 = response.StatusCode == HttpStatusCode.Unauthorized && (await response.Content.ReadAsStringAsync()).Contains("agent-revoked", StringComparison.Ordinal);
            if (!refusedAtReplica2)
            {
                Assert.Equal("no", response.Headers.GetValues("X-Sandbox-Agent-Token-Seen").Single());
                await Task.Delay(100);
            }
        }

        Assert.True(refusedAtReplica2, "replica 2 still served the agent 5 s after replica 1 revoked it");
    }

    /// <summary>The shipped compose configuration with the compose service names and container
    /// paths swapped for this machine's; nothing else changes.</summary>
    private static string ComposeConfig(int port, string shared, Uri admin, string audit)
    {
        var json = File.ReadAllText(Path.Combine(Root, "deploy", "compose", "gateway.json"))
            .Replace("https://sandbox:8443/", $"https://localhost:{port}/", StringComparison.Ordinal)
            .Replace("https://sandbox:8444/", $"https://localhost:{port + 1}/", StringComparison.Ordinal)
            .Replace("https://sandbox:8445/", $"https://localhost:{port + 2}/", StringComparison.Ordinal)
            .Replace("/var/lib/agentgateway-sandbox/", shared + "/", StringComparison.Ordinal)
            .Replace("http://0.0.0.0:9090", admin.ToString().TrimEnd('/'), StringComparison.Ordinal)
            .Replace("/tmp/agentgateway-audit.jsonl", audit, StringComparison.Ordinal);
        Assert.DoesNotContain("sandbox:84", json, StringComparison.Ordinal);
        return json;
    }

    private static async Task AssertHopAsync(HttpClient http, Uri proxy, string agentToken, HttpMethod method, string path, string? body, string credential)
    {
        using var request = new HttpRequestMessage(method, new Uri(proxy, path));
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", agentToken);
        request.Headers.Add("x-api-key", "sk-a-key-the-agent-should-not-have");
        if (body is not null)
        {
            request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        }

        using var response = await http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{method} {proxy}{path}: {(int)response.StatusCode} {text}");
        Assert.Equal(credential, response.Headers.GetValues("X-Sandbox-Credential").Single());
        Assert.Equal("no", response.Headers.GetValues("X-Sandbox-Agent-Token-Seen").Single());
    }

    private static async Task<string> CallToolAsync(Uri proxy, string agentToken, string tool)
    {
        var transport = new HttpClientTransport(new HttpClientTransportOptions
        {
            Endpoint = new Uri(proxy, "mcp"),
            TransportMode = HttpTransportMode.StreamableHttp,
            AdditionalHeaders = new Dictionary<string, string> { ["Authorization"] = "Bearer " + agentToken },
        });
        await using var client = await McpClient.CreateAsync(transport);
        var result = await client.CallToolAsync(tool, new Dictionary<string, object?> { ["id"] = "42" });
        return string.Join(" ", result.Content.OfType<TextContentBlock>().Select(c => c.Text));
    }

    private static async Task<string> TokenAsync(HttpClient http, Uri idp, string clientId, string secret)
    {
        using var response = await http.PostAsync(new Uri(idp, "token"), new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["client_id"] = clientId,
            ["client_secret"] = secret,
        }));
        response.EnsureSuccessStatusCode();
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("access_token").GetString()!;
    }

    /// <summary>A handler that trusts the sandbox's CA and nothing else (the test process's own
    /// trust store is left alone).</summary>
    private static SocketsHttpHandler TrustOnly(X509Certificate2 authority) => new()
    {
        SslOptions = new SslClientAuthenticationOptions
        {
            CertificateChainPolicy = new X509ChainPolicy
            {
                TrustMode = X509ChainTrustMode.CustomRootTrust,
                CustomTrustStore = { authority },
                RevocationMode = X509RevocationMode.NoCheck,
            },
        },
    };

    private static async Task WaitReadyAsync(Child replica, Uri proxy)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            Assert.False(replica.Process.HasExited, $"{replica.Name} exited: {replica.Output}");
            try
            {
                using var response = await http.GetAsync(new Uri(proxy, "readyz"));
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException)
            {
            }

            await Task.Delay(200);
        }

        Assert.Fail($"{replica.Name} was not ready within 60 s: {replica.Output}");
    }

    /// <param name="assembly">The command's build output in the test's directory: the gateway's
    /// (agentgateway.dll) or the sandbox's (agentgateway-sandbox.dll), as the image stages run them.</param>
    private Child Start(string name, string assembly, string[] arguments, Dictionary<string, string> environment)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, assembly));
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        var child = new Child(name, Process.Start(start)!);
        _children.Add(child);
        return child;
    }

    /// <summary>A child process whose output is kept for failure messages; killed on dispose.</summary>
    private sealed class Child : IDisposable
    {
        private readonly StringBuilder _output = new();

        public Child(string name, Process process)
        {
            Name = name;
            Process = process;
            process.OutputDataReceived += (_, e) => Append(e.Data);
            process.ErrorDataReceived += (_, e) => Append(e.Data);
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
        }

        public string Name { get; }

        public Process Process { get; }

        public string Output
        {
            get
            {
                lock (_output)
                {
                    return _output.ToString();
                }
            }
        }

        public async Task WaitForOutputAsync(string text)
        {
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (!Output.Contains(text, StringComparison.Ordinal))
            {
                Assert.False(Process.HasExited, $"{Name} exited: {Output}");
                Assert.True(DateTime.UtcNow < deadline, $"{Name} did not print '{text}' within 60 s: {Output}");
                await Task.Delay(50);
            }
        }

        public void Dispose()
        {
            if (!Process.HasExited)
            {
                Process.Kill(entireProcessTree: true);
                Process.WaitForExit(5000);
            }

            Process.Dispose();
        }

        private void Append(string? line)
        {
            if (line is not null)
            {
                lock (_output)
                {
                    _output.AppendLine(line);
                }
            }
        }
    }
}
