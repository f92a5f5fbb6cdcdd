using System.Diagnostics;
using System.Globalization;

namespace AgentGateway.Sandbox;

/// <summary>
/// A throwaway PostgreSQL cluster from Debian's <c>postgresql</c> package: <c>initdb</c> in a
/// temporary directory, <c>pg_ctl start</c> on a loopback port, stopped and removed on dispose.
/// As root it runs everything as the <c>postgres</c> user, since initdb refuses root. Shared by the
/// sandbox's database hop and the functional tests' PostgreSQL, which add their own settings.
/// </summary>
internal sealed class LocalPostgres : IAsyncDisposable
{
    public const string Superuser = "postgres";

    private readonly string _bin;

    private LocalPostgres(string bin, string directory, int port, string superuserPassword)
    {
        _bin = bin;
        Directory = directory;
        Port = port;
        SuperuserPassword = superuserPassword;
    }

    /// <summary>The cluster's own directory: the data directory, the socket and the log.</summary>
    public string Directory { get; }

    public int Port { get; }

    public string SuperuserPassword { get; }

    /// <summary>The server's log (pg_ctl's <c>-l</c>).</summary>
    public string LogFile => Path.Combine(Directory, "postgres.log");

    public string Psql => Path.Combine(_bin, "psql");

    /// <summary>Where the PostgreSQL binaries (initdb, pg_ctl, psql) are, or null when the package is not installed.</summary>
    public static string? Binaries() =>
        System.IO.Directory.Exists("/usr/lib/postgresql")
            ? System.IO.Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin")).Where(d => File.Exists(Path.Combine(d, "initdb")) && File.Exists(Path.Combine(d, "psql"))).Order().LastOrDefault()
            : null;

    /// <summary>Creates and starts a cluster listening on 127.0.0.1:<paramref name="port"/>, with
    /// SCRAM-SHA-256 for the superuser; throws <see cref="InvalidOperationException"/> naming the
    /// step that failed.</summary>
    /// <param name="settings">postgresql.conf lines beyond port, address, socket and fsync.</param>
    /// <param name="hba">pg_hba.conf in full; null keeps initdb's (SCRAM for everyone).</param>
    /// <param name="tls">PEM certificate and key files; the key is copied so that only the server's
    /// user can read it, as the server insists.</param>
    public static async Task<LocalPostgres> StartAsync(string bin, int port, IEnumerable<string>? settings = null, IEnumerable<string>? hba = null, (string Certificate, string Key)? tls = null)
    {
        // Its own directory (private to this user), handed to the postgres user when running as root.
        var directory = System.IO.Directory.CreateTempSubdirectory("agentgateway-pg-").FullName;
        var password = "pg-super-" + Guid.NewGuid().ToString("N");
        await File.WriteAllTextAsync(Path.Combine(directory, "pw"), password + "\n");
        await AsRootOnlyAsync("chown", "-R", "postgres:postgres", directory);
        var data = Path.Combine(directory, "data");
        await AsOwnerAsync(Path.Combine(bin, "initdb"), "-D", data, "-U", Superuser, "--auth=scram-sha-256", "--pwfile=" + Path.Combine(directory, "pw"), "--no-sync", "-E", "UTF8", "--locale=C");
        var conf = new List<string> { $"port = {port}", "listen_addresses = '127.0.0.1'", $"unix_socket_directories = '{directory}'", "fsync = off" };
        conf.AddRange(settings ?? []);
        var written = new List<string> { Path.Combine(data, "postgresql.conf") };
        if (tls is { } pem)
        {
            File.Copy(pem.Certificate, Path.Combine(data, "server.crt"));
            File.Copy(pem.Key, Path.Combine(data, "server.key"));
            await RunAsync("chmod", "600", Path.Combine(data, "server.key"));
            written.AddRange([Path.Combine(data, "server.crt"), Path.Combine(data, "server.key")]);
            conf.Add("ssl = on");
        }

        await File.AppendAllLinesAsync(Path.Combine(data, "postgresql.conf"), conf);
        if (hba is not null)
        {
            await File.WriteAllLinesAsync(Path.Combine(data, "pg_hba.conf"), hba);
            written.Add(Path.Combine(data, "pg_hba.conf"));
        }

        await AsRootOnlyAsync("chown", ["postgres:postgres", .. written]);
        var server = new LocalPostgres(bin, directory, port, password);
        await AsOwnerAsync(Path.Combine(bin, "pg_ctl"), "-D", data, "-l", server.LogFile, "-w", "-t", "30", "start");
        return server;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await AsOwnerAsync(Path.Combine(_bin, "pg_ctl"), "-D", Path.Combine(Directory, "data"), "-m", "immediate", "-w", "stop");
        }
        catch (Exception ex) when (ex is InvalidOperationException or OperationCanceledException)
        {
        }

        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
        }
    }

    private static bool IsRoot => Environment.UserName == "root";

    private static Task AsRootOnlyAsync(string program, params string[] arguments) =>
        IsRoot ? RunAsync(program, arguments) : Task.CompletedTask;

    private static Task AsOwnerAsync(string program, params string[] arguments) =>
        IsRoot ? RunAsync("runuser", ["-u", "postgres", "--", program, .. arguments]) : RunAsync(program, arguments);

    private static async Task RunAsync(string program, params string[] arguments)
    {
        var start = new ProcessStartInfo(program) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException(program + " did not start");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        if (process.ExitCode != 0)
        {
            var printed = await error + await output;
            throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture, $"{Path.GetFileName(program)} {string.Join(' ', arguments)} exited {process.ExitCode}: {printed}"));
        }
    }
}
