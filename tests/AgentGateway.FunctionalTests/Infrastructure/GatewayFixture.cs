using System.Text.Json.Nodes;
using StackExchange.Redis;

namespace AgentGateway.FunctionalTests.Infrastructure;

/// <summary>
/// The real parts every functional test shares: a redis-server, an OpenIddict authorization
/// server, two WireMock upstreams, and canary secrets (unique per run) planted where the
/// configuration's secret references point.
/// </summary>
public sealed class GatewayFixture : IAsyncLifetime
{
    public const string AgentSecret = "alpha-client-secret";

    public RedisServer Redis { get; private set; } = null!;

    public AuthorizationServer Auth { get; private set; } = null!;

    public Upstream Llm { get; private set; } = null!;

    public Upstream Crm { get; private set; } = null!;

    public string OpenAiKey { get; } = "sk-canary-openai-" + Guid.NewGuid().ToString("N");

    public string AnthropicKey { get; } = "sk-ant-canary-" + Guid.NewGuid().ToString("N");

    public string CrmSecret { get; } = "crm-secret-canary-" + Guid.NewGuid().ToString("N");

    public string OboSecret { get; } = "obo-secret-canary-" + Guid.NewGuid().ToString("N");

    public string McpSecret { get; } = "mcp-secret-canary-" + Guid.NewGuid().ToString("N");

    /// <summary>The port MCP tool servers listen on: fixed for the run, because the authorization
    /// server validates RFC 8707 resources against the list it was started with.</summary>
    public int McpPort { get; private set; }

    /// <summary>The MCP tool server's resource identifier (its endpoint URL).</summary>
    public string McpResource => $"http://127.0.0.1:{McpPort}/mcp";

    public string AnthropicKeyFile { get; } = Path.Combine(Path.GetTempPath(), $"agentgateway-anthropic-{Guid.NewGuid():N}.key");

    public async Task InitializeAsync()
    {
        Environment.SetEnvironmentVariable(TestConfig.OpenAiKeyVariable, OpenAiKey);
        Environment.SetEnvironmentVariable(TestConfig.CrmSecretVariable, CrmSecret);
        Environment.SetEnvironmentVariable(TestConfig.OboSecretVariable, OboSecret);
        Environment.SetEnvironmentVariable(TestConfig.McpSecretVariable, McpSecret);
        Environment.SetEnvironmentVariable(TestConfig.CacheKeyVariable, Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)));
        await File.WriteAllTextAsync(AnthropicKeyFile, AnthropicKey + "\n");
        Redis = await RedisServer.StartAsync();
        McpPort = Loopback.FreePort();
        Auth = await AuthorizationServer.StartAsync(
            [McpResource],
            (Clients.Alpha, AgentSecret, ["gateway", "other"]),
            (Clients.Beta, AgentSecret, ["gateway"]),
            (Clients.Stranger, AgentSecret, ["gateway"]),
            (Clients.Operator, AgentSecret, ["gateway"]),
            (Clients.CrmHop, CrmSecret, ["crm.read"]),
            (Clients.CrmHopSpare, CrmSecret, ["crm.read"]),
            (Clients.GatewayExchange, OboSecret, ["crm.read"]));
        await Auth.RegisterClientAsync(Clients.McpGateway, McpSecret, [McpResource]);
        Llm = Upstream.Start();
        Crm = Upstream.Start();
    }

    public async Task DisposeAsync()
    {
        Llm.Dispose();
        Crm.Dispose();
        await Auth.DisposeAsync();
        await Redis.DisposeAsync();
        File.Delete(AnthropicKeyFile);
    }

    /// <summary>The standard test configuration, with or without Redis.</summary>
    public JsonObject Config(bool withRedis) => TestConfig.Create(Auth, Llm, Crm, AnthropicKeyFile, withRedis ? Redis.ConnectionString : null);

    /// <summary>Starts each test from an empty Redis and upstreams that have seen nothing.</summary>
    public async Task ResetAsync()
    {
        Auth.ResetTokenLifetimes();
        Llm.Server.ResetLogEntries();
        Crm.Server.ResetLogEntries();
        await using var connection = await ConnectionMultiplexer.ConnectAsync($"{Redis.ConnectionString},allowAdmin=true");
        await connection.GetServer(connection.GetEndPoints()[0]).FlushAllDatabasesAsync();
    }

    /// <summary>A user's token issued to the agent (support-bot's client by default).</summary>
    public Task<string> UserTokenAsync(string user, string clientId = Clients.Alpha) => Auth.GetUserTokenAsync(user, clientId, AgentSecret);

    public Task<string> AgentTokenAsync(string clientId = Clients.Alpha, string scope = "gateway") => Auth.GetTokenAsync(clientId, AgentSecret, scope);
}

[CollectionDefinition(Name)]
public sealed class GatewayCollection : ICollectionFixture<GatewayFixture>
{
    public const string Name = "gateway";
}
