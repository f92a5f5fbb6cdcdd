using AgentGateway.Credentials.Secrets;

namespace AgentGateway.Credentials;

/// <summary>A validated credential from configuration: what to fetch and where its secret lives.
/// Built once per configuration revision.</summary>
public abstract record CredentialDefinition(string Name)
{
    public abstract CredentialKind Kind { get; }
}

public sealed record ApiKeyDefinition(string Name, string Header, string Format, SecretReference Secret)
    : CredentialDefinition(Name)
{
    public override CredentialKind Kind => CredentialKind.ApiKey;
}

/// <summary>The gateway as an OAuth client of one token endpoint.</summary>
public sealed record OAuthClient(
    Uri TokenEndpoint,
    string ClientId,
    ClientAuthentication Authentication,
    TimeSpan Timeout);

/// <summary>How the gateway proves to the token endpoint that it is the client. Either way the
/// material is a secret reference, resolved at load.</summary>
public abstract record ClientAuthentication(SecretReference Secret)
{
    /// <summary>The method's name in cache keys: a token obtained one way is not served for another.</summary>
    public abstract string Method { get; }
}

/// <summary>A shared client secret (RFC 6749 §2.3.1), in the body (<c>client_secret_post</c>) or
/// in a Basic authorization header (<c>client_secret_basic</c>).</summary>
public sealed record ClientSecretAuthentication(SecretReference Secret, ClientSecretStyle Style)
    : ClientAuthentication(Secret)
{
    public override string Method => Style == ClientSecretStyle.BasicAuthentication ? "client_secret_basic" : "client_secret_post";
}

/// <summary><c>private_key_jwt</c> (RFC 7523 §2.2): a short-lived assertion signed with the
/// client's private key, so no shared secret crosses the network or sits at the issuer.</summary>
/// <param name="Secret">Reference to the PEM-encoded private key (PKCS#8, RSA or EC).</param>
/// <param name="KeyId">The <c>kid</c> header; null means the key's RFC 7638 thumbprint.</param>
/// <param name="Algorithm">The JWS algorithm; null means the key's natural one (RS256, or ES256/384/512 by curve).</param>
/// <param name="Audience">The assertion's <c>aud</c>; null means the token endpoint URL.</param>
public sealed record PrivateKeyJwtAuthentication(SecretReference Secret, string? KeyId, string? Algorithm, string? Audience)
    : ClientAuthentication(Secret)
{
    public override string Method => "private_key_jwt";
}

public sealed record OAuthClientCredentialsDefinition(
    string Name,
    OAuthClient Client,
    IReadOnlyList<string> Scopes,
    IReadOnlyList<string> Resources,
    string Header,
    TimeSpan RefreshBeforeExpiry)
    : CredentialDefinition(Name)
{
    public override CredentialKind Kind => CredentialKind.OAuthClientCredentials;
}

/// <summary>An RFC 8693 token exchange: the delegating user's token in, a token for the hop out
/// that names the user (and, with <see cref="SendActorToken"/>, the agent as actor).</summary>
/// <param name="Audience">RFC 8693 <c>audience</c>: the logical name of the target service, if the issuer wants one.</param>
/// <param name="SendActorToken">Send the agent's own token as <c>actor_token</c>, so the issued token can name the agent.</param>
public sealed record OAuthTokenExchangeDefinition(
    string Name,
    OAuthClient Client,
    IReadOnlyList<string> Scopes,
    IReadOnlyList<string> Resources,
    string? Audience,
    bool SendActorToken,
    string Header,
    TimeSpan RefreshBeforeExpiry)
    : CredentialDefinition(Name)
{
    public override CredentialKind Kind => CredentialKind.OAuthTokenExchange;
}

/// <summary>A client certificate for mutual TLS to the upstream. It travels on the connection,
/// not in a header, so it is attached to a cluster (<c>Metadata:ClientCertificate</c>).</summary>
/// <param name="Certificate">Reference to the PEM certificate (leaf first).</param>
/// <param name="PrivateKey">Reference to its PEM private key.</param>
/// <param name="ServerCertificateAuthority">Reference to PEM CA certificates that alone are trusted
/// for the upstream's server certificate (private PKI); null means the system's trust store.</param>
/// <param name="ReloadInterval">How often the files are checked for rotation.</param>
public sealed record MtlsClientCertificateDefinition(
    string Name,
    SecretReference Certificate,
    SecretReference PrivateKey,
    SecretReference? ServerCertificateAuthority,
    TimeSpan ReloadInterval)
    : CredentialDefinition(Name)
{
    public override CredentialKind Kind => CredentialKind.MtlsClientCertificate;
}

/// <summary>A token for the gateway's own cloud identity, from the platform's metadata endpoint.</summary>
/// <param name="Provider">Which platform's identity.</param>
/// <param name="ClientId">Azure: a user-assigned identity's client id; null for the system-assigned one.</param>
/// <param name="Scopes">Azure: the resource's <c>.default</c> scope (exactly one); GCP: OAuth scopes (empty for the VM's defaults).</param>
public sealed record ManagedIdentityDefinition(
    string Name,
    ManagedIdentityProvider Provider,
    string? ClientId,
    IReadOnlyList<string> Scopes,
    string Header,
    TimeSpan RefreshBeforeExpiry,
    TimeSpan Timeout)
    : CredentialDefinition(Name)
{
    public override CredentialKind Kind => CredentialKind.ManagedIdentity;
}

public enum ManagedIdentityProvider
{
    /// <summary>Azure managed identity through Azure.Identity (IMDS, App Service, Arc, … as the SDK detects).</summary>
    Azure,

    /// <summary>A GCP service account through Google.Apis.Auth's compute credential (the metadata server).</summary>
    Gcp,
}

/// <summary>Client credentials for one MCP server, whose token endpoint is discovered, not configured.</summary>
/// <param name="Resource">The MCP server's resource identifier: the RFC 8707 <c>resource</c> and the
/// value its metadata must name.</param>
/// <param name="ResourceMetadata">Explicit metadata URL; null means the RFC 9728 well-known locations.</param>
/// <param name="AuthorizationServers">Issuer identifiers the gateway may authenticate to.</param>
public sealed record McpOAuthDefinition(
    string Name,
    Uri Resource,
    Uri? ResourceMetadata,
    IReadOnlyList<Uri> AuthorizationServers,
    string ClientId,
    ClientAuthentication Authentication,
    TimeSpan Timeout,
    IReadOnlyList<string> Scopes,
    string Header,
    TimeSpan RefreshBeforeExpiry,
    TimeSpan DiscoveryInterval)
    : CredentialDefinition(Name)
{
    public override CredentialKind Kind => CredentialKind.McpOAuth;

    /// <summary>The client as it authenticates at a discovered <paramref name="tokenEndpoint"/>.</summary>
    public OAuthClient ClientAt(Uri tokenEndpoint) => new(tokenEndpoint, ClientId, Authentication, Timeout);
}

public enum ClientSecretStyle
{
    PostBody,
    BasicAuthentication,
}
