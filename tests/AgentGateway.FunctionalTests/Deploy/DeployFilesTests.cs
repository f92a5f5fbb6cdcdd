using System.Security.Cryptography;
using System.Text.RegularExpressions;
using AgentGateway.Host;

namespace AgentGateway.FunctionalTests.Deploy;

/// <summary>The deploy/ files cannot be run here (no container engine), so they are checked
/// statically: the configurations they ship pass the gateway's own validation, the image builds
/// from paths that exist, and the cluster manifests keep their promises.</summary>
public sealed class DeployFilesTests : IDisposable
{
    private static readonly string Root = FindRoot();
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

        Assert.Contains("USER $APP_UID", dockerfile, StringComparison.Ordinal);
        Assert.Contains("FROM mcr.microsoft.com/dotnet/aspnet:10.0", dockerfile, StringComparison.Ordinal);
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

    private static string FindRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "AgentGateway.sln")))
        {
            directory = directory.Parent;
        }

        return directory?.FullName ?? throw new InvalidOperationException("repository root not found");
    }
}
