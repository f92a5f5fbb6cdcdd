using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;
using AgentGateway.FunctionalTests.Infrastructure;
using AgentGateway.Host;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.Serialization;

namespace AgentGateway.FunctionalTests.Deploy;

/// <summary>The deploy/ files cannot be run here (no container engine), so they are checked
/// statically: the configurations they ship pass the gateway's own validation, the image builds
/// from paths that exist, and the cluster manifests keep their promises.</summary>
public sealed class DeployFilesTests : IDisposable
{
    private static readonly string Root = Repository.Root;
    private readonly DirectoryInfo _work = Directory.CreateTempSubdirectory("agentgateway-deploy-");

    public void Dispose() => _work.Delete(recursive: true);

    [Fact]
    public async Task The_kubernetes_configmap_holds_a_configuration_the_gateway_accepts()
    {
        var yaml = await File.ReadAllTextAsync(Path.Combine(Root, "deploy", "kubernetes", "configmap.yaml"));
        var json = string.Join('\n', yaml[(yaml.IndexOf("gateway.json: |", StringComparison.Ordinal) + "gateway.json: |".Length)..]
            .Split('\n').Select(l => l.Length >= 4 ? l[4..] : l));

        var (code, stderr) = await ValidateAsync(json);

        Assert.True(code == GatewayCommand.Ok, stderr);
    }

    [Fact]
    public async Task The_compose_configuration_is_accepted_by_the_gateway()
    {
        var (code, stderr) = await ValidateAsync(await File.ReadAllTextAsync(Path.Combine(Root, "deploy", "compose", "gateway.json")));

        Assert.True(code == GatewayCommand.Ok, stderr);
    }

    [Fact]
    public async Task The_image_builds_from_paths_that_exist_and_runs_unprivileged()
    {
        var dockerfile = await File.ReadAllTextAsync(Path.Combine(Root, "deploy", "docker", "Dockerfile"));
        foreach (Match copy in Regex.Matches(dockerfile, @"^COPY (?!--from)(.+) \S+$", RegexOptions.Multiline))
        {
            foreach (var source in copy.Groups[1].Value.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                Assert.True(Path.Exists(Path.Combine(Root, source.TrimEnd('/'))), $"COPY source {source} does not exist");
            }
        }

        // BuildKit reads <Dockerfile>.dockerignore beside the Dockerfile; a plain .dockerignore is
        // read only at the context root (here the repository root).
        var ignore = await File.ReadAllLinesAsync(Path.Combine(Root, "deploy", "docker", "Dockerfile.dockerignore"));
        Assert.Contains("**/bin", ignore);
        Assert.Contains("**/obj", ignore);
        Assert.False(File.Exists(Path.Combine(Root, "deploy", "docker", ".dockerignore")));

        // Both images (the gateway's and the sandbox's) run on the ASP.NET runtime, unprivileged.
        var stages = Stages(dockerfile);
        foreach (var stage in new[] { "runtime", "sandbox" })
        {
            Assert.StartsWith("FROM mcr.microsoft.com/dotnet/aspnet:10.0 ", stages[stage], StringComparison.Ordinal);
            Assert.Contains("\nUSER $APP_UID\n", stages[stage], StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task The_deployment_keeps_its_promises()
    {
        var deployment = await File.ReadAllTextAsync(Path.Combine(Root, "deploy", "kubernetes", "deployment.yaml"));
        var kustomization = await File.ReadAllTextAsync(Path.Combine(Root, "deploy", "kubernetes", "kustomization.yaml"));

        Assert.Matches(@"replicas: ([2-9]|\d{2,})", deployment);
        foreach (var promise in new[] { "path: /healthz", "path: /readyz", "runAsNonRoot: true", "readOnlyRootFilesystem: true", "allowPrivilegeEscalation: false", "requests:" })
        {
            Assert.Contains(promise, deployment, StringComparison.Ordinal);
        }

        foreach (Match resource in Regex.Matches(kustomization, @"^  - (\S+\.yaml)$", RegexOptions.Multiline))
        {
            Assert.True(File.Exists(Path.Combine(Root, "deploy", "kubernetes", resource.Groups[1].Value)), resource.Value);
        }
    }

    [Fact]
    public async Task Every_secret_key_the_deployment_reads_is_created_by_the_script_and_none_is_in_the_repository()
    {
        var deployment = await File.ReadAllTextAsync(Path.Combine(Root, "deploy", "kubernetes", "deployment.yaml"));
        var script = await File.ReadAllTextAsync(Path.Combine(Root, "deploy", "kubernetes", "create-secret.sh"));
        var keys = Regex.Matches(deployment, @"secretKeyRef: \{ name: agentgateway-secrets, key: (\S+) \}").Select(m => m.Groups[1].Value)
            .Concat(Regex.Matches(deployment, @"- \{ key: (\S+), path:").Select(m => m.Groups[1].Value))
            .ToList();

        Assert.Equal(6, keys.Count);
        foreach (var key in keys)
        {
            Assert.Matches($@"--from-(literal|file)={Regex.Escape(key)}=", script);
        }

        foreach (var file in Directory.EnumerateFiles(Path.Combine(Root, "deploy"), "*", SearchOption.AllDirectories))
        {
            Assert.DoesNotContain("PRIVATE KEY-----", await File.ReadAllTextAsync(file), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Every_file_under_deploy_parses()
    {
        var checkedFiles = 0;
        foreach (var file in Directory.EnumerateFiles(Path.Combine(Root, "deploy"), "*", SearchOption.AllDirectories))
        {
            switch (Path.GetExtension(file))
            {
                case ".yaml" or ".yml":
                    Assert.NotEmpty(Yaml(file));
                    break;
                case ".json":
                    using (JsonDocument.Parse(await File.ReadAllTextAsync(file), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip }))
                    {
                    }

                    break;
                case ".sh":
                    using (var bash = Process.Start(new ProcessStartInfo("bash") { ArgumentList = { "-n", file }, RedirectStandardError = true })!)
                    {
                        var errors = await bash.StandardError.ReadToEndAsync();
                        await bash.WaitForExitAsync();
                        Assert.True(bash.ExitCode == 0, $"{file}: {errors}");
                    }

                    break;
                default:
                    continue;
            }

            checkedFiles++;
        }

        Assert.True(checkedFiles >= 13, $"only {checkedFiles} files checked");
    }

    [Theory]
    [InlineData("runtime", "AgentGateway.Host")]
    [InlineData("sandbox", "AgentGateway.Sandbox")]
    public void Each_image_runs_its_own_projects_assembly(string stage, string project)
    {
        var dockerfile = File.ReadAllText(Path.Combine(Root, "deploy", "docker", "Dockerfile"));
        var entrypoint = Regex.Match(Stages(dockerfile)[stage], @"^ENTRYPOINT \[""dotnet"", ""([^""]+)""\]", RegexOptions.Multiline).Groups[1].Value;
        var csproj = File.ReadAllText(Path.Combine(Root, "src", project, project + ".csproj"));

        Assert.Equal(Regex.Match(csproj, "<AssemblyName>([^<]+)</AssemblyName>").Groups[1].Value + ".dll", entrypoint);
        Assert.Contains($"dotnet publish src/{project}/{project}.csproj ", dockerfile, StringComparison.Ordinal);
        // The same build output the image publishes; the tests run this very file as a process.
        Assert.True(File.Exists(Path.Combine(AppContext.BaseDirectory, entrypoint)), entrypoint);
    }

    [Fact]
    public void The_gateway_image_is_the_default_target_and_carries_no_sandbox()
    {
        var dockerfile = File.ReadAllText(Path.Combine(Root, "deploy", "docker", "Dockerfile"));
        var stages = Stages(dockerfile);

        // `docker build` without --target builds the last stage.
        Assert.Equal("runtime", stages.Keys.Last());
        Assert.DoesNotContain("sandbox", stages["runtime"], StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("AgentGateway.Sandbox.csproj -c", stages["build"], StringComparison.Ordinal);
    }

    [Fact]
    public void Kubernetes_ports_and_probes_agree_with_the_configuration()
    {
        var directory = Path.Combine(Root, "deploy", "kubernetes");
        var container = At(Yaml(Path.Combine(directory, "deployment.yaml")).Single(d => Str(At(d, "kind")) == "Deployment"), "spec", "template", "spec", "containers", 0);
        var ports = ((List<object>)At(container, "ports")!).ToDictionary(p => Str(At(p, "name")), p => Str(At(p, "containerPort")));
        var args = ((List<object>)At(container, "args")!).Select(Str).ToList();
        var configMap = Str(At(Yaml(Path.Combine(directory, "configmap.yaml")).Single(d => Str(At(d, "kind")) == "ConfigMap"), "data", "gateway.json"));
        var admin = JsonDocument.Parse(configMap, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip }).RootElement.GetProperty("Gateway").GetProperty("Admin").GetProperty("Urls").GetString()!;

        Assert.Equal(Port(args[args.IndexOf("--urls") + 1]), ports["proxy"]);
        Assert.Equal(Port(admin), ports["admin"]);
        foreach (var probe in new[] { "readinessProbe", "livenessProbe", "startupProbe" })
        {
            Assert.Contains(Str(At(container, probe, "httpGet", "port")), ports.Keys);
        }

        foreach (var service in Yaml(Path.Combine(directory, "service.yaml")))
        {
            foreach (var port in (List<object>)At(service, "spec", "ports")!)
            {
                Assert.Contains(Str(At(port, "targetPort")), ports.Keys);
            }
        }

        var ingress = ((List<object>)At(Yaml(Path.Combine(directory, "networkpolicy.yaml")).Single(), "spec", "ingress")!)
            .SelectMany(rule => (List<object>)At(rule, "ports")!).Select(p => Str(At(p, "port"))).ToList();
        Assert.Equal(ports.Values.Order(), ingress.Order());
    }

    [Fact]
    public void Compose_ports_paths_and_names_agree_with_each_other_and_the_configuration()
    {
        var compose = Yaml(Path.Combine(Root, "deploy", "compose.yaml")).Single();
        var services = (Dictionary<object, object>)At(compose, "services")!;
        var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(Root, "deploy", "compose", "gateway.json"))).RootElement;
        var dockerfile = File.ReadAllText(Path.Combine(Root, "deploy", "docker", "Dockerfile"));
        var nginx = File.ReadAllText(Path.Combine(Root, "deploy", "compose", "nginx.conf"));

        // The load balancer reaches each replica on the port the image listens on.
        var proxyPort = Port(Regex.Match(dockerfile, @"ASPNETCORE_URLS=(\S+)").Groups[1].Value);
        var replicas = services.Keys.Cast<string>().Where(name => name.StartsWith("gateway-", StringComparison.Ordinal)).Order().ToList();
        Assert.Equal(2, replicas.Count);
        Assert.Equal(replicas.Select(r => $"{r}:{proxyPort}"), Regex.Matches(nginx, @"server (\S+);").Select(m => m.Groups[1].Value).Order());
        Assert.Equal($"9091:{Port(config.GetProperty("Gateway").GetProperty("Admin").GetProperty("Urls").GetString()!)}", Str(At(services["gateway-1"], "ports", 0)));

        // The sandbox: its own image, the port it is told, the port it publishes, the names the replicas use.
        var sandbox = services["sandbox"];
        var stages = Stages(dockerfile);
        Assert.Contains("agentgateway-sandbox.dll", stages[Str(At(sandbox, "build", "target"))], StringComparison.Ordinal);
        Assert.NotEqual(Str(At(sandbox, "image")), Str(At(services[replicas[0]], "image")));
        var command = ((List<object>)At(sandbox, "command")!).Select(Str).ToList();
        var port = int.Parse(command[command.IndexOf("--port") + 1], CultureInfo.InvariantCulture);
        var host = command[command.IndexOf("--host") + 1];
        var output = command[command.IndexOf("--out") + 1];
        Assert.Equal($"{port}:{port}", Str(At(sandbox, "ports", 0)));
        Assert.Equal(["CMD", "test", "-s", output + "/ca.pem"], ((List<object>)At(sandbox, "healthcheck", "test")!).Select(Str));
        Assert.Contains($"sandbox:{output}", ((List<object>)At(sandbox, "volumes")!).Select(Str));
        var addresses = Regex.Matches(config.GetRawText(), @"https://([^/:""]+):(\d+)/").Select(m => (Host: m.Groups[1].Value, Port: int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture))).Distinct().ToList();
        Assert.All(addresses, a => Assert.Equal(host, a.Host));
        Assert.Equal([port, port + 1, port + 2], addresses.Select(a => a.Port).Distinct().Order());
        Assert.Contains($"RUN mkdir -p {output} ", stages["sandbox"], StringComparison.Ordinal);

        foreach (var replica in replicas)
        {
            var service = services[replica];
            var environment = (Dictionary<object, object>)At(service, "environment")!;
            Assert.Equal($"{output}/ca.pem", Str(environment["SSL_CERT_FILE"]));
            Assert.Equal($"https://{host}:{port}", Str(environment["AZURE_POD_IDENTITY_AUTHORITY_HOST"]));
            Assert.Contains($"sandbox:{output}:ro", ((List<object>)At(service, "volumes")!).Select(Str));
            Assert.Equal("service_healthy", Str(At(service, "depends_on", "sandbox", "condition")));
            Assert.Equal("runtime", Str(At(service, "build", "target")));
        }

        // Every secret the replicas read is one the sandbox writes to the shared volume.
        foreach (Match file in Regex.Matches(config.GetRawText(), @"file:([^""]+)"))
        {
            Assert.StartsWith(output + "/", file.Groups[1].Value, StringComparison.Ordinal);
        }
    }

    /// <summary>The Dockerfile's stages by name (<c>FROM … AS name</c>), each with its text.</summary>
    private static Dictionary<string, string> Stages(string dockerfile)
    {
        var starts = Regex.Matches(dockerfile, @"^FROM \S+ AS (\S+)$", RegexOptions.Multiline);
        return starts.Select((start, i) => (start.Groups[1].Value, dockerfile[start.Index..(i + 1 < starts.Count ? starts[i + 1].Index : dockerfile.Length)]))
            .ToDictionary(stage => stage.Item1, stage => stage.Item2);
    }

    /// <summary>Every document of a YAML file, with merge keys (<c>&lt;&lt;: *anchor</c>) applied.</summary>
    private static List<object> Yaml(string path)
    {
        using var reader = new StreamReader(path);
        var parser = new MergingParser(new Parser(reader));
        var deserializer = new DeserializerBuilder().Build();
        parser.Consume<StreamStart>();
        var documents = new List<object>();
        while (parser.Accept<DocumentStart>(out _))
        {
            documents.Add(deserializer.Deserialize<object>(parser) ?? throw new InvalidOperationException($"{path}: an empty document"));
        }

        return documents;
    }

    private static object? At(object? node, params object[] path)
    {
        foreach (var step in path)
        {
            node = (node, step) switch
            {
                (Dictionary<object, object> map, string key) => map.GetValueOrDefault(key),
                (List<object> list, int index) => index < list.Count ? list[index] : null,
                _ => null,
            };
        }

        return node;
    }

    private static string Str(object? value) => value as string ?? throw new InvalidOperationException($"not a scalar: {value}");

    private static string Port(string url) => url.Replace("+", "localhost", StringComparison.Ordinal) is var normal && Uri.TryCreate(normal, UriKind.Absolute, out var uri)
        ? uri.Port.ToString(CultureInfo.InvariantCulture)
        : throw new InvalidOperationException($"not a URL: {url}");

    /// <summary>Validates a shipped configuration with its secret references pointed at stand-ins.</summary>
    private async Task<(int Code, string Stderr)> ValidateAsync(string json)
    {
        foreach (Match file in Regex.Matches(json, @"file:(/[^""]+)"))
        {
            var standIn = Path.Combine(_work.FullName, Path.GetFileName(file.Groups[1].Value));
            if (standIn.EndsWith(".pem", StringComparison.Ordinal))
            {
                using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
                await File.WriteAllTextAsync(standIn, key.ExportPkcs8PrivateKeyPem());
            }
            else
            {
                await File.WriteAllTextAsync(standIn, "stand-in-secret");
            }

            json = json.Replace(file.Value, "file:" + standIn, StringComparison.Ordinal);
        }

        json = json.Replace("/var/log/agentgateway/", _work.FullName + "/", StringComparison.Ordinal);
        json = json.Replace("\"$schema\": \"../../config/gateway.schema.json\",", "", StringComparison.Ordinal);
        foreach (Match variable in Regex.Matches(json, @"env:([A-Z_]+)"))
        {
            Environment.SetEnvironmentVariable(variable.Groups[1].Value, variable.Groups[1].Value == "AGW_CACHE_KEY"
                ? Convert.ToBase64String(RandomNumberGenerator.GetBytes(32))
                : "stand-in-" + variable.Groups[1].Value);
        }

        var path = Path.Combine(_work.FullName, "gateway.json");
        await File.WriteAllTextAsync(path, json);
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var code = await GatewayCommand.RunAsync(["validate", path], stdout, stderr);
        return (code, stderr.ToString());
    }
}
