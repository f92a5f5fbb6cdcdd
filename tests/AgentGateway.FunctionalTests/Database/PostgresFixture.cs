using System.Text.Json.Nodes;
using AgentGateway.FunctionalTests.Infrastructure;

namespace AgentGateway.FunctionalTests.Database;

/// <summary>
/// A real PostgreSQL with TLS from a test CA and the roles the database hop logs in as:
/// <c>agent_ro</c> (SCRAM, the hop's password a canary), <c>reporting</c> (no grant opens it),
/// <c>legacy_md5</c> (stored and asked for as MD5), <c>mi_role</c> (its password set per test to the
/// token the test IMDS issues, standing in for Entra ID). One database, <c>appdb</c>, with a table.
/// </summary>
public sealed class PostgresFixture : IAsyncLifetime
{
    public const string PasswordVariable = "AGW_TEST_PG_PASSWORD";
    public const string Md5PasswordVariable = "AGW_TEST_PG_MD5_PASSWORD";
    public const string Role = "agent_ro";
    public const string OtherRole = "reporting";
    public const string Md5Role = "legacy_md5";
    public const string TokenRole = "mi_role";
    public const string UpstreamDatabase = "appdb";

    /// <summary>The database's name at the gateway, which agents ask for.</summary>
    public const string Name = "orders";

    public TestPki Pki { get; } = TestPki.Create("agentgateway-test-pg-ca");

    public string RolePassword { get; } = "pg-hop-canary-" + Guid.NewGuid().ToString("N");

    public string Md5Password { get; } = "pg-md5-canary-" + Guid.NewGuid().ToString("N");

    public PostgresServer Server { get; private set; } = null!;

    public string CaFile { get; private set; } = "";

    /// <summary>The certificate the gateway presents to agents.</summary>
    public (string Certificate, string Key) GatewayPem { get; private set; }

    /// <summary>A name of this host that resolves to loopback but is not a loopback literal: the
    /// gateway treats an upstream named so as remote.</summary>
    public string HostName { get; } = System.Net.Dns.GetHostName();

    public async Task InitializeAsync()
    {
        Environment.SetEnvironmentVariable(PasswordVariable, RolePassword);
        Environment.SetEnvironmentVariable(Md5PasswordVariable, Md5Password);
        CaFile = Pki.WriteAuthorityPem();
        GatewayPem = Pki.WritePem(Pki.IssueServer());
        Server = await PostgresServer.StartAsync(Pki.WritePem(Pki.IssueServer(HostName)), [$"host all {Md5Role} 127.0.0.1/32 md5"]);
        await Server.ExecuteAsync($"CREATE DATABASE {UpstreamDatabase}");
        await Server.ExecuteAsync($"""
            CREATE ROLE {Role} LOGIN PASSWORD '{RolePassword}';
            CREATE ROLE {OtherRole} LOGIN PASSWORD '{RolePassword}';
            CREATE ROLE {TokenRole} LOGIN PASSWORD NULL;
            SET password_encryption = 'md5';
            CREATE ROLE {Md5Role} LOGIN PASSWORD '{Md5Password}';
            """);
        await Server.ExecuteAsync($"""
            CREATE TABLE items (id int PRIMARY KEY, name text);
            INSERT INTO items VALUES (1, 'widget'), (2, 'gadget');
            GRANT SELECT ON items TO {Role}, {OtherRole}, {Md5Role}, {TokenRole};
            """, UpstreamDatabase);
    }

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        Pki.Dispose();
    }

    /// <summary>The standard configuration plus database <see cref="Name"/>: TLS toward agents,
    /// verify-full to the server, grant <c>orders-read</c> (support-bot) opening it as <see cref="Role"/>.</summary>
    public JsonObject WithDatabase(JsonObject config, bool agentTls = true, string? host = null, JsonObject? grantOpening = null)
    {
        var gateway = config["Gateway"]!;
        var database = new JsonObject
        {
            ["Listen"] = "127.0.0.1:0",
            ["Upstream"] = new JsonObject
            {
                ["Host"] = host ?? "127.0.0.1",
                ["Port"] = Server.Port,
                ["Database"] = UpstreamDatabase,
                ["Tls"] = "VerifyFull",
                ["CertificateAuthority"] = "file:" + CaFile,
            },
            ["AuthenticationTimeout"] = "00:00:02",
        };
        if (agentTls)
        {
            database["Tls"] = new JsonObject { ["Certificate"] = "file:" + GatewayPem.Certificate, ["PrivateKey"] = "file:" + GatewayPem.Key };
        }

        gateway["Databases"] = new JsonObject { [Name] = database };
        gateway["Grants"]!["orders-read"] = new JsonObject
        {
            ["Databases"] = new JsonObject { [Name] = grantOpening ?? new JsonObject { ["Role"] = Role, ["Password"] = "env:" + PasswordVariable } },
        };
        gateway["Agents"]!["support-bot"]!["Grants"]!.AsArray().Add("orders-read");
        gateway["Agents"]!["retired-bot"]!["Grants"]!.AsArray().Add("orders-read");
        return config;
    }

    /// <summary>An Npgsql connection string to the gateway's listener for <see cref="Name"/>.</summary>
    public string ConnectionString(System.Net.IPEndPoint endpoint, string password, string user = Role, string database = Name, bool tls = true, string extra = "") =>
        $"Host=127.0.0.1;Port={endpoint.Port};Database={database};Username={user};Password={password};"
        + (tls ? $"SSL Mode=VerifyFull;Root Certificate={CaFile};" : "SSL Mode=Disable;")
        + "Pooling=false;Timeout=15;Command Timeout=30;" + extra;
}
