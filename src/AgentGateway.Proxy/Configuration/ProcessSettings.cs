using AgentGateway.Configuration;
using Microsoft.Extensions.Configuration;

namespace AgentGateway.Proxy.Configuration;

/// <summary>
/// The settings fixed for the life of the process: what connects, listens or opens a file when it
/// starts. Read by this one reader — at registration for the running process, and with every
/// revision — so no feature reads them raw. The first revision validates them before anything
/// starts; a reload that changes one is refused with the setting's path ("needs a restart") and
/// the running value kept.
/// </summary>
public sealed record ProcessSettings
{
    /// <summary><c>Gateway:Redis</c>: the connection shared by every replica, or null for none.</summary>
    public string? Redis { get; init; }

    /// <summary><c>Gateway:Audit:Path</c>: the audit file, or null for none.</summary>
    public string? AuditPath { get; init; }

    /// <summary><c>Gateway:Audit:Key</c>: the secret reference to the chain's HMAC key, or null.</summary>
    public string? AuditKey { get; init; }

    /// <summary><c>Gateway:Admin:Urls</c>: where the admin API listens, or null for no admin API.</summary>
    public string? AdminUrls { get; init; }

    /// <summary><c>Gateway:Admin:RevocationsFile</c>: where revocations persist without Redis.</summary>
    public string? RevocationsFile { get; init; }

    /// <summary>Kestrel's https endpoints ask agents for a client certificate
    /// (<c>Gateway:Inbound:ClientCertificates</c> or <c>Gateway:Inbound:Spiffe:X509Bundle</c> set).</summary>
    public bool ClientCertificates { get; init; }

    public static ProcessSettings Read(IConfiguration configuration) => new()
    {
        Redis = NullIfBlank(configuration["Gateway:Redis"]),
        AuditPath = NullIfBlank(configuration["Gateway:Audit:Path"]),
        AuditKey = NullIfBlank(configuration["Gateway:Audit:Key"]),
        AdminUrls = NullIfBlank(configuration["Gateway:Admin:Urls"]),
        RevocationsFile = NullIfBlank(configuration["Gateway:Admin:RevocationsFile"]),
        ClientCertificates = configuration.GetSection("Gateway:Inbound:ClientCertificates").Exists() || configuration["Gateway:Inbound:Spiffe:X509Bundle"] is not null,
    };

    /// <summary>Every setting a new revision would change, as a problem with its path: the running
    /// process keeps what it started with.</summary>
    public IEnumerable<ConfigProblem> ChangesFrom(ProcessSettings running)
    {
        if (!string.Equals(Redis, running.Redis, StringComparison.Ordinal))
        {
            yield return new ConfigProblem("Gateway:Redis", "changing the Redis connection needs a restart; the running connection is kept");
        }

        if (!string.Equals(AuditPath, running.AuditPath, StringComparison.Ordinal))
        {
            yield return new ConfigProblem("Gateway:Audit:Path", "changing the audit file needs a restart; the running audit log is kept");
        }

        if (!string.Equals(AuditKey, running.AuditKey, StringComparison.Ordinal))
        {
            yield return new ConfigProblem("Gateway:Audit:Key", "changing the audit key needs a restart; the running audit log keeps its key");
        }

        if (!string.Equals(AdminUrls, running.AdminUrls, StringComparison.Ordinal))
        {
            yield return new ConfigProblem("Gateway:Admin:Urls", "changing where the admin API listens needs a restart; the running listener is kept");
        }

        if (!string.Equals(RevocationsFile, running.RevocationsFile, StringComparison.Ordinal))
        {
            yield return new ConfigProblem("Gateway:Admin:RevocationsFile", "changing the revocations file needs a restart; the running file is kept");
        }

        if (ClientCertificates != running.ClientCertificates)
        {
            yield return new ConfigProblem("Gateway:Inbound:ClientCertificates", "asking agents for client certificates, or no longer asking, needs a restart; the listeners keep their TLS settings");
        }
    }

    private static string? NullIfBlank(string? value) => string.IsNullOrWhiteSpace(value) ? null : value;
}
