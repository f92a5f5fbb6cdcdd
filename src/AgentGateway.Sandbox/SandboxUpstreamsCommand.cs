using System.Globalization;
using System.Net;
using System.Security.Cryptography;

namespace AgentGateway.Sandbox;

/// <summary>
/// <c>agentgateway-sandbox --upstreams</c>: the sandbox's demo identity provider and upstreams
/// without its gateway, for gateways that run elsewhere — the compose file's two replicas. They
/// reach it under a service name, which is not loopback, so it speaks TLS (the gateway sends
/// credentials over plain HTTP to loopback only). It writes to <c>--out</c> what those gateways
/// need and nothing more: the certificate of a certificate authority made for this run, and the
/// hop secrets, fresh each start. The agent gets none of them; it gets its own token from the
/// identity provider, as in the sandbox story.
/// </summary>
internal static class SandboxUpstreamsCommand
{
    /// <summary>The file the gateways trust (SSL_CERT_FILE); written last, so it means "ready".</summary>
    public const string AuthorityFile = "ca.pem";
    public const string LlmKeyFile = "llm-api-key";
    public const string CrmSecretFile = "crm-client-secret";
    public const string ToolsSecretFile = "tools-client-secret";

    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr)
    {
        var host = SandboxCommand.OptionValue(args, "--host") ?? "localhost";
        var bindText = SandboxCommand.OptionValue(args, "--bind") ?? "127.0.0.1";
        var portText = SandboxCommand.OptionValue(args, "--port") ?? "8443";
        var output = SandboxCommand.OptionValue(args, "--out");
        var problems = new List<string>();
        if (output is null)
        {
            problems.Add("--out DIR is required: the gateways read the CA certificate and the hop secrets from it.");
        }

        if (!IPAddress.TryParse(bindText, out var bind))
        {
            problems.Add($"--bind '{bindText}' is not an IP address.");
        }

        if (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65533)
        {
            problems.Add($"--port '{portText}' is not a port from 1 to 65533 (the upstreams take the next two).");
        }

        if (Uri.CheckHostName(host) is UriHostNameType.Unknown or UriHostNameType.Basic)
        {
            problems.Add($"--host '{host}' is not a host name.");
        }

        if (problems.Count > 0)
        {
            foreach (var problem in problems)
            {
                await stderr.WriteLineAsync(problem);
            }

            return SandboxCommand.Usage;
        }

        var directory = Directory.CreateDirectory(output!);
        // A certificate left from an earlier run would say "ready" before this run is.
        var authorityPath = Path.Combine(directory.FullName, AuthorityFile);
        File.Delete(authorityPath);
        var (authority, server) = SandboxListener.CreateCertificates(host, TimeProvider.System);
        using (authority)
        using (server)
        {
            var listener = new SandboxListener(bind!, host, server);
            var llmKey = "sk-sandbox-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
            var crmSecret = Convert.ToBase64String(RandomNumberGenerator.GetBytes(24));
            var toolsSecret = Convert.ToBase64String(RandomNumberGenerator.GetBytes(24));

            await using var idp = new DemoIdentityProvider();
            SandboxCommand.AddClients(idp, crmSecret, toolsSecret);
            await idp.StartAsync(listener, port);
            await using var upstreams = new DemoUpstreams(idp, llmKey);
            await upstreams.StartAsync(listener, port + 1, port + 2);

            WriteOwnerOnly(Path.Combine(directory.FullName, LlmKeyFile), llmKey);
            WriteOwnerOnly(Path.Combine(directory.FullName, CrmSecretFile), crmSecret);
            WriteOwnerOnly(Path.Combine(directory.FullName, ToolsSecretFile), toolsSecret);
            await File.WriteAllTextAsync(authorityPath + ".tmp", authority.ExportCertificatePem() + "\n");
            File.Move(authorityPath + ".tmp", authorityPath, overwrite: true);

            await stdout.WriteLineAsync("AgentGateway sandbox upstreams — demo only: an identity provider and upstreams for gateways elsewhere.");
            await stdout.WriteLineAsync($"  identity provider  {idp.Url} (issuer; token {idp.Url}token, JWKS {idp.Url}jwks, managed identity for AZURE_POD_IDENTITY_AUTHORITY_HOST)");
            await stdout.WriteLineAsync($"  upstreams          {upstreams.ApiUrl} (LLM, CRM, database, e-mail), MCP tools {upstreams.McpUrl}mcp");
            await stdout.WriteLineAsync($"  for the gateways   {authorityPath} (trust it: SSL_CERT_FILE; a CA made for this run, its key already gone)");
            await stdout.WriteLineAsync($"                     {LlmKeyFile}, {CrmSecretFile}, {ToolsSecretFile} in {directory.FullName} (owner-only; never for the agent)");
            await stdout.WriteLineAsync($"  the agent          client '{SandboxCommand.AgentId}', demo secret '{SandboxCommand.AgentSecret}'; operator '{SandboxCommand.Operator}', '{SandboxCommand.OperatorSecret}'");
            await stdout.WriteLineAsync($"  an agent token     curl -s --cacert ca.pem {listener.BaseUrl(port).Replace(host, "localhost", StringComparison.Ordinal)}token -d grant_type=client_credentials -d client_id={SandboxCommand.AgentId} -d client_secret={SandboxCommand.AgentSecret}");
            await stdout.WriteLineAsync("Ready; serving until Ctrl+C or SIGTERM.");
            await stdout.FlushAsync();
            await SandboxCommand.UntilStoppedAsync();
        }

        return SandboxCommand.Ok;
    }

    /// <summary>Secrets are readable by this user only — the gateways run as the same user.</summary>
    private static void WriteOwnerOnly(string path, string secret)
    {
        File.Delete(path);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using var file = new FileStream(path, options);
        file.Write(System.Text.Encoding.UTF8.GetBytes(secret));
    }
}
