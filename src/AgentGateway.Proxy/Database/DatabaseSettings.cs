using AgentGateway.Configuration;

namespace AgentGateway.Proxy.Database;

// The shape of `Gateway:Databases` and of a grant's `Databases`, as operators write them. Bound,
// then validated and compiled by DatabaseCompiler into a DatabaseCatalog; nothing on the
// connection path reads these records.

/// <summary><c>Gateway:Databases:{name}</c>: one PostgreSQL database agents reach through the gateway,
/// on a listener of its own. Agents name it as their <c>database</c>.</summary>
public sealed record DatabaseSettings
{
    /// <summary>Where the gateway listens for agents, <c>address:port</c> (e.g. <c>0.0.0.0:6432</c>).
    /// Fixed for the process: a reload that changes it is refused.</summary>
    [Setting("address:port the gateway listens on for agents (e.g. 0.0.0.0:6432). Fixed for the process.", Required = true, Pattern = @"^(\[[0-9A-Fa-f:.]+\]|[0-9.]+):[0-9]{1,5}$")]
    public string? Listen { get; init; }

    /// <summary>TLS toward agents. Required unless <see cref="Listen"/> is a loopback address: agents
    /// send their access token as the password.</summary>
    public DatabaseTlsSettings? Tls { get; init; }

    /// <summary>The PostgreSQL server the gateway logs in to.</summary>
    [Setting(Required = true)]
    public UpstreamDatabaseSettings Upstream { get; init; } = new();

    /// <summary>The longest a session lasts, whatever the agent's proof allows (it never lasts longer
    /// than the agent's token or certificate).</summary>
    [Setting("The longest a session lasts; never longer than the agent's token or certificate. Default 01:00:00.")]
    public TimeSpan MaxSessionLifetime { get; init; } = TimeSpan.FromHours(1);

    /// <summary>How long an agent has from connecting to being logged in; then the socket closes.</summary>
    [Setting("How long an agent has to log in. Default 00:00:10.")]
    public TimeSpan AuthenticationTimeout { get; init; } = TimeSpan.FromSeconds(10);
}

/// <summary><c>Databases:{name}:Tls</c>: the certificate the gateway presents to agents.</summary>
[Setting("TLS toward agents (after their SSLRequest). Required unless Listen is loopback: agents send their token as the password.")]
public sealed record DatabaseTlsSettings
{
    /// <summary>Secret reference to the PEM certificate (leaf first, then intermediates).</summary>
    [Setting(Required = true, Format = SettingFormat.SecretReference)]
    public string? Certificate { get; init; }

    /// <summary>Secret reference to its PEM private key.</summary>
    [Setting(Required = true, Format = SettingFormat.SecretReference)]
    public string? PrivateKey { get; init; }
}

/// <summary>How the gateway's connection to the upstream is protected.</summary>
public enum UpstreamTlsMode
{
    /// <summary>TLS, the server's certificate chained to <c>CertificateAuthority</c> and naming <c>Host</c>
    /// (libpq's <c>sslmode=verify-full</c>).</summary>
    VerifyFull,

    /// <summary>No TLS: only to a loopback upstream (a database on the same host).</summary>
    Disable,
}

/// <summary><c>Databases:{name}:Upstream</c>.</summary>
public sealed record UpstreamDatabaseSettings
{
    [Setting(Required = true)]
    public string? Host { get; init; }

    [Setting(Minimum = 1, Maximum = 65535)]
    public int Port { get; init; } = 5432;

    /// <summary>The database name on the server.</summary>
    [Setting("The database's name on the server.", Required = true)]
    public string? Database { get; init; }

    [Setting("VerifyFull: the server's certificate chains to CertificateAuthority (and nothing else) and names Host. Disable: loopback hosts only.")]
    public UpstreamTlsMode Tls { get; init; } = UpstreamTlsMode.VerifyFull;

    /// <summary>Secret reference to the PEM CA certificates the server's certificate must chain to
    /// (and to nothing else). Required with <c>VerifyFull</c>.</summary>
    [Setting(Format = SettingFormat.SecretReference)]
    public string? CertificateAuthority { get; init; }

    /// <summary>Answer a server that asks for the password as MD5 or in clear. Off by default, and
    /// then only SCRAM-SHA-256 is answered, except by a loopback server. Azure Database for
    /// PostgreSQL with Entra ID asks for the token in clear (over TLS): set this for it.</summary>
    [Setting("Answer a server that asks for the password as MD5 or in clear (Azure Database for PostgreSQL with Entra ID asks for the token in clear, over TLS). Loopback servers are always answered.")]
    public bool AllowWeakPasswordAuthentication { get; init; }

    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);
}

/// <summary><c>Grants:{grant}:Databases:{database}</c>: the grant opens the database as
/// <see cref="Role"/>, and the gateway logs in with <see cref="Password"/> or with a token of
/// <see cref="Credential"/> as the password.</summary>
[Setting(Rule = """{"oneOf": [{"required": ["Password"]}, {"required": ["Credential"]}]}""")]
public sealed record DatabaseGrantSettings
{
    /// <summary>The upstream role the gateway logs in as; the agent names it as its <c>user</c>.</summary>
    [Setting("The upstream role the gateway logs in as; agents name it as their 'user'.", Required = true)]
    public string? Role { get; init; }

    /// <summary>Secret reference to the role's password.</summary>
    [Setting(Format = SettingFormat.SecretReference)]
    public string? Password { get; init; }

    /// <summary>A <c>Gateway:Credentials</c> entry whose token is the password: <c>ManagedIdentity</c>
    /// (Azure Database for PostgreSQL with Entra ID), <c>OAuthClientCredentials</c> or <c>McpOAuth</c>.</summary>
    [Setting("A ManagedIdentity, OAuthClientCredentials or McpOAuth credential whose token is the password.")]
    public string? Credential { get; init; }
}
