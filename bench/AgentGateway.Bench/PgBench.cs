using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using AgentGateway.Sandbox;

namespace AgentGateway.Bench;

/// <summary>
/// The database hop under load: <c>pgbench -S</c> (select only, prepared protocol) against the same
/// PostgreSQL directly, through PgBouncer in session mode (what an operator would otherwise put
/// there), and through the gateway (the agent's token as the password, the hop password injected),
/// in alternating rounds; then the cost of a connection itself (<c>pgbench -C</c>, a new
/// connection per transaction) with a cached hop credential. Prints ratios against the baselines
/// measured in the same run.
///   dotnet run -c Release --project bench/AgentGateway.Bench -- --pgbench [--seconds 10] [--rounds 2] [--clients 16]
/// </summary>
internal static partial class PgBench
{
    private const string Role = "bench";
    private const string Database = "bench";

    private static readonly string[] BouncerPaths = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"];

    public static async Task<int> RunAsync(string[] args)
    {
        var seconds = Option(args, "--seconds", 10);
        var rounds = Option(args, "--rounds", 2);
        var clients = Option(args, "--clients", 16);
        var bin = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin")).Where(d => File.Exists(Path.Combine(d, "pgbench"))).Order().LastOrDefault()
            : null;
        var bouncer = BouncerPaths.FirstOrDefault(File.Exists);
        if (bin is null)
        {
            Console.Error.WriteLine("PostgreSQL is not installed: apt-get install -y postgresql postgresql-contrib (and pgbouncer for the baseline)");
            return 2;
        }

        var gatewayBinary = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "agentgateway"));
        var work = Directory.CreateTempSubdirectory("agentgateway-pgbench-");
        var password = "bench-" + Guid.NewGuid().ToString("N");
        var server = await Cluster.StartAsync(bin, work.FullName, password);
        Process? pgbouncer = null;
        ChildProcess? gateway = null;
        try
        {
            await server.PgbenchAsync(["-i", "-s", "10", "-q"], password, server.Port);
            var bouncerPort = ChildProcess.FreePort();
            if (bouncer is not null)
            {
                pgbouncer = await Cluster.StartBouncerAsync(bouncer, work.FullName, server.Port, bouncerPort, password);
            }

            await using var idp = new DemoIdentityProvider();
            await idp.StartAsync();
            idp.AddClient("bench-agent", "bench-secret", "agentgateway");
            var gatewayPort = ChildProcess.FreePort();
            var configFile = Path.Combine(work.FullName, "gateway.json");
            // The HTTP listeners are in the configuration: readiness is asked on the first of them.
            var listeners = (Http: ChildProcess.FreePort(), H2c: ChildProcess.FreePort());
            await File.WriteAllTextAsync(configFile, BenchConfig.Listeners(Config(idp.Url, server.Port, gatewayPort), listeners.Http, listeners.H2c).ToJsonString());
            var everyCore = new CpuSet([.. Enumerable.Range(0, Environment.ProcessorCount)]);
            gateway = await ChildProcess.StartGatewayAsync(everyCore, gatewayBinary, configFile, listeners, new Dictionary<string, string> { ["AGW_BENCH_PG_PASSWORD"] = password });
            var token = idp.Mint("bench-agent", "agentgateway", TimeSpan.FromMinutes(50));

            var targets = new List<(string Name, int Port, string Password)> { ("direct", server.Port, password) };
            if (pgbouncer is not null)
            {
                targets.Add(("PgBouncer", bouncerPort, password));
            }

            targets.Add(("AgentGateway", gatewayPort, token));
            Console.WriteLine($"pgbench -S -M prepared, {clients} clients, {rounds} rounds of {seconds} s each, alternating; PostgreSQL {Path.GetFileName(Path.GetDirectoryName(bin))} on loopback");
            Console.WriteLine($"  PgBouncer: {(pgbouncer is null ? "not installed — skipped (apt-get install -y pgbouncer)" : "session mode")}; the gateway logs in with SCRAM-SHA-256, the agent with its token");

            foreach (var (_, port, secret) in targets)
            {
                await server.PgbenchAsync(["-S", "-M", "prepared", "-c", clients.ToString(CultureInfo.InvariantCulture), "-j", "2", "-T", "2", Database], secret, port);
            }

            var tps = targets.ToDictionary(t => t.Name, _ => new List<double>());
            var setup = targets.ToDictionary(t => t.Name, _ => new List<double>());
            for (var round = 0; round < rounds; round++)
            {
                foreach (var (name, port, secret) in targets)
                {
                    var output = await server.PgbenchAsync(["-S", "-M", "prepared", "-c", clients.ToString(CultureInfo.InvariantCulture), "-j", "2", "-T", seconds.ToString(CultureInfo.InvariantCulture), Database], secret, port);
                    tps[name].Add(Number(TpsLine(), output));
                    setup[name].Add(Number(InitialConnectionLine(), output));
                }
            }

            // A new connection per transaction: what one connection costs, with the hop credential cached.
            var perConnection = targets.ToDictionary(t => t.Name, _ => 0.0);
            foreach (var (name, port, secret) in targets)
            {
                var output = await server.PgbenchAsync(["-S", "-C", "-c", "4", "-j", "2", "-T", Math.Max(3, seconds / 2).ToString(CultureInfo.InvariantCulture), Database], secret, port);
                perConnection[name] = Number(AverageConnectionLine(), output);
            }

            Console.WriteLine();
            Console.WriteLine($"{"target",-14} {"tps",10} {"16 connections ms",18} {"per connection ms",18}");
            foreach (var (name, _, _) in targets)
            {
                Console.WriteLine($"{name,-14} {tps[name].Average(),10:0} {setup[name].Average(),18:0.0} {perConnection[name],18:0.00}");
            }

            var ours = tps["AgentGateway"].Average();
            Console.WriteLine($"throughput AgentGateway / direct:    {ours / tps["direct"].Average():0.00}");
            if (tps.TryGetValue("PgBouncer", out var baseline))
            {
                Console.WriteLine($"throughput AgentGateway / PgBouncer: {ours / baseline.Average():0.00} (target ≥ 0.90)");
                Console.WriteLine($"connection set-up added over PgBouncer: {perConnection["AgentGateway"] - perConnection["PgBouncer"]:0.00} ms");
            }

            Console.WriteLine($"connection set-up added over direct: {perConnection["AgentGateway"] - perConnection["direct"]:0.00} ms (target ≤ 2 ms, cached hop credential)");
            return 0;
        }
        finally
        {
            if (gateway is not null)
            {
                await gateway.DisposeAsync();
            }

            if (pgbouncer is { HasExited: false })
            {
                // As root it runs under runuser: the bouncer is its child, so the whole tree goes.
                pgbouncer.Kill(entireProcessTree: true);
                await pgbouncer.WaitForExitAsync();
            }

            await server.StopAsync();
            work.Delete(recursive: true);
        }
    }

    private static JsonObject Config(string issuer, int serverPort, int listenPort) => new()
    {
        ["ReverseProxy"] = new JsonObject { ["Routes"] = new JsonObject(), ["Clusters"] = new JsonObject() },
        ["Gateway"] = new JsonObject
        {
            ["Inbound"] = new JsonObject
            {
                ["Issuers"] = new JsonObject
                {
                    ["bench"] = new JsonObject { ["Issuer"] = issuer, ["JwksUri"] = issuer + "jwks", ["Audiences"] = new JsonArray("agentgateway"), ["Algorithms"] = new JsonArray("ES256") },
                },
            },
            ["Agents"] = new JsonObject
            {
                ["bench-agent"] = new JsonObject
                {
                    ["Owner"] = "bench@example.test",
                    ["Identities"] = new JsonArray(new JsonObject { ["Issuer"] = "bench", ["Subject"] = "bench-agent" }),
                    ["Grants"] = new JsonArray("db"),
                },
            },
            ["Grants"] = new JsonObject
            {
                ["db"] = new JsonObject { ["Databases"] = new JsonObject { [Database] = new JsonObject { ["Role"] = Role, ["Password"] = "env:AGW_BENCH_PG_PASSWORD" } } },
            },
            ["Databases"] = new JsonObject
            {
                [Database] = new JsonObject
                {
                    ["Listen"] = $"127.0.0.1:{listenPort}",
                    ["Upstream"] = new JsonObject { ["Host"] = "127.0.0.1", ["Port"] = serverPort, ["Database"] = Database, ["Tls"] = "Disable" },
                },
            },
        },
    };

    private static double Number(Regex pattern, string output) =>
        pattern.Match(output) is { Success: true } match ? double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) : double.NaN;

    private static int Option(string[] args, string name, int fallback)
    {
        var index = Array.IndexOf(args, name);
        return index >= 0 && index + 1 < args.Length && int.TryParse(args[index + 1], CultureInfo.InvariantCulture, out var value) ? value : fallback;
    }

    [GeneratedRegex(@"tps = ([0-9.]+) \(without initial connection time\)")]
    private static partial Regex TpsLine();

    [GeneratedRegex(@"initial connection time = ([0-9.]+) ms")]
    private static partial Regex InitialConnectionLine();

    [GeneratedRegex(@"average connection time = ([0-9.]+) ms")]
    private static partial Regex AverageConnectionLine();

    /// <summary>A throwaway PostgreSQL cluster (initdb refuses root: as root it runs as the postgres user).</summary>
    private sealed class Cluster(string bin, string directory, int port)
    {
        public int Port => port;

        public static async Task<Cluster> StartAsync(string bin, string work, string password)
        {
            var directory = Path.Combine(work, "pg");
            Directory.CreateDirectory(directory);
            await File.WriteAllTextAsync(Path.Combine(directory, "pw"), password + "\n");
            if (Environment.UserName == "root")
            {
                await RunAsync("chown", ["-R", "postgres:postgres", work]);
            }

            var data = Path.Combine(directory, "data");
            await AsOwnerAsync(Path.Combine(bin, "initdb"), ["-D", data, "-U", Role, "--auth=scram-sha-256", "--pwfile=" + Path.Combine(directory, "pw"), "--no-sync", "-E", "UTF8", "--locale=C"]);
            var port = ChildProcess.FreePort();
            await File.AppendAllLinesAsync(Path.Combine(data, "postgresql.conf"), [$"port = {port}", "listen_addresses = '127.0.0.1'", $"unix_socket_directories = '{directory}'", "max_connections = 100", "shared_buffers = 128MB", "fsync = off"]);
            await AsOwnerAsync(Path.Combine(bin, "pg_ctl"), ["-D", data, "-l", Path.Combine(directory, "log"), "-w", "start"]);
            var cluster = new Cluster(bin, directory, port);
            await RunAsync(Path.Combine(bin, "createdb"), ["-h", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture), "-U", Role, Database], password);
            return cluster;
        }

        public static async Task<Process> StartBouncerAsync(string binary, string work, int serverPort, int port, string password)
        {
            var ini = Path.Combine(work, "pgbouncer.ini");
            await File.WriteAllTextAsync(Path.Combine(work, "userlist.txt"), $"\"{Role}\" \"{password}\"\n");
            await File.WriteAllLinesAsync(ini,
            [
                "[databases]",
                $"{Database} = host=127.0.0.1 port={serverPort} dbname={Database}",
                "[pgbouncer]",
                "listen_addr = 127.0.0.1",
                $"listen_port = {port}",
                $"unix_socket_dir = {work}",
                "auth_type = scram-sha-256",
                $"auth_file = {Path.Combine(work, "userlist.txt")}",
                "pool_mode = session",
                "default_pool_size = 40",
                "max_client_conn = 200",
                $"logfile = {Path.Combine(work, "pgbouncer.log")}",
            ]);
            if (Environment.UserName == "root")
            {
                await RunAsync("chown", ["-R", "postgres:postgres", work]);
            }

            var start = new ProcessStartInfo(Environment.UserName == "root" ? "runuser" : binary) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (var argument in Environment.UserName == "root" ? ["-u", "postgres", "--", binary, ini] : new[] { ini })
            {
                start.ArgumentList.Add(argument);
            }

            var process = Process.Start(start)!;
            _ = process.StandardOutput.ReadToEndAsync();
            _ = process.StandardError.ReadToEndAsync();
            for (var i = 0; i < 100; i++)
            {
                try
                {
                    using var probe = new System.Net.Sockets.TcpClient();
                    await probe.ConnectAsync(System.Net.IPAddress.Loopback, port);
                    return process;
                }
                catch (System.Net.Sockets.SocketException)
                {
                    await Task.Delay(50);
                }
            }

            throw new InvalidOperationException("pgbouncer did not start");
        }

        public async Task<string> PgbenchAsync(string[] arguments, string password, int target) =>
            await RunAsync(Path.Combine(bin, "pgbench"), ["-h", "127.0.0.1", "-p", target.ToString(CultureInfo.InvariantCulture), "-U", Role, .. arguments, .. arguments.Contains("-i") ? new[] { Database } : []], password);

        public Task<string> StopAsync() => AsOwnerAsync(Path.Combine(bin, "pg_ctl"), ["-D", Path.Combine(directory, "data"), "-m", "immediate", "-w", "stop"]);

        private static Task<string> AsOwnerAsync(string program, string[] arguments) =>
            Environment.UserName == "root" ? RunAsync("runuser", ["-u", "postgres", "--", program, .. arguments]) : RunAsync(program, arguments);

        private static async Task<string> RunAsync(string program, string[] arguments, string? password = null)
        {
            var start = new ProcessStartInfo(program) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (var argument in arguments)
            {
                start.ArgumentList.Add(argument);
            }

            if (password is not null)
            {
                start.Environment["PGPASSWORD"] = password;
            }

            using var process = Process.Start(start)!;
            var output = process.StandardOutput.ReadToEndAsync();
            var error = process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync();
            var text = await output + await error;
            return process.ExitCode == 0 ? text : throw new InvalidOperationException($"{Path.GetFileName(program)} exited {process.ExitCode}: {text}");
        }
    }
}
