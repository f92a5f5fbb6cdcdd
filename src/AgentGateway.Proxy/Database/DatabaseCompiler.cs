using System.Collections.Frozen;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using AgentGateway.Configuration;
using AgentGateway.Credentials;
using AgentGateway.Credentials.Secrets;
using AgentGateway.Proxy.Policy;
using Microsoft.Extensions.Configuration;

namespace AgentGateway.Proxy.Database;

/// <summary>
/// Compiles <c>Gateway:Databases</c> and the <c>Databases</c> of each grant, listing every problem
/// with its path: a listener off loopback without TLS (agents send their token as the password),
/// an upstream without verified TLS off loopback, a grant naming a database, credential or role
/// that cannot work. Certificates, keys and passwords are read here, once per revision.
/// </summary>
internal static class DatabaseCompiler
{
    /// <summary>The credential kinds whose token can be a database password.</summary>
    private static readonly FrozenSet<CredentialKind> TokenKinds = FrozenSet.ToFrozenSet(
        [CredentialKind.ManagedIdentity, CredentialKind.OAuthClientCredentials, CredentialKind.McpOAuth]);

    /// <summary>PostgreSQL's NAMEDATALEN − 1: longer role names are truncated by the server, so two
    /// names the gateway tells apart could be one role there.</summary>
    private const int MaxRoleBytes = 63;

    public static DatabaseCatalog Compile(
        IConfigurationSection databases,
        IConfigurationSection grantsSection,
        IReadOnlyDictionary<string, Grant> grants,
        CredentialSet credentials,
        CredentialFingerprint fingerprint,
        TimeProvider time,
        ConfigProblems problems)
    {
        var entries = new Dictionary<string, DatabaseEntry>(StringComparer.Ordinal);
        var listeners = new Dictionary<IPEndPoint, string>();
        foreach (var section in databases.GetChildren())
        {
            if (ReadEntry(section, time, problems) is not { } entry)
            {
                continue;
            }

            if (entry.Listen.Port != 0 && !listeners.TryAdd(entry.Listen, entry.Name))
            {
                problems.Add(section.Path + ":Listen", $"database '{listeners[entry.Listen]}' already listens there");
                continue;
            }

            entries[entry.Name] = entry;
        }

        var byGrant = new Dictionary<string, IReadOnlyList<DatabaseGrant>>(StringComparer.OrdinalIgnoreCase);
        foreach (var grantSection in grantsSection.GetChildren())
        {
            var openings = grantSection.GetSection("Databases");
            if (!openings.Exists() || !grants.TryGetValue(grantSection.Key, out var grant))
            {
                continue;
            }

            if (grant.Shadow || grant.RequireDelegation || grant.RateLimit is not null)
            {
                // A database session carries neither a delegation nor per-request rates, and a shadow
                // grant must never open anything: said at load rather than silently not applied.
                problems.Add(grantSection.Path, "a grant that opens databases cannot be Shadow, RequireDelegation or RateLimit (they do not apply to database sessions)");
            }

            var list = new List<DatabaseGrant>();
            foreach (var opening in openings.GetChildren())
            {
                if (ReadOpening(opening, grant, entries, credentials, fingerprint, problems) is { } compiled)
                {
                    list.Add(compiled);
                }
            }

            byGrant[grant.Name] = list;
        }

        return new DatabaseCatalog(entries.ToFrozenDictionary(StringComparer.Ordinal), byGrant.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase));
    }

    private static DatabaseEntry? ReadEntry(IConfigurationSection section, TimeProvider time, ConfigProblems problems)
    {
        var path = section.Path;
        if (!CredentialName.IsValid(section.Key))
        {
            problems.Add(path, $"database name '{section.Key}' must be letters, digits, '-', '_' or '.'");
            return null;
        }

        var s = SectionReader.Read<DatabaseSettings>(section, problems);
        var before = problems.Items.Count;
        IPEndPoint? listen = null;
        if (string.IsNullOrWhiteSpace(s.Listen) || !IPEndPoint.TryParse(s.Listen, out listen) || !s.Listen.Contains(':', StringComparison.Ordinal))
        {
            problems.Add(path + ":Listen", "is required: an IP address and port, e.g. 127.0.0.1:6432 or 0.0.0.0:6432");
        }

        X509Certificate2? certificate = null;
        if (s.Tls is { } tls)
        {
            certificate = ReadCertificate(path + ":Tls", tls, time, problems);
        }
        else if (listen is not null && !IPAddress.IsLoopback(listen.Address))
        {
            problems.Add(path + ":Tls", "is required on a listener that is not loopback: agents send their access token as the password");
        }

        if (s.MaxSessionLifetime < TimeSpan.FromSeconds(1) || s.MaxSessionLifetime > TimeSpan.FromDays(1))
        {
            problems.Add(path + ":MaxSessionLifetime", "must be between 00:00:01 and 1.00:00:00");
        }

        if (s.AuthenticationTimeout < TimeSpan.FromSeconds(1) || s.AuthenticationTimeout > TimeSpan.FromMinutes(5))
        {
            problems.Add(path + ":AuthenticationTimeout", "must be between 00:00:01 and 00:05:00");
        }

        var upstream = ReadUpstream(path + ":Upstream", s.Upstream, problems);
        return problems.Items.Count > before || listen is null || upstream is null
            ? null
            : new DatabaseEntry(section.Key, listen, certificate, upstream, s.MaxSessionLifetime, s.AuthenticationTimeout);
    }

    private static UpstreamDatabase? ReadUpstream(string path, UpstreamDatabaseSettings s, ConfigProblems problems)
    {
        var before = problems.Items.Count;
        if (string.IsNullOrWhiteSpace(s.Host) || Uri.CheckHostName(s.Host) == UriHostNameType.Unknown)
        {
            problems.Add(path + ":Host", "is required: the server's host name or IP address");
        }

        if (s.Port is < 1 or > 65535)
        {
            problems.Add(path + ":Port", "must be between 1 and 65535");
        }

        if (string.IsNullOrEmpty(s.Database) || s.Database.Contains('\0', StringComparison.Ordinal) || Encoding.UTF8.GetByteCount(s.Database) > MaxRoleBytes)
        {
            problems.Add(path + ":Database", "is required: the database's name on the server (at most 63 bytes)");
        }

        if (s.ConnectTimeout < TimeSpan.FromSeconds(1) || s.ConnectTimeout > TimeSpan.FromMinutes(5))
        {
            problems.Add(path + ":ConnectTimeout", "must be between 00:00:01 and 00:05:00");
        }

        var loopback = s.Host is { } host && IsLoopback(host);
        X509Certificate2Collection? roots = null;
        if (s.Tls == UpstreamTlsMode.VerifyFull)
        {
            if (s.CertificateAuthority is null)
            {
                problems.Add(path + ":CertificateAuthority", "is required (a secret reference: env:NAME or file:PATH)");
            }
            else if (PemBundle.TryRead(path + ":CertificateAuthority", s.CertificateAuthority, problems, out var bundle))
            {
                roots = bundle;
            }
        }
        else if (!loopback)
        {
            problems.Add(path + ":Tls", "Disable is allowed only for a loopback Host: the hop credential would cross the network in clear");
        }
        else if (s.CertificateAuthority is not null)
        {
            problems.Add(path + ":CertificateAuthority", "is set, but Tls is Disable");
        }

        return problems.Items.Count > before
            ? null
            : new UpstreamDatabase(s.Host!, s.Port, s.Database!, roots, s.AllowWeakPasswordAuthentication, loopback, s.ConnectTimeout);
    }

    private static DatabaseGrant? ReadOpening(
        IConfigurationSection section,
        Grant grant,
        Dictionary<string, DatabaseEntry> entries,
        CredentialSet credentials,
        CredentialFingerprint fingerprint,
        ConfigProblems problems)
    {
        var path = section.Path;
        var s = SectionReader.Read<DatabaseGrantSettings>(section, problems);
        var before = problems.Items.Count;
        if (!entries.ContainsKey(section.Key))
        {
            problems.Add(path, $"names database '{section.Key}', which is not configured under Gateway:Databases (names are compared exactly)");
        }

        if (string.IsNullOrEmpty(s.Role) || s.Role.Contains('\0', StringComparison.Ordinal) || Encoding.UTF8.GetByteCount(s.Role) > MaxRoleBytes)
        {
            problems.Add(path + ":Role", "is required: the upstream role the gateway logs in as (at most 63 bytes)");
        }

        DatabaseLogin? login = null;
        if ((s.Password is null) == (s.Credential is null))
        {
            problems.Add(path, "set exactly one of Password (a secret reference) and Credential (a token credential)");
        }
        else if (s.Password is { } reference)
        {
            if (SecretResolver.TryRead(path + ":Password", reference, problems, out var password))
            {
                login = new PasswordLogin(password, fingerprint.Of(password.Reveal()));
            }
        }
        else if (!credentials.TryGet(s.Credential!, out var source))
        {
            problems.Add(path + ":Credential", $"names credential '{s.Credential}', which is not configured under Gateway:Credentials (or failed to load)");
        }
        else if (!TokenKinds.Contains(source!.Kind) || source.RequiresDelegation)
        {
            problems.Add(path + ":Credential", $"credential '{s.Credential}' is of kind {source.Kind}; a database login takes a token of kind {string.Join(", ", TokenKinds.Order())}");
        }
        else
        {
            login = new TokenLogin(source);
        }

        return problems.Items.Count > before || login is null ? null : new DatabaseGrant(grant, section.Key, s.Role!, login);
    }

    private static X509Certificate2? ReadCertificate(string path, DatabaseTlsSettings tls, TimeProvider time, ConfigProblems problems)
    {
        var certificate = Resolve(path + ":Certificate", tls.Certificate, problems);
        var key = Resolve(path + ":PrivateKey", tls.PrivateKey, problems);
        if (certificate is null || key is null)
        {
            return null;
        }

        try
        {
            var pem = X509Certificate2.CreateFromPem(certificate.Reveal(), key.Reveal());
            if (pem.NotAfter.ToUniversalTime() < time.GetUtcNow().UtcDateTime)
            {
                problems.Add(path + ":Certificate", "has expired");
            }

            return pem;
        }
        catch (CryptographicException)
        {
            problems.Add(path, "Certificate and PrivateKey must be a PEM certificate and its matching PEM private key");
            return null;
        }
    }

    private static SecretValue? Resolve(string path, string? reference, ConfigProblems problems)
    {
        if (reference is null)
        {
            problems.Add(path, "is required (a secret reference: env:NAME or file:PATH)");
            return null;
        }

        return SecretResolver.TryRead(path, reference, problems, out var value) ? value : null;
    }

    internal static bool IsLoopback(string host) =>
        string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase)
        || (IPAddress.TryParse(host, out var address) && IPAddress.IsLoopback(address));
}
