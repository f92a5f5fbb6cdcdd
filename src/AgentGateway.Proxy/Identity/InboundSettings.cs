using AgentGateway.Configuration;

namespace AgentGateway.Proxy.Identity;

// These records are bound from configuration and then validated and compiled into a
// GatewayRevision; nothing on the request path reads them directly. No array here has a non-empty
// default: the configuration binder appends to an existing array, so a default of [A, B] plus an
// operator's [C] would silently allow A, B and C. Defaults for lists are applied when compiled.

/// <summary><c>Gateway:Inbound</c>: how agents prove who they are.</summary>
public sealed record InboundSettings
{
    /// <summary>Tolerance for clock differences with issuers. The identity library's default (5 min) is too wide.</summary>
    [Setting("At most 00:05:00.")]
    public TimeSpan ClockSkew { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Longer Authorization values are refused before any parsing.</summary>
    [Setting(Minimum = 512, Maximum = 262144)]
    public int MaxTokenBytes { get; init; } = 16 * 1024;

    /// <summary>Agent tokens that live longer than this (exp − iat) are refused: minutes, not days.</summary>
    [Setting("Agent and operator tokens living longer (exp − iat) get 401 token-lifetime-too-long.")]
    public TimeSpan MaxTokenLifetime { get; init; } = TimeSpan.FromHours(1);

    /// <summary>The origins agents reach the gateway at (e.g. <c>https://gateway.example.com</c>), which
    /// a DPoP proof's <c>htu</c> must name. Absent: the listener's own scheme, address and port.</summary>
    [Setting("Origins agents reach the gateway at (scheme, host, port: e.g. https://gateway.example.com), which a DPoP proof's htu must name, and the only host the gateway forwards as the original one (X-Forwarded-Host, Forwarded host=, RequestHeaderOriginalHost): the entry the agent's Host names, else the only entry, else none. Absent: the listener's own scheme, local address and port (and localhost on loopback); set it behind a load balancer or TLS terminator.", Pattern = @"^[Hh][Tt][Tt][Pp][Ss]?://[^/?#@]+/?$")]
    public string[] PublicOrigins { get; init; } = [];

    /// <summary>Trusted issuers of agent access tokens, by a name agents' identities refer to.</summary>
    public Dictionary<string, IssuerSettings> Issuers { get; init; } = [];

    /// <summary>How an agent shows which user it acts for (on-behalf-of hops).</summary>
    public DelegationSettings Delegation { get; init; } = new();

    /// <summary>Agents that authenticate with a client certificate from a CA of their own (mTLS).</summary>
    public ClientCertificateSettings? ClientCertificates { get; init; }

    /// <summary>SPIFFE identities: X509-SVIDs on the TLS connection, JWT-SVIDs as bearer tokens.</summary>
    public SpiffeSettings? Spiffe { get; init; }

    /// <summary>Static API keys: a development switch, off unless enabled.</summary>
    public StaticKeySettings StaticKeys { get; init; } = new();
}

/// <summary><c>Gateway:Inbound:ClientCertificates</c>. Needs an https listener (Kestrel endpoint);
/// the gateway asks for a client certificate there and checks it itself.</summary>
[Setting("Agents authenticating with a client certificate on an https Kestrel endpoint (mTLS); mapped by CertificateThumbprint or CertificateSan identities.")]
public sealed record ClientCertificateSettings
{
    /// <summary>Secret reference to the PEM CAs agents' certificates chain to; nothing else is trusted.</summary>
    [Setting("PEM CAs agents' certificates chain to; the system store is never used.", Required = true, Format = SettingFormat.SecretReference)]
    public string? TrustBundle { get; init; }
}

/// <summary><c>Gateway:Inbound:Spiffe</c>: one trust domain and its bundle.</summary>
[Setting("SPIFFE identities: X509-SVIDs on the TLS connection, JWT-SVIDs as bearer tokens; mapped by Spiffe identities.")]
public sealed record SpiffeSettings
{
    /// <summary>e.g. <c>example.org</c>: only SPIFFE IDs in it are accepted.</summary>
    [Setting(Required = true, Pattern = @"^[a-z0-9._-]+$")]
    public string? TrustDomain { get; init; }

    /// <summary>Secret reference to the PEM X.509 roots of the trust domain (X509-SVIDs).</summary>
    [Setting("PEM roots of the trust domain.", Format = SettingFormat.SecretReference)]
    public string? X509Bundle { get; init; }

    /// <summary>Secret reference to a JWKS with the trust domain's JWT-SVID keys.</summary>
    [Setting("A JWKS with the trust domain's JWT-SVID keys.", Format = SettingFormat.SecretReference)]
    public string? JwtBundle { get; init; }

    /// <summary>Accepted <c>aud</c> values of JWT-SVIDs; one naming any other audience is refused.</summary>
    [Setting("Accepted aud of JWT-SVIDs; required with JwtBundle. A JWT-SVID naming any other audience is refused.")]
    public string[] Audiences { get; init; } = [];
}

/// <summary><c>Gateway:Inbound:StaticKeys</c>: long-lived shared keys, for development only. Stored
/// as SHA-256 hashes in agents' identities, compared in constant time; the gateway warns at every
/// start and the inventory marks such agents weak.</summary>
[Setting("Development only: long-lived keys, stored as SHA-256 (StaticKeySha256 identities), compared in constant time; the gateway warns at every start and marks such agents weak.")]
public sealed record StaticKeySettings
{
    public bool Enabled { get; init; }

    /// <summary>The request header carrying the key (stripped before forwarding).</summary>
    [Setting(Format = SettingFormat.HeaderName)]
    public string Header { get; init; } = "X-Agent-Key";
}

/// <summary><c>Gateway:Inbound:Delegation</c>: an agent acting for a user sends the user's access
/// token in <see cref="Header"/>; the gateway verifies it and exchanges it (RFC 8693) on hops whose
/// credential is <c>OAuthTokenExchange</c>.</summary>
[Setting("How an agent names the user it acts for: the user's access token in Header, verified and exchanged (RFC 8693) on OAuthTokenExchange hops.")]
public sealed record DelegationSettings
{
    /// <summary>The request header carrying the user's access token (the raw JWT, no scheme).</summary>
    [Setting("Carries the user's access token (raw JWT). Always stripped before forwarding. Not Authorization.", Format = SettingFormat.HeaderName)]
    public string Header { get; init; } = "Subject-Token";

    /// <summary>Names of <c>Gateway:Inbound:Issuers</c> whose tokens are accepted as users' tokens.
    /// Empty (the default): delegation is off and requests that carry the header are refused.</summary>
    [Setting("Names of Inbound:Issuers whose tokens are accepted as users' tokens. Empty (default): delegation off.")]
    public string[] Issuers { get; init; } = [];

    /// <summary>The user's token must have been issued to the agent itself: its <c>azp</c> (or
    /// <c>client_id</c>) equals the agent's identity at the same issuer.</summary>
    [Setting("The user's token must have been issued to the agent itself (azp or client_id equals the agent's identity).")]
    public bool RequireAuthorizedParty { get; init; } = true;
}

/// <summary><c>Gateway:Inbound:Issuers:{name}</c>: one OAuth 2.1 issuer of agent access tokens.</summary>
[Setting(Rule = """{"oneOf": [{"required": ["Authority"]}, {"required": ["Issuer", "JwksUri"]}]}""")]
public sealed record IssuerSettings
{
    /// <summary>OIDC discovery: keys come from <c>{Authority}/.well-known/openid-configuration</c>.</summary>
    [Setting("OIDC discovery base. https, except loopback.", Format = SettingFormat.Uri)]
    public string? Authority { get; init; }

    /// <summary>The exact <c>iss</c> value. Defaults to <see cref="Authority"/>; required with <see cref="JwksUri"/>.</summary>
    [Setting("Exact iss value. Defaults to Authority; required with JwksUri.")]
    public string? Issuer { get; init; }

    /// <summary>Keys straight from a JWKS document, without discovery.</summary>
    [Setting(Format = SettingFormat.Uri)]
    public string? JwksUri { get; init; }

    /// <summary>Accepted <c>aud</c> values. Every audience a token names must be one of these.</summary>
    [Setting(Required = true, MinItems = 1, MinLength = 1)]
    public string[] Audiences { get; init; } = [];

    /// <summary>The claim whose value identifies the agent in the inventory.</summary>
    public string AgentClaim { get; init; } = "sub";

    /// <summary>Accepted signature algorithms; asymmetric only. Default: RS256, PS256, ES256.</summary>
    [Setting("Default: RS256, PS256, ES256.", AllowedValues = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"], MinItems = 1)]
    public string[]? Algorithms { get; init; }

    /// <summary>Accepted JOSE <c>typ</c> values. Default: <c>at+jwt</c> (RFC 9068); an ID token is not an access token.</summary>
    [Setting("Default: at+jwt.", MinItems = 1)]
    public string[]? TokenTypes { get; init; }

    /// <summary>Tokens of this issuer must be DPoP-bound (RFC 9449) and come with a proof.</summary>
    [Setting("Tokens of this issuer must be DPoP-bound (cnf.jkt) and sent as 'Authorization: DPoP' with a proof (RFC 9449).")]
    public bool RequireDpop { get; init; }

    /// <summary>Minimum time between key refreshes caused by an unknown <c>kid</c> (throttles unknown-kid floods).</summary>
    public TimeSpan KeyRefreshInterval { get; init; } = TimeSpan.FromMinutes(1);
}
