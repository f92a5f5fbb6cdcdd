using AgentGateway.Sandbox;
using Npgsql;

namespace AgentGateway.FunctionalTests.Infrastructure;

/// <summary>
/// A real PostgreSQL (Debian's <c>postgresql</c> package) for one test class: the sandbox's
/// throwaway cluster (<see cref="LocalPostgres"/>: initdb and pg_ctl as the <c>postgres</c> user in
/// a temporary directory) on a free loopback port, with TLS from the test's CA, SCRAM-SHA-256 for
/// every role by default, statements and connections logged to a file the tests search for canaries.
/// </summary>
public sealed class PostgresServer : IAsyncDisposable
{
    public const string Superuser = LocalPostgres.Superuser;

    private readonly LocalPostgres _cluster;

    private PostgresServer(LocalPostgres cluster) => _cluster = cluster;

    public int Port => _cluster.Port;

    public string SuperuserPassword => _cluster.SuperuserPassword;

    /// <summary>The server's log: every connection and statement.</summary>
    public string LogFile => _cluster.LogFile;

    /// <summary>Where the PostgreSQL binaries are, or null when the package is not installed.</summary>
    public static string? Binaries() => LocalPostgres.Binaries();

    /// <param name="serverCertificate">PEM certificate and key files for TLS.</param>
    /// <param name="hba">pg_hba.conf lines before the default (SCRAM over TCP for everyone).</param>
    public static async Task<PostgresServer> StartAsync((string Certificate, string Key)? serverCertificate = null, IEnumerable<string>? hba = null)
    {
        var bin = Binaries() ?? throw new InvalidOperationException("PostgreSQL is not installed; run tests/run-all.sh, which installs it (apt-get install postgresql).");
        string[] settings =
        [
            "password_encryption = 'scram-sha-256'",
            "log_connections = on",
            "log_disconnections = on",
            "log_statement = 'all'",
            "max_connections = 60",
        ];
        var rules = new List<string>(hba ?? []) { "local all postgres scram-sha-256", "host all all 127.0.0.1/32 scram-sha-256" };
        return new PostgresServer(await LocalPostgres.StartAsync(bin, Loopback.FreePort(), settings, rules, serverCertificate));
    }

    /// <summary>A superuser connection straight to the server (not through the gateway), for setting up roles and looking.</summary>
    public NpgsqlConnection Admin(string database = "postgres") =>
        new($"Host=127.0.0.1;Port={Port};Username={Superuser};Password={SuperuserPassword};Database={database};Pooling=false;SSL Mode=Disable");

    public async Task ExecuteAsync(string sql, string database = "postgres")
    {
        await using var connection = Admin(database);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    public async Task<T?> ScalarAsync<T>(string sql)
    {
        await using var connection = Admin();
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        var value = await command.ExecuteScalarAsync();
        return value is DBNull or null ? default : (T)value;
    }

    /// <summary>The server log so far.</summary>
    public string ReadLog()
    {
        using var stream = new FileStream(LogFile, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    public ValueTask DisposeAsync() => _cluster.DisposeAsync();
}
