using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using AgentGateway.FunctionalTests.Credentials;
using AgentGateway.FunctionalTests.Infrastructure;
using AgentGateway.Proxy.Inventory;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace AgentGateway.FunctionalTests.Database;

/// <summary>
/// The PostgreSQL hop, end to end: unmodified Npgsql and psql clients log in to the gateway with
/// the agent's own token (or client certificate), the gateway logs in to a real PostgreSQL with the
/// grant's credential (SCRAM over verify-full TLS), and policy holds for the session's whole life.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class PostgresHopTests(GatewayFixture fx, PostgresFixture pg, MetadataEndpoints metadata)
    : IAsyncLifetime, IClassFixture<PostgresFixture>, IClassFixture<MetadataEndpoints>
{
    public Task InitializeAsync()
    {
        metadata.Reset();
        return fx.ResetAsync();
    }

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task Npgsql_reaches_postgres_with_its_own_token_over_tls_and_the_gateway_logs_in_with_scram()
    {
        await using var gateway = await GatewayInstance.StartAsync(pg.WithDatabase(fx.Config(withRedis: false)));
        var token = await fx.AgentTokenAsync();

        await using var connection = new NpgsqlConnection(pg.ConnectionString(gateway.DatabaseEndpoint(PostgresFixture.Name), token));
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT current_user, current_database(), (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), (SELECT count(*) FROM items)", connection);
        await using var reader = await command.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());

        Assert.Equal(PostgresFixture.Role, reader.GetString(0));
        Assert.Equal(PostgresFixture.UpstreamDatabase, reader.GetString(1));
        Assert.True(reader.GetBoolean(2), "the gateway's connection to the server is TLS");
        Assert.Equal(2, reader.GetInt64(3));
        var log = pg.Server.ReadLog();
        Assert.Contains($"user={PostgresFixture.Role} database={PostgresFixture.UpstreamDatabase} SSL enabled", log, StringComparison.Ordinal);
        Assert.Contains($"identity=\"{PostgresFixture.Role}\" method=scram-sha-256", log, StringComparison.Ordinal);
        Assert.DoesNotContain(token, log, StringComparison.Ordinal);
        Assert.DoesNotContain(pg.RolePassword, string.Join('\n', gateway.Logs.Lines), StringComparison.Ordinal);
        Assert.DoesNotContain(token, string.Join('\n', gateway.Logs.Lines), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Psql_reaches_postgres_through_the_gateway_with_the_token_as_its_password()
    {
        await using var gateway = await GatewayInstance.StartAsync(pg.WithDatabase(fx.Config(withRedis: false)));
        var token = await fx.AgentTokenAsync();
        var endpoint = gateway.DatabaseEndpoint(PostgresFixture.Name);

        var (code, output, error) = await PsqlAsync(
            $"host=127.0.0.1 port={endpoint.Port} dbname={PostgresFixture.Name} user={PostgresFixture.Role} sslmode=verify-full sslrootcert={pg.CaFile}",
            token,
            "SELECT current_user || '@' || current_database() || ':' || (SELECT name FROM items WHERE id = 1)");

        Assert.True(code == 0, error);
        Assert.Equal($"{PostgresFixture.Role}@{PostgresFixture.UpstreamDatabase}:widget", output.Trim());
        Assert.DoesNotContain(pg.RolePassword, output + error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Nothing_the_client_receives_holds_the_hop_password_and_the_server_never_sees_the_agent_token()
    {
        // Plaintext on loopback, so a recording relay between client and gateway sees every byte.
        await using var gateway = await GatewayInstance.StartAsync(pg.WithDatabase(fx.Config(withRedis: false), agentTls: false));
        var token = await fx.AgentTokenAsync();
        await using var relay = await RecordingRelay.StartAsync(gateway.DatabaseEndpoint(PostgresFixture.Name));

        await using (var connection = new NpgsqlConnection(pg.ConnectionString(relay.Endpoint, token, tls: false, extra: "Application Name=canary-check")))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand("SELECT string_agg(name, ',') FROM items; SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()", connection);
            await using var reader = await command.ExecuteReaderAsync();
            Assert.True(await reader.ReadAsync());
            Assert.Equal("widget,gadget", reader.GetString(0));
            Assert.True(await reader.NextResultAsync() && await reader.ReadAsync());
            Assert.Equal("canary-check", reader.GetString(0));
        }

        var toClient = relay.ToClient();
        Assert.NotEmpty(toClient);
        AssertAbsent(pg.RolePassword, toClient);
        Assert.Contains(Encoding.UTF8.GetBytes(token), [relay.ToServer()], new SubsequenceComparer());
        var activity = await pg.Server.ScalarAsync<string>("SELECT coalesce(string_agg(coalesce(application_name, '') || usename || coalesce(query, ''), ' '), '') FROM pg_stat_activity");
        Assert.DoesNotContain(token, activity ?? "", StringComparison.Ordinal);
        Assert.DoesNotContain(token, pg.Server.ReadLog(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_client_certificate_identifies_the_agent_and_no_password_is_asked()
    {
        var client = pg.Pki.IssueClient("support-bot.agents.test");
        var (certificate, key) = pg.Pki.WritePem(client);
        var config = pg.WithDatabase(fx.Config(withRedis: false));
        config["Gateway"]!["Inbound"]!["ClientCertificates"] = new JsonObject { ["TrustBundle"] = "file:" + pg.CaFile };
        config["Gateway"]!["Agents"]!["support-bot"]!["Identities"]!.AsArray().Add(new JsonObject
        {
            ["CertificateThumbprint"] = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(client.RawData)),
        });
        await using var gateway = await GatewayInstance.StartAsync(config);
        var endpoint = gateway.DatabaseEndpoint(PostgresFixture.Name);

        await using var connection = new NpgsqlConnection(
            $"Host=127.0.0.1;Port={endpoint.Port};Database={PostgresFixture.Name};Username={PostgresFixture.Role};SSL Mode=VerifyFull;Root Certificate={pg.CaFile};SSL Certificate={certificate};SSL Key={key};Pooling=false;Timeout=15");
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT current_user", connection);

        Assert.Equal(PostgresFixture.Role, await command.ExecuteScalarAsync());
    }

    [Fact]
    public async Task Agents_that_cannot_prove_themselves_or_hold_no_grant_are_refused_before_any_upstream_connection()
    {
        await using var gateway = await GatewayInstance.StartAsync(pg.WithDatabase(fx.Config(withRedis: false)));
        var endpoint = gateway.DatabaseEndpoint(PostgresFixture.Name);
        var token = await fx.AgentTokenAsync();
        var now = DateTime.UtcNow;
        var before = ConnectionsReceived();

        await AssertRefusedAsync(pg.ConnectionString(endpoint, "not-a-jwt"), "28P01", "unauthenticated");
        await AssertRefusedAsync(pg.ConnectionString(endpoint, fx.Auth.Mint(Clients.Alpha, AuthorizationServer.GatewayAudience, now.AddMinutes(-20), now.AddMinutes(-10))), "28P01", "expired");
        await AssertRefusedAsync(
            pg.ConnectionString(endpoint, fx.Auth.Mint(Clients.Alpha, AuthorizationServer.GatewayAudience, now, now.AddMinutes(5), claims: new Dictionary<string, object> { ["cnf"] = new Dictionary<string, object> { ["jkt"] = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" } })),
            "28P01",
            "DPoP");
        await AssertRefusedAsync(pg.ConnectionString(endpoint, await fx.AgentTokenAsync(Clients.Stranger)), "28000", "agent-unknown");
        await AssertRefusedAsync(pg.ConnectionString(endpoint, await fx.AgentTokenAsync(Clients.Beta)), "28000", "agent-expired");
        await AssertRefusedAsync(pg.ConnectionString(endpoint, token, user: PostgresFixture.OtherRole), "28000", "grant-missing");
        await AssertRefusedAsync(pg.ConnectionString(endpoint, token, database: PostgresFixture.UpstreamDatabase), "3D000", "not served");
        await AssertRefusedAsync(pg.ConnectionString(endpoint, token, extra: "Options=-c statement_timeout=5"), "08P01", "options");
        await gateway.Services.GetRequiredService<RevocationStore>().RevokeAsync("support-bot", "test", "compromised");
        await AssertRefusedAsync(pg.ConnectionString(endpoint, token), "28000", "agent-revoked");

        Assert.Equal(before, ConnectionsReceived());
    }

    [Fact]
    public async Task Revocation_ends_an_open_session_with_a_fatal_error_and_cancels_its_running_query()
    {
        await using var gateway = await GatewayInstance.StartAsync(pg.WithDatabase(fx.Config(withRedis: false)));
        var token = await fx.AgentTokenAsync();
        await using var connection = new NpgsqlConnection(pg.ConnectionString(gateway.DatabaseEndpoint(PostgresFixture.Name), token));
        await connection.OpenAsync();
        await using var sleep = new NpgsqlCommand("SELECT pg_sleep(60)", connection);
        var running = sleep.ExecuteScalarAsync();
        await WaitForAsync(async () => await ActiveSleepsAsync() == 1, "the query to run");

        await gateway.Services.GetRequiredService<RevocationStore>().RevokeAsync("support-bot", "test", "prompt injection");

        var error = await Assert.ThrowsAsync<PostgresException>(() => running);
        Assert.Equal("28000", error.SqlState);
        Assert.Equal("FATAL", error.InvariantSeverity);
        Assert.Contains("revoked", error.MessageText, StringComparison.Ordinal);
        await WaitForAsync(async () => await ActiveSleepsAsync() == 0, "the server to cancel the revoked agent's query");
    }

    [Fact]
    public async Task A_revocation_made_at_one_replica_ends_the_session_open_at_another()
    {
        await using var first = await GatewayInstance.StartAsync(pg.WithDatabase(fx.Config(withRedis: true)));
        await using var second = await GatewayInstance.StartAsync(pg.WithDatabase(fx.Config(withRedis: true)));
        var token = await fx.AgentTokenAsync();
        await using var connection = new NpgsqlConnection(pg.ConnectionString(second.DatabaseEndpoint(PostgresFixture.Name), token));
        await connection.OpenAsync();
        await using var sleep = new NpgsqlCommand("SELECT pg_sleep(60)", connection);
        var running = sleep.ExecuteScalarAsync();
        await WaitForAsync(async () => await ActiveSleepsAsync() == 1, "the query to run");

        await first.Services.GetRequiredService<RevocationStore>().RevokeAsync("support-bot", "test", "revoked at the first replica");

        var error = await Assert.ThrowsAsync<PostgresException>(() => running);
        Assert.Equal("28000", error.SqlState);
        Assert.Contains("revoked", error.MessageText, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_session_ends_when_its_lifetime_is_over_and_a_reload_that_removes_the_grant_ends_it_too()
    {
        var config = pg.WithDatabase(fx.Config(withRedis: false));
        config["Gateway"]!["Databases"]![PostgresFixture.Name]!["MaxSessionLifetime"] = "00:00:02";
        await using (var gateway = await GatewayInstance.StartAsync(config))
        {
            await using var connection = new NpgsqlConnection(pg.ConnectionString(gateway.DatabaseEndpoint(PostgresFixture.Name), await fx.AgentTokenAsync()));
            await connection.OpenAsync();
            var error = await UntilRefusedAsync(connection);
            Assert.Equal("28000", error.SqlState);
            Assert.Contains("expired", error.MessageText, StringComparison.Ordinal);
        }

        await using (var gateway = await GatewayInstance.StartAsync(pg.WithDatabase(fx.Config(withRedis: false))))
        {
            await using var connection = new NpgsqlConnection(pg.ConnectionString(gateway.DatabaseEndpoint(PostgresFixture.Name), await fx.AgentTokenAsync()));
            await connection.OpenAsync();
            var reloaded = pg.WithDatabase(fx.Config(withRedis: false));
            reloaded["Gateway"]!["Agents"]!["support-bot"]!["Grants"]!.AsArray().Remove(
                reloaded["Gateway"]!["Agents"]!["support-bot"]!["Grants"]!.AsArray().First(g => g!.GetValue<string>() == "orders-read"));
            await gateway.RewriteConfigAsync(reloaded);

            var error = await UntilRefusedAsync(connection);
            Assert.Equal("28000", error.SqlState);
            Assert.Contains("reload removed the grant", error.MessageText, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task An_agent_cancels_its_own_query_and_no_other_key_cancels_it()
    {
        await using var gateway = await GatewayInstance.StartAsync(pg.WithDatabase(fx.Config(withRedis: false)));
        var endpoint = gateway.DatabaseEndpoint(PostgresFixture.Name);
        await using var connection = new NpgsqlConnection(pg.ConnectionString(endpoint, await fx.AgentTokenAsync()));
        await connection.OpenAsync();
        await using var sleep = new NpgsqlCommand("SELECT pg_sleep(30)", connection);
        var running = sleep.ExecuteScalarAsync();
        await WaitForAsync(async () => await ActiveSleepsAsync() == 1, "the query to run");
        var backendPid = await pg.Server.ScalarAsync<int>("SELECT pid FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(30)%'");

        // Someone else's guess: the key the agent saw with another secret, and the server's real pid.
        await RawPg.ExchangeAsync(endpoint, RawPg.Request(80877102, connection.ProcessID, 12345));
        await RawPg.ExchangeAsync(endpoint, RawPg.Request(80877102, backendPid, 12345));
        await WaitForAsync(() => Task.FromResult(gateway.Logs.Lines.Count(l => l.Contains("named no session", StringComparison.Ordinal)) >= 2), "the gateway to refuse both");
        Assert.Equal(1, await ActiveSleepsAsync());
        Assert.NotEqual(backendPid, connection.ProcessID);

        sleep.Cancel();

        // Npgsql reports the server's 57014 inside its own cancellation exception.
        var cancelled = await Assert.ThrowsAsync<OperationCanceledException>(() => running);
        Assert.Equal("57014", Assert.IsType<PostgresException>(cancelled.InnerException).SqlState);
        await using var after = new NpgsqlCommand("SELECT 1", connection);
        Assert.Equal(1, await after.ExecuteScalarAsync());
    }

    [Fact]
    public async Task A_cancel_sent_to_another_replica_reaches_the_session_and_a_wrong_secret_does_not()
    {
        // Drivers send CancelRequest on a new connection, which a load balancer may give to any replica.
        await using var holder = await GatewayInstance.StartAsync(pg.WithDatabase(fx.Config(withRedis: true), agentTls: false));
        await using var other = await GatewayInstance.StartAsync(pg.WithDatabase(fx.Config(withRedis: true), agentTls: false));
        await using var relay = await RecordingRelay.StartAsync(holder.DatabaseEndpoint(PostgresFixture.Name));
        await using var connection = new NpgsqlConnection(pg.ConnectionString(relay.Endpoint, await fx.AgentTokenAsync(), tls: false));
        await connection.OpenAsync();
        var (processId, secret) = BackendKey(relay.ToClient());
        await using var sleep = new NpgsqlCommand("SELECT pg_sleep(30)", connection);
        var running = sleep.ExecuteScalarAsync();
        try
        {
            await WaitForAsync(async () => await ActiveSleepsAsync() == 1, "the query to run");

            // The right process id with a wrong secret: passed on, and refused by the replica holding it.
            await RawPg.ExchangeAsync(other.DatabaseEndpoint(PostgresFixture.Name), RawPg.Request(80877102, processId, secret ^ 1));
            await WaitForAsync(() => Task.FromResult(holder.Logs.Lines.Any(l => l.Contains("named no session of this replica; ignored", StringComparison.Ordinal))), "the holder to refuse the wrong secret");
            Assert.Contains(other.Logs.Lines, l => l.Contains("passed to the other replicas", StringComparison.Ordinal));
            Assert.Equal(1, await ActiveSleepsAsync());

            await RawPg.ExchangeAsync(other.DatabaseEndpoint(PostgresFixture.Name), RawPg.Request(80877102, processId, secret));

            var cancelled = await Assert.ThrowsAsync<PostgresException>(() => running.WaitAsync(TimeSpan.FromSeconds(15)));
            Assert.Equal("57014", cancelled.SqlState);
            await using var after = new NpgsqlCommand("SELECT 1", connection);
            Assert.Equal(1, await after.ExecuteScalarAsync());
        }
        finally
        {
            // A failed assertion must not leave the sleep holding the connection's disposal.
            await pg.Server.ScalarAsync<object>("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(30)%'");
        }
    }

    /// <summary>The BackendKeyData the gateway sent: the messages after the login, read in order.</summary>
    private static (int ProcessId, int Secret) BackendKey(byte[] toClient)
    {
        for (var at = 0; at + 5 <= toClient.Length;)
        {
            var length = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(toClient.AsSpan(at + 1));
            if (toClient[at] == (byte)'K' && length == 12)
            {
                return (System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(toClient.AsSpan(at + 5)), System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(toClient.AsSpan(at + 9)));
            }

            at += 1 + length;
        }

        throw new InvalidOperationException("the gateway sent no BackendKeyData");
    }

    [Fact]
    public async Task Malformed_and_hostile_openings_get_a_clear_error_or_a_closed_socket_and_never_reach_the_server()
    {
        await using var gateway = await GatewayInstance.StartAsync(pg.WithDatabase(fx.Config(withRedis: false)));
        var endpoint = gateway.DatabaseEndpoint(PostgresFixture.Name);
        var before = ConnectionsReceived();
        var user = ("user", PostgresFixture.Role);
        var database = ("database", PostgresFixture.Name);

        var garbage = await RawPg.ExchangeAsync(endpoint, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray());
        var oversized = await RawPg.ExchangeAsync(endpoint, RawPg.Request(3 << 16, new int[5000]));
        var truncatedLength = await RawPg.ExchangeAsync(endpoint, [0, 0, 0, 4, 0, 3, 0, 0]);
        var version2 = await RawPg.ExchangeAsync(endpoint, RawPg.Startup(2 << 16, user, database));
        var replication = await RawPg.ExchangeAsync(endpoint, RawPg.Startup(user, database, ("replication", "database")));
        var unknownParameter = await RawPg.ExchangeAsync(endpoint, RawPg.Startup(user, database, ("session_authorization", "postgres")));
        var badLayout = await RawPg.ExchangeAsync(endpoint, RawPg.Startup(user, database, ("user", "again")));
        var gss = await RawPg.ExchangeAsync(endpoint, RawPg.Request(80877104), TimeSpan.FromSeconds(1));
        var stuffed = await RawPg.ExchangeAsync(endpoint, [.. RawPg.Request(80877103), .. RawPg.Startup(user, database)]);
        var silent = await RawPg.ExchangeAsync(endpoint, RawPg.Startup(user, database), TimeSpan.FromSeconds(15));

        Assert.Equal("08P01", Closed(garbage));
        Assert.Equal("08P01", Closed(oversized));
        Assert.Equal("08P01", Closed(truncatedLength));
        Assert.Equal("0A000", Closed(version2));
        Assert.Equal("42501", Closed(replication));
        Assert.Equal("08P01", Closed(unknownParameter));
        Assert.Equal("08P01", Closed(badLayout));
        Assert.Equal((byte)'N', Assert.Single(gss.Received));
        Assert.True(stuffed.Closed && stuffed.Received.Length == 0, "bytes after SSLRequest close the connection");
        Assert.True(silent.Closed, "a client that never authenticates is cut off");
        Assert.Equal((byte)'R', silent.Received[0]);
        Assert.Equal(before, ConnectionsReceived());

        static string? Closed((byte[] Received, bool Closed) result)
        {
            Assert.True(result.Closed, "the gateway closes the connection");
            return RawPg.Error(result.Received)?.Code;
        }
    }

    [Fact]
    public async Task A_managed_identity_token_is_the_password_and_comes_from_the_cache()
    {
        var hopToken = "mi-db-canary-" + Guid.NewGuid().ToString("N");
        metadata.AzureIssues(hopToken);
        await pg.Server.ExecuteAsync($"ALTER ROLE {PostgresFixture.TokenRole} PASSWORD '{hopToken}'");
        var config = pg.WithDatabase(fx.Config(withRedis: true), agentTls: false, grantOpening: new JsonObject { ["Role"] = PostgresFixture.TokenRole, ["Credential"] = "pg-entra" });
        config["Gateway"]!["Credentials"]!["pg-entra"] = new JsonObject
        {
            ["Kind"] = "ManagedIdentity",
            ["Provider"] = "Azure",
            ["Scopes"] = new JsonArray("https://ossrdbms-aad.database.windows.net/.default"),
        };
        await using var gateway = await GatewayInstance.StartAsync(config);
        var token = await fx.AgentTokenAsync();
        await using var relay = await RecordingRelay.StartAsync(gateway.DatabaseEndpoint(PostgresFixture.Name));

        for (var i = 0; i < 2; i++)
        {
            await using var connection = new NpgsqlConnection(pg.ConnectionString(relay.Endpoint, token, user: PostgresFixture.TokenRole, tls: false));
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand("SELECT current_user", connection);
            Assert.Equal(PostgresFixture.TokenRole, await command.ExecuteScalarAsync());
        }

        Assert.Single(metadata.Calls(MetadataEndpoints.AzurePath));
        AssertAbsent(hopToken, relay.ToClient());
        Assert.DoesNotContain(hopToken, string.Join('\n', gateway.Logs.Lines), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_server_asking_for_md5_is_answered_only_from_loopback_or_with_the_operators_opt_in()
    {
        var opening = new JsonObject { ["Role"] = PostgresFixture.Md5Role, ["Password"] = "env:" + PostgresFixture.Md5PasswordVariable };
        var token = await fx.AgentTokenAsync();

        await using (var remote = await GatewayInstance.StartAsync(pg.WithDatabase(fx.Config(withRedis: false), host: pg.HostName, grantOpening: opening.DeepClone().AsObject())))
        {
            await AssertRefusedAsync(pg.ConnectionString(remote.DatabaseEndpoint(PostgresFixture.Name), token, user: PostgresFixture.Md5Role), "08004", "weak form");
        }

        var optedIn = pg.WithDatabase(fx.Config(withRedis: false), host: pg.HostName, grantOpening: opening.DeepClone().AsObject());
        optedIn["Gateway"]!["Databases"]![PostgresFixture.Name]!["Upstream"]!["AllowWeakPasswordAuthentication"] = true;
        await using (var gateway = await GatewayInstance.StartAsync(optedIn))
        {
            await using var connection = new NpgsqlConnection(pg.ConnectionString(gateway.DatabaseEndpoint(PostgresFixture.Name), token, user: PostgresFixture.Md5Role));
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand("SELECT current_user", connection);
            Assert.Equal(PostgresFixture.Md5Role, await command.ExecuteScalarAsync());
        }

        Assert.Contains($"identity=\"{PostgresFixture.Md5Role}\" method=md5", pg.Server.ReadLog(), StringComparison.Ordinal);
    }

    private int ConnectionsReceived() =>
        pg.Server.ReadLog().Split('\n').Count(l => l.Contains("connection received", StringComparison.Ordinal));

    private async Task<long> ActiveSleepsAsync() =>
        await pg.Server.ScalarAsync<long>("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'SELECT pg_sleep%'");

    private static async Task AssertRefusedAsync(string connectionString, string sqlState, string because)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        var error = await Assert.ThrowsAsync<PostgresException>(() => connection.OpenAsync());
        Assert.True(error.SqlState == sqlState && error.MessageText.Contains(because, StringComparison.Ordinal), $"expected {sqlState} ({because}), got {error.SqlState}: {error.MessageText}");
        Assert.Equal("FATAL", error.InvariantSeverity);
    }

    /// <summary>Runs a trivial statement until the session's end reaches the client (bounded).</summary>
    private static async Task<PostgresException> UntilRefusedAsync(NpgsqlConnection connection)
    {
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                await using var command = new NpgsqlCommand("SELECT 1", connection);
                await command.ExecuteScalarAsync();
            }
            catch (PostgresException error)
            {
                return error;
            }

            await Task.Delay(100);
        }

        throw new TimeoutException("the session was not ended");
    }

    private static async Task WaitForAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("waited in vain for " + what);
            }

            await Task.Delay(50);
        }
    }

    private static void AssertAbsent(string secret, byte[] received)
    {
        foreach (var form in new[] { secret, Convert.ToBase64String(Encoding.UTF8.GetBytes(secret)) })
        {
            Assert.DoesNotContain(Encoding.UTF8.GetBytes(form), [received], new SubsequenceComparer());
        }
    }

    private static async Task<(int Code, string Output, string Error)> PsqlAsync(string connection, string password, string sql)
    {
        var start = new ProcessStartInfo("psql") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in new[] { connection, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql })
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["PGPASSWORD"] = password;
        start.Environment["PGCONNECT_TIMEOUT"] = "15";
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await output, await error);
    }

    /// <summary>Equal when the first byte array contains the second (the way a canary is searched for).</summary>
    private sealed class SubsequenceComparer : IEqualityComparer<byte[]>
    {
        public bool Equals(byte[]? x, byte[]? y) => x is not null && y is not null && (x.AsSpan().IndexOf(y) >= 0 || y.AsSpan().IndexOf(x) >= 0);

        public int GetHashCode(byte[] obj) => 0;
    }
}

/// <summary>A TCP relay on loopback that records every byte each way, to search what a client received.</summary>
public sealed class RecordingRelay : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly IPEndPoint _target;
    private readonly MemoryStream _toClient = new();
    private readonly MemoryStream _toServer = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _pumps = [];
    private Task _accept = Task.CompletedTask;

    private RecordingRelay(IPEndPoint target)
    {
        _target = target;
        _listener = new TcpListener(IPAddress.Loopback, 0);
    }

    public IPEndPoint Endpoint => (IPEndPoint)_listener.LocalEndpoint;

    public static Task<RecordingRelay> StartAsync(IPEndPoint target)
    {
        var relay = new RecordingRelay(target);
        relay._listener.Start();
        relay._accept = relay.AcceptAsync();
        return Task.FromResult(relay);
    }

    public byte[] ToClient()
    {
        lock (_toClient)
        {
            return _toClient.ToArray();
        }
    }

    public byte[] ToServer()
    {
        lock (_toServer)
        {
            return _toServer.ToArray();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await Task.WhenAll([.. _pumps, _accept]).ContinueWith(static _ => { }, TaskScheduler.Default);
        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                var server = new TcpClient();
                await server.ConnectAsync(_target, _stop.Token);
                _pumps.Add(PumpAsync(client.GetStream(), server.GetStream(), _toServer, client, server));
                _pumps.Add(PumpAsync(server.GetStream(), client.GetStream(), _toClient, server, client));
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }

    private async Task PumpAsync(NetworkStream from, NetworkStream to, MemoryStream record, TcpClient source, TcpClient destination)
    {
        var buffer = new byte[16384];
        try
        {
            int read;
            while ((read = await from.ReadAsync(buffer, _stop.Token)) > 0)
            {
                lock (record)
                {
                    record.Write(buffer, 0, read);
                }

                await to.WriteAsync(buffer.AsMemory(0, read), _stop.Token);
            }
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException or SocketException)
        {
        }
        finally
        {
            destination.Client.Shutdown(SocketShutdown.Send);
            source.Dispose();
        }
    }
}
