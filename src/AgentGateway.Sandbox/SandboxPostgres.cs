using System.Diagnostics;
using System.Globalization;

namespace AgentGateway.Sandbox;

/// <summary>
/// A throwaway PostgreSQL for the sandbox's database hop, when Debian's <c>postgresql</c> package
/// is installed: <c>initdb</c> and <c>pg_ctl</c> in a temporary directory on a free loopback port
/// (as the <c>postgres</c> user when the sandbox runs as root, since initdb refuses root), a
/// <c>tickets</c> database and a read-only role whose password only the gateway holds.
/// </summary>
internal sealed class SandboxPostgres : IAsyncDisposable
{
    public const string Role = "ticket_reader";
    public const string Database = "tickets";
    public const string InstallHint = "apt-get install -y postgresql";

    private readonly string _bin;
    private readonly string _directory;

    private SandboxPostgres(string bin, string directory, int port, string password)
    {
        _bin = bin;
        _directory = directory;
        Port = port;
        Password = password;
    }

    public int Port { get; }

    /// <summary>The role's password: the hop credential, which the agent never sees.</summary>
    public string Password { get; }

    public string Psql => Path.Combine(_bin, "psql");

    /// <summary>Starts one when PostgreSQL is installed; null (and why) when it is not or will not start.</summary>
    public static async Task<(SandboxPostgres? Server, string? Why)> TryStartAsync()
    {
        var bin = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin")).Where(d => File.Exists(Path.Combine(d, "initdb")) && File.Exists(Path.Combine(d, "psql"))).Order().LastOrDefault()
            : null;
        if (bin is null)
        {
            return (null, "PostgreSQL is not installed");
        }

        // Its own directory, not inside the sandbox's (private to this user), so that the postgres
        // user can reach it when the sandbox runs as root.
        var directory = Directory.CreateTempSubdirectory("agentgateway-sandbox-pg-").FullName;
        var superuser = "sandbox-admin-" + Guid.NewGuid().ToString("N");
        var password = "sandbox-db-" + Guid.NewGuid().ToString("N");
        await File.WriteAllTextAsync(Path.Combine(directory, "pw"), superuser + "\n");
        try
        {
            if (Environment.UserName == "root")
            {
                await RunAsync("chown", ["-R", "postgres:postgres", directory]);
            }

            var data = Path.Combine(directory, "data");
            await AsOwnerAsync(Path.Combine(bin, "initdb"), ["-D", data, "-U", "postgres", "--auth=scram-sha-256", "--pwfile=" + Path.Combine(directory, "pw"), "--no-sync", "-E", "UTF8", "--locale=C"]);
            var port = FreePort();
            await File.AppendAllLinesAsync(Path.Combine(data, "postgresql.conf"), [$"port = {port}", "listen_addresses = '127.0.0.1'", $"unix_socket_directories = '{directory}'", "fsync = off"]);
            await AsOwnerAsync(Path.Combine(bin, "pg_ctl"), ["-D", data, "-l", Path.Combine(directory, "log"), "-w", "-t", "30", "start"]);
            var server = new SandboxPostgres(bin, directory, port, password);
            await server.AdminAsync("postgres", $"CREATE DATABASE {Database}", superuser);
            await server.AdminAsync("postgres", $"CREATE ROLE {Role} LOGIN PASSWORD '{password}'", superuser);
            await server.AdminAsync(Database, $"CREATE TABLE ticket (id int PRIMARY KEY, subject text); INSERT INTO ticket VALUES (1, 'Refund'), (2, 'Login fails'), (3, 'Invoice'); GRANT SELECT ON ticket TO {Role}", superuser);
            return (server, null);
        }
        catch (InvalidOperationException ex)
        {
            return (null, "PostgreSQL did not start: " + ex.Message.Split('\n')[0]);
        }
    }

    /// <summary>Runs psql against <paramref name="port"/> as <paramref name="user"/>; the exit code and everything it printed.</summary>
    public async Task<(int Code, string Output)> PsqlAsync(int port, string user, string database, string password, string sql, CancellationToken cancellationToken = default)
    {
        var start = new ProcessStartInfo(Psql) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in new[] { $"host=127.0.0.1 port={port} dbname={database} user={user} sslmode=disable", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql })
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["PGPASSWORD"] = password;
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var error = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        return (process.ExitCode, (await output + await error).Trim());
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await AsOwnerAsync(Path.Combine(_bin, "pg_ctl"), ["-D", Path.Combine(_directory, "data"), "-m", "immediate", "-w", "stop"]);
            Directory.Delete(_directory, recursive: true);
        }
        catch (Exception ex) when (ex is InvalidOperationException or IOException or UnauthorizedAccessException)
        {
        }
    }

    private async Task AdminAsync(string database, string sql, string superuserPassword)
    {
        var (code, output) = await PsqlAsync(Port, "postgres", database, superuserPassword, sql);
        if (code != 0)
        {
            throw new InvalidOperationException(output);
        }
    }

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static Task AsOwnerAsync(string program, string[] arguments) =>
        Environment.UserName == "root" ? RunAsync("runuser", ["-u", "postgres", "--", program, .. arguments]) : RunAsync(program, arguments);

    private static async Task RunAsync(string program, string[] arguments)
    {
        var start = new ProcessStartInfo(program) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException(program + " did not start");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            var printed = await error + await output;
            throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture, $"{Path.GetFileName(program)} exited {process.ExitCode}: {printed}"));
        }
    }
}
