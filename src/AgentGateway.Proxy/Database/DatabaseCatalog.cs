using System.Collections.Frozen;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using AgentGateway.Credentials;
using AgentGateway.Credentials.Secrets;
using AgentGateway.Proxy.Identity;
using AgentGateway.Proxy.Policy;

namespace AgentGateway.Proxy.Database;

/// <summary>A database entry, compiled: where agents connect and what the gateway logs in to.</summary>
/// <param name="Name">The entry's name: the <c>database</c> agents ask for.</param>
/// <param name="Listen">The listener's address (fixed for the process).</param>
/// <param name="Certificate">The certificate (with its key) presented to agents; null: no TLS toward agents.</param>
public sealed record DatabaseEntry(
    string Name,
    IPEndPoint Listen,
    X509Certificate2? Certificate,
    UpstreamDatabase Upstream,
    TimeSpan MaxSessionLifetime,
    TimeSpan AuthenticationTimeout);

/// <summary>The PostgreSQL server behind an entry.</summary>
/// <param name="Roots">The CAs its certificate must chain to; null when TLS is off (loopback only).</param>
/// <param name="Loopback">Whether <see cref="Host"/> is a loopback address.</param>
public sealed record UpstreamDatabase(
    string Host,
    int Port,
    string Database,
    X509Certificate2Collection? Roots,
    bool AllowWeakPasswordAuthentication,
    bool Loopback,
    TimeSpan ConnectTimeout)
{
    public bool Tls => Roots is not null;
}

/// <summary>How the gateway logs in for a grant: a password it holds, or a token of a broker credential.</summary>
public abstract record DatabaseLogin
{
    /// <summary>What telemetry calls the credential (its name, or <c>password</c>).</summary>
    public abstract string CredentialName { get; }
}

/// <summary>A role's password from a secret reference, fingerprinted once at load.</summary>
public sealed record PasswordLogin(SecretValue Password, string Fingerprint) : DatabaseLogin
{
    public const string Kind = "Password";

    public override string CredentialName => "password";
}

/// <summary>A token of a broker credential (managed identity, OAuth) used as the password; it comes
/// from the broker's sealed cache like every hop token.</summary>
public sealed record TokenLogin(ICredentialSource Source) : DatabaseLogin
{
    public override string CredentialName => Source.Name;
}

/// <summary>One grant's opening of one database: as which role, logged in how.</summary>
public sealed record DatabaseGrant(Grant Grant, string Database, string Role, DatabaseLogin Login);

/// <summary>Everything <c>Gateway:Databases</c> and the grants' <c>Databases</c> compile to.</summary>
public sealed class DatabaseCatalog(FrozenDictionary<string, DatabaseEntry> entries, FrozenDictionary<string, IReadOnlyList<DatabaseGrant>> byGrant)
{
    private readonly FrozenDictionary<string, DatabaseEntry> _entries = entries;

    public static DatabaseCatalog Empty { get; } = new(FrozenDictionary<string, DatabaseEntry>.Empty, FrozenDictionary<string, IReadOnlyList<DatabaseGrant>>.Empty);

    public IReadOnlyCollection<DatabaseEntry> Entries => _entries.Values;

    public bool TryGet(string name, out DatabaseEntry? entry) => _entries.TryGetValue(name, out entry);

    /// <summary>The first of <paramref name="agent"/>'s grants (in the agent's order) that opens
    /// <paramref name="database"/> as <paramref name="role"/> and whose hours hold at
    /// <paramref name="now"/>; null when none does. Names are compared exactly, as PostgreSQL does.</summary>
    public DatabaseGrant? Decide(Agent agent, string database, string role, DateTimeOffset now)
    {
        foreach (var grantName in agent.Grants)
        {
            if (!byGrant.TryGetValue(grantName, out var openings))
            {
                continue;
            }

            foreach (var opening in openings)
            {
                if (string.Equals(opening.Database, database, StringComparison.Ordinal)
                    && string.Equals(opening.Role, role, StringComparison.Ordinal)
                    && (opening.Grant.Hours is not { } hours || hours.Any(w => w.Contains(now))))
                {
                    return opening;
                }
            }
        }

        return null;
    }

    /// <summary>Whether some grant of <paramref name="agent"/> opens <paramref name="database"/> as
    /// <paramref name="role"/> at all (to tell "outside hours" from "no grant").</summary>
    public bool Opens(Agent agent, string database, string role) =>
        agent.Grants.Any(g => byGrant.TryGetValue(g, out var openings)
            && openings.Any(o => string.Equals(o.Database, database, StringComparison.Ordinal) && string.Equals(o.Role, role, StringComparison.Ordinal)));

    /// <summary>Whether <paramref name="other"/> listens where this catalog does (listeners are fixed for the process).</summary>
    public bool SameListeners(DatabaseCatalog other) =>
        _entries.Count == other._entries.Count
        && _entries.All(e => other._entries.TryGetValue(e.Key, out var o) && o.Listen.Equals(e.Value.Listen));
}
