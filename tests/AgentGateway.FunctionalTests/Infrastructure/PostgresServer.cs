using System.Diagnostics;
using System.Globalization;
using Npgsql;

namespace AgentGateway.FunctionalTests.Infrastructure;

/// <summary>
/// A real PostgreSQL (Debian's <c>postgresql</c> package) for one test class: <c>initdb</c> and
/// <c>pg_ctl</c> run as the <c>postgres</c> system user (initdb refuses root) in a temporary
/// directory it owns, on a free loopback port, with TLS from the test's CA, SCRAM-SHA-256 for every
/// role by default, statements and connections logged to a file the tests search for canaries.
/// </summary>
public sealed class PostgresServer : IAsyncDisposable
{
    public const string Superuser = "postgres";

    private readonly string _bin;
    private readonly string _directory;

    private PostgresServer(string bin, string directory, int port, string superuserPassword)
    {
        _bin = bin;
        _directory = directory;
        Port = port;
        SuperuserPassword = superuserPassword;
    }

    public int Port { get; }

    public string SuperuserPassword { get; }

    /// <summary>The server's log: every connection and statement.</summary>
    public string LogFile => Path.Combine(_directory, "postgres.log");

    /// <summary>Where the PostgreSQL binaries are, or null when the package is not installed.</summary>
    public static string? Binaries() =>
        Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin")).Where(d => File.Exists(Path.Combine(d, "initdb"))).Order().LastOrDefault()
            : null;

    /// <param name="serverCertificate">PEM certificate and key files for TLS (the key is copied so
    /// that only the postgres user can read it, as the server insists).</param>
    /// <param name="hba">pg_hba.conf lines before the default (SCRAM over TCP for everyone).</param>
    public static async Task<PostgresServer> StartAsync((string Certificate, string Key)? serverCertificate = null, IEnumerable<string>? hba = null)
    {
        var bin = Binaries() ?? throw new InvalidOperationException("PostgreSQL is not installed; run tests/run-all.sh, which installs it (apt-get install postgresql).");
        var directory = Path.Combine(Path.GetTempPath(), $"agw-pg-{Guid.NewGuid():N}");
        Directory.CreateDirectory(directory);
        var password = "pg-super-" + Guid.NewGuid().ToString("N");
        await File.WriteAllTextAsync(Path.Combine(directory, "pw"), password + "\n");
        await RunAsync("chown", "-R", "postgres:postgres", directory);
        var data = Path.Combine(directory, "data");
        await RunAsPostgresAsync(Path.Combine(bin, "initdb"), "-D", data, "-U", Superuser, "--auth=scram-sha-256", "--pwfile=" + Path.Combine(directory, "pw"), "--no-sync", "-E", "UTF8", "--locale=C");
        var port = Loopback.FreePort();
        var conf = new List<string>
        {
            $"port = {port}",
            "listen_addresses = '127.0.0.1'",
            $"unix_socket_directories = '{directory}'",
            "password_encryption = 'scram-sha-256'",
            "log_connections = on",
            "log_disconnections = on",
            "log_statement = 'all'",
            "fsync = off",
            "max_connections = 60",
        };
        if (serverCertificate is { } tls)
        {
            File.Copy(tls.Certificate, Path.Combine(data, "server.crt"));
            File.Copy(tls.Key, Path.Combine(data, "server.key"));
            await RunAsync("chown", "postgres:postgres", Path.Combine(data, "server.crt"), Path.Combine(data, "server.key"));
            await RunAsync("chmod", "600", Path.Combine(data, "server.key"));
            conf.Add("ssl = on");
        }

        await File.AppendAllLinesAsync(Path.Combine(data, "postgresql.conf"), conf);
        var rules = new List<string>(hba ?? []) { "local all postgres scram-sha-256", "host all all 127.0.0.1/32 scram-sha-256" };
        await File.WriteAllLinesAsync(Path.Combine(data, "pg_hba.conf"), rules);
        await RunAsync("chown", "postgres:postgres", Path.Combine(data, "pg_hba.conf"), Path.Combine(data, "postgresql.conf"));
        var log = Path.Combine(directory, "postgres.log");
        await RunAsPostgresAsync(Path.Combine(bin, "pg_ctl"), "-D", data, "-l", log, "-w", "-t", "30", "start");
        return new PostgresServer(bin, directory, port, password);
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

    public async ValueTask DisposeAsync()
    {
        try
        {
            await RunAsPostgresAsync(Path.Combine(_bin, "pg_ctl"), "-D", Path.Combine(_directory, "data"), "-m", "immediate", "-w", "stop");
        }
        catch (InvalidOperationException)
        {
        }

        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static Task RunAsPostgresAsync(string program, params string[] arguments) =>
        RunAsync("runuser", ["-u", "postgres", "--", program, .. arguments]);

    private static async Task RunAsync(string program, params string[] arguments)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{program} did not start");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        if (process.ExitCode != 0)
        {
            var printed = await output + await error;
            throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture, $"{program} {string.Join(' ', arguments)} exited {process.ExitCode}: {printed}"));
        }
    }
}
