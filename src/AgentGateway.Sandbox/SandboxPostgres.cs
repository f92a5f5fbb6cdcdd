using System.Diagnostics;

namespace AgentGateway.Sandbox;

/// <summary>
/// The sandbox's database hop, when Debian's <c>postgresql</c> package is installed: a throwaway
/// cluster (<see cref="LocalPostgres"/>) on a free loopback port with a <c>tickets</c> database and
/// a read-only role whose password only the gateway holds.
/// </summary>
internal sealed class SandboxPostgres : IAsyncDisposable
{
    public const string Role = "ticket_reader";
    public const string Database = "tickets";
    public const string InstallHint = "apt-get install -y postgresql";

    private readonly LocalPostgres _cluster;

    private SandboxPostgres(LocalPostgres cluster, string password)
    {
        _cluster = cluster;
        Password = password;
    }

    public int Port => _cluster.Port;

    /// <summary>The role's password: the hop credential, which the agent never sees.</summary>
    public string Password { get; }

    /// <summary>Starts one when PostgreSQL is installed; null (and why) when it is not or will not start.</summary>
    public static async Task<(SandboxPostgres? Server, string? Why)> TryStartAsync()
    {
        if (LocalPostgres.Binaries() is not { } bin)
        {
            return (null, "PostgreSQL is not installed");
        }

        LocalPostgres? cluster = null;
        try
        {
            cluster = await LocalPostgres.StartAsync(bin, FreePort());
            var server = new SandboxPostgres(cluster, "sandbox-db-" + Guid.NewGuid().ToString("N"));
            await server.AdminAsync("postgres", $"CREATE DATABASE {Database}");
            await server.AdminAsync("postgres", $"CREATE ROLE {Role} LOGIN PASSWORD '{server.Password}'");
            await server.AdminAsync(Database, $"CREATE TABLE ticket (id int PRIMARY KEY, subject text); INSERT INTO ticket VALUES (1, 'Refund'), (2, 'Login fails'), (3, 'Invoice'); GRANT SELECT ON ticket TO {Role}");
            return (server, null);
        }
        catch (Exception ex) when (ex is InvalidOperationException or OperationCanceledException)
        {
            if (cluster is not null)
            {
                await cluster.DisposeAsync();
            }

            return (null, "PostgreSQL did not start: " + ex.Message.Split('\n')[0]);
        }
    }

    /// <summary>Runs psql against <paramref name="port"/> as <paramref name="user"/>; the exit code and everything it printed.</summary>
    public async Task<(int Code, string Output)> PsqlAsync(int port, string user, string database, string password, string sql, CancellationToken cancellationToken = default)
    {
        var start = new ProcessStartInfo(_cluster.Psql) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
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

    public ValueTask DisposeAsync() => _cluster.DisposeAsync();

    private async Task AdminAsync(string database, string sql)
    {
        var (code, output) = await PsqlAsync(Port, LocalPostgres.Superuser, database, _cluster.SuperuserPassword, sql);
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
}
