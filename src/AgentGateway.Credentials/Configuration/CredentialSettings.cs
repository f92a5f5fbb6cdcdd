namespace AgentGateway.Credentials.Configuration;

/// <summary><c>Kind: ApiKey</c>. The secret goes into <see cref="Header"/>, formatted by
/// <see cref="Format"/> where <c>{secret}</c> stands for the key.</summary>
public sealed record ApiKeySettings
{
    public string? Kind { get; init; }

    public string Header { get; init; } = "Authorization";

    public string Format { get; init; } = "Bearer {secret}";

    public string? Secret { get; init; }
}

/// <summary>What every OAuth kind shares: the gateway's client identity and authentication, the
/// token's scopes, and how the token is injected and cached.</summary>
public abstract record OAuthCommonSettings
{
    public string? Kind { get; init; }

    public string? ClientId { get; init; }

    /// <summary>Secret reference to the client secret (<c>PostBody</c>, <c>BasicAuthentication</c>).</summary>
    public string? ClientSecret { get; init; }

    /// <summary><c>PostBody</c> (client_secret_post, the default), <c>BasicAuthentication</c>
    /// (client_secret_basic) or <c>PrivateKeyJwt</c> (RFC 7523 assertions signed with <see cref="PrivateKey"/>).</summary>
    public string ClientAuthentication { get; init; } = "PostBody";

    /// <summary>Secret reference to the PEM private key (RSA or EC) that signs <c>PrivateKeyJwt</c> assertions.</summary>
    public string? PrivateKey { get; init; }

    /// <summary>The assertions' <c>kid</c>; by default the key's RFC 7638 thumbprint.</summary>
    public string? PrivateKeyId { get; init; }

    /// <summary>The assertions' algorithm; by default RS256 for RSA keys, ES256/384/512 by curve for EC keys.</summary>
    public string? SigningAlgorithm { get; init; }

    /// <summary>The assertions' <c>aud</c>; by default the token endpoint URL (some issuers want their issuer URL).</summary>
    public string? AssertionAudience { get; init; }

    public string[] Scopes { get; init; } = [];

    /// <summary>The header the token goes into, as <c>Bearer {token}</c>.</summary>
    public string Header { get; init; } = "Authorization";

    /// <summary>How long before the token's expiry it stops being served from cache.</summary>
    public TimeSpan RefreshBeforeExpiry { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>How long the token endpoint may take before the request fails with 503.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(10);
}

/// <summary>The OAuth kinds with a configured token endpoint.</summary>
public abstract record OAuthClientSettings : OAuthCommonSettings
{
    public string? TokenEndpoint { get; init; }

    /// <summary>RFC 8707 resource indicators: the audience the token is for.</summary>
    public string[] Resources { get; init; } = [];
}

/// <summary><c>Kind: McpOAuth</c>: a token for one MCP server, from the authorization server its
/// protected-resource metadata (RFC 9728) names — if that server is on <see cref="AuthorizationServers"/>
/// — requested with the server as RFC 8707 <c>resource</c>.</summary>
public sealed record McpOAuthSettings : OAuthCommonSettings
{
    /// <summary>The MCP server's resource identifier, e.g. <c>https://tools.example.com/mcp</c>.</summary>
    public string? Resource { get; init; }

    /// <summary>Where its metadata is, if not at the RFC 9728 well-known location.</summary>
    public string? ResourceMetadata { get; init; }

    /// <summary>The authorization servers (issuer identifiers) the gateway will send its client
    /// credentials to. Metadata naming any other is refused: a tool server must not be able to
    /// point the gateway's secret at a server of its choosing.</summary>
    public string[] AuthorizationServers { get; init; } = [];

    /// <summary>How long discovered metadata is reused before it is fetched again.</summary>
    public TimeSpan DiscoveryInterval { get; init; } = TimeSpan.FromHours(1);
}

/// <summary><c>Kind: OAuthClientCredentials</c>: a token from <c>TokenEndpoint</c> for the
/// gateway's client, shared by every agent that uses the hop.</summary>
public sealed record OAuthClientCredentialsSettings : OAuthClientSettings;

/// <summary><c>Kind: OAuthTokenExchange</c>: an RFC 8693 on-behalf-of token for the user the
/// agent acts for (the request's delegation), naming the agent as actor.</summary>
public sealed record OAuthTokenExchangeSettings : OAuthClientSettings
{
    /// <summary>RFC 8693 <c>audience</c>: the logical name of the target service, if the issuer wants one.</summary>
    public string? Audience { get; init; }

    /// <summary>Send the agent's own token as <c>actor_token</c> (default), so the issued token names the agent.</summary>
    public bool SendActorToken { get; init; } = true;
}

/// <summary><c>Kind: ManagedIdentity</c>: the gateway's own cloud identity. Endpoints are found the
/// way each cloud's SDK finds them (and overridden the way the SDK allows: for Azure
/// <c>AZURE_POD_IDENTITY_AUTHORITY_HOST</c>, for GCP <c>GCE_METADATA_HOST</c>).</summary>
public sealed record ManagedIdentitySettings
{
    public string? Kind { get; init; }

    /// <summary><c>Azure</c> or <c>Gcp</c>.</summary>
    public string? Provider { get; init; }

    /// <summary>Azure: a user-assigned identity's client id; absent for the system-assigned identity.</summary>
    public string? ClientId { get; init; }

    /// <summary>Azure: exactly one, the resource's <c>.default</c> scope (e.g. <c>https://database.windows.net/.default</c>).
    /// GCP: OAuth scopes, or none for the instance's defaults.</summary>
    public string[] Scopes { get; init; } = [];

    public string Header { get; init; } = "Authorization";

    public TimeSpan RefreshBeforeExpiry { get; init; } = TimeSpan.FromMinutes(5);

    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(10);
}

/// <summary><c>Kind: MtlsClientCertificate</c>: the certificate a cluster's connections present.</summary>
public sealed record MtlsClientCertificateSettings
{
    public string? Kind { get; init; }

    /// <summary>Secret reference to the PEM certificate, leaf first (e.g. <c>file:/run/secrets/tls.crt</c>).</summary>
    public string? Certificate { get; init; }

    /// <summary>Secret reference to the PEM private key (e.g. <c>file:/run/secrets/tls.key</c>).</summary>
    public string? PrivateKey { get; init; }

    /// <summary>Secret reference to PEM CA certificates: when set, the upstream's server certificate
    /// must chain to one of them (and nothing else is trusted).</summary>
    public string? ServerCertificateAuthority { get; init; }

    /// <summary>How often the files are checked for rotation; a rotated pair is used for new connections.</summary>
    public TimeSpan ReloadInterval { get; init; } = TimeSpan.FromMinutes(1);
}

/// <summary><c>Gateway:Cache</c>: how hop tokens are protected in the cache every replica shares.</summary>
public sealed record CacheSettings
{
    /// <summary>Secret reference to 32 random bytes, base64-encoded: the AES-256-GCM key that seals
    /// every token written to Redis. Required when <c>Gateway:Redis</c> is set.</summary>
    public string? EncryptionKey { get; init; }

    /// <summary>Secret references to keys being rotated out: entries sealed with them still open
    /// (until they expire), new entries use <see cref="EncryptionKey"/>.</summary>
    public string[] PreviousEncryptionKeys { get; init; } = [];

    /// <summary>No hop token is kept longer than this, whatever its issuer grants (default one hour).</summary>
    public TimeSpan MaxTokenLifetime { get; init; } = TimeSpan.FromHours(1);
}
