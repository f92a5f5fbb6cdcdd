namespace AgentGateway.Proxy.Configuration;

// The shape of the `Gateway` configuration section, as operators write it. These records are
// bound from configuration and then validated and compiled into a GatewayRevision; nothing
// on the request path reads them directly.
//
// No array here has a non-empty default: the configuration binder appends to an existing
// array, so a default of [A, B] plus an operator's [C] would silently allow A, B and C.
// Defaults for lists are applied by the loader when the key is absent.

/// <summary><c>Gateway:Inbound</c>: how agents prove who they are.</summary>
public sealed record InboundSettings
{
    /// <summary>Tolerance for clock differences with issuers. The identity library's default (5 min) is too wide.</summary>
    public TimeSpan ClockSkew { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Longer Authorization values are refused before any parsing.</summary>
    public int MaxTokenBytes { get; init; } = 16 * 1024;

    /// <summary>Agent tokens that live longer than this (exp − iat) are refused: minutes, not days.</summary>
    public TimeSpan MaxTokenLifetime { get; init; } = TimeSpan.FromHours(1);

    /// <summary>The origins agents reach the gateway at (e.g. <c>https://gateway.example.com</c>), which
    /// a DPoP proof's <c>htu</c> must name. Absent: the listener's own scheme, address and port.</summary>
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
public sealed record ClientCertificateSettings
{
    /// <summary>Secret reference to the PEM CAs agents' certificates chain to; nothing else is trusted.</summary>
    public string? TrustBundle { get; init; }
}

/// <summary><c>Gateway:Inbound:Spiffe</c>: one trust domain and its bundle.</summary>
public sealed record SpiffeSettings
{
    /// <summary>e.g. <c>example.org</c>: only SPIFFE IDs in it are accepted.</summary>
    public string? TrustDomain { get; init; }

    /// <summary>Secret reference to the PEM X.509 roots of the trust domain (X509-SVIDs).</summary>
    public string? X509Bundle { get; init; }

    /// <summary>Secret reference to a JWKS with the trust domain's JWT-SVID keys.</summary>
    public string? JwtBundle { get; init; }

    /// <summary>Accepted <c>aud</c> values of JWT-SVIDs.</summary>
    public string[] Audiences { get; init; } = [];
}

/// <summary><c>Gateway:Inbound:StaticKeys</c>: long-lived shared keys, for development only. Stored
/// as SHA-256 hashes in agents' identities, compared in constant time; the gateway warns at every
/// start and the inventory marks such agents weak.</summary>
public sealed record StaticKeySettings
{
    public bool Enabled { get; init; }

    /// <summary>The request header carrying the key (stripped before forwarding).</summary>
    public string Header { get; init; } = "X-Agent-Key";
}

/// <summary><c>Gateway:Inbound:Delegation</c>: an agent acting for a user sends the user's access
/// token in <see cref="Header"/>; the gateway verifies it and exchanges it (RFC 8693) on hops whose
/// credential is <c>OAuthTokenExchange</c>.</summary>
public sealed record DelegationSettings
{
    /// <summary>The request header carrying the user's access token (the raw JWT, no scheme).</summary>
    public string Header { get; init; } = "Subject-Token";

    /// <summary>Names of <c>Gateway:Inbound:Issuers</c> whose tokens are accepted as users' tokens.
    /// Empty (the default): delegation is off and requests that carry the header are refused.</summary>
    public string[] Issuers { get; init; } = [];

    /// <summary>The user's token must have been issued to the agent itself: its <c>azp</c> (or
    /// <c>client_id</c>) equals the agent's identity at the same issuer.</summary>
    public bool RequireAuthorizedParty { get; init; } = true;
}

/// <summary><c>Gateway:Inbound:Issuers:{name}</c>: one OAuth 2.1 issuer of agent access tokens.</summary>
public sealed record IssuerSettings
{
    /// <summary>OIDC discovery: keys come from <c>{Authority}/.well-known/openid-configuration</c>.</summary>
    public string? Authority { get; init; }

    /// <summary>The exact <c>iss</c> value. Defaults to <see cref="Authority"/>; required with <see cref="JwksUri"/>.</summary>
    public string? Issuer { get; init; }

    /// <summary>Keys straight from a JWKS document, without discovery.</summary>
    public string? JwksUri { get; init; }

    /// <summary>Accepted <c>aud</c> values. Every audience a token names must be one of these.</summary>
    public string[] Audiences { get; init; } = [];

    /// <summary>The claim whose value identifies the agent in the inventory.</summary>
    public string AgentClaim { get; init; } = "sub";

    /// <summary>Accepted signature algorithms; asymmetric only. Default: RS256, PS256, ES256.</summary>
    public string[]? Algorithms { get; init; }

    /// <summary>Accepted JOSE <c>typ</c> values. Default: <c>at+jwt</c> (RFC 9068); an ID token is not an access token.</summary>
    public string[]? TokenTypes { get; init; }

    /// <summary>Tokens of this issuer must be DPoP-bound (RFC 9449) and come with a proof.</summary>
    public bool RequireDpop { get; init; }

    /// <summary>Minimum time between key refreshes caused by an unknown <c>kid</c> (throttles unknown-kid floods).</summary>
    public TimeSpan KeyRefreshInterval { get; init; } = TimeSpan.FromMinutes(1);
}

/// <summary><c>Gateway:Agents:{id}</c>: one agent of the inventory.</summary>
public sealed record AgentSettings
{
    public string? Owner { get; init; }

    public string? Description { get; init; }

    /// <summary>The identities that prove to be this agent.</summary>
    public AgentIdentitySettings[] Identities { get; init; } = [];

    /// <summary>After this instant the agent is refused (401 agent-expired).</summary>
    public DateTimeOffset? ExpiresAt { get; init; }

    /// <summary>This agent's tokens must be DPoP-bound, whatever its issuer requires.</summary>
    public bool RequireDpop { get; init; }

    /// <summary>Makes this entry a class: every identity matching it is an instance of this agent,
    /// tracked (and revocable) on its own.</summary>
    public AgentClassSettings? Class { get; init; }

    /// <summary>Names of <c>Gateway:Grants</c> entries.</summary>
    public string[] Grants { get; init; } = [];
}

/// <summary><c>Agents:{id}:Class</c>: which identities are instances of the agent: tokens of
/// <see cref="Issuer"/> whose agent claim matches <see cref="SubjectPattern"/>, or SPIFFE IDs under
/// <see cref="SpiffePrefix"/>.</summary>
public sealed record AgentClassSettings
{
    public string? Issuer { get; init; }

    /// <summary>A pattern with <c>*</c>, e.g. <c>worker-*</c>.</summary>
    public string? SubjectPattern { get; init; }

    /// <summary>e.g. <c>spiffe://example.org/workers/</c> (ends with '/').</summary>
    public string? SpiffePrefix { get; init; }

    /// <summary>An instance not seen for this long is forgotten.</summary>
    public TimeSpan InstanceIdleTimeout { get; init; } = TimeSpan.FromHours(1);
}

/// <summary>An identity that maps to an agent: a token from <see cref="Issuer"/> (a name under
/// <c>Gateway:Inbound:Issuers</c>) whose agent claim equals <see cref="Subject"/>.</summary>
public sealed record AgentIdentitySettings
{
    public string? Issuer { get; init; }

    public string? Subject { get; init; }

    /// <summary>A SPIFFE ID (X509-SVID or JWT-SVID), e.g. <c>spiffe://example.org/agents/support</c>.</summary>
    public string? Spiffe { get; init; }

    /// <summary>A client certificate's SHA-256 thumbprint (hex).</summary>
    public string? CertificateThumbprint { get; init; }

    /// <summary>A client certificate SAN, as <c>dns:…</c>, <c>uri:…</c>, <c>email:…</c> or <c>ip:…</c>.</summary>
    public string? CertificateSan { get; init; }

    /// <summary>A static key's SHA-256 (hex), when <c>Inbound:StaticKeys:Enabled</c>.</summary>
    public string? StaticKeySha256 { get; init; }
}

/// <summary><c>Gateway:Grants:{name}</c>: a named permission, re-checked on every request. Every
/// restriction below is optional: absent means "not restricted by this grant"; present (even as an
/// empty list) means "only these".</summary>
public sealed record GrantSettings
{
    /// <summary>Ids of <c>ReverseProxy:Routes</c> entries this grant opens.</summary>
    public string[] Routes { get; init; } = [];

    /// <summary><c>Gateway:Databases</c> entries this grant opens, each as one upstream role.</summary>
    public Dictionary<string, Database.DatabaseGrantSettings>? Databases { get; init; }

    /// <summary>HTTP methods allowed (upper case, e.g. GET).</summary>
    public string[]? Methods { get; init; }

    /// <summary>Path patterns on the path as forwarded (after the route's transforms): <c>*</c>
    /// matches within one segment, <c>**</c> across segments.</summary>
    public string[]? Paths { get; init; }

    /// <summary>MCP restrictions, on routes with <c>Metadata:Inspect = Mcp</c>.</summary>
    public McpGrantSettings? Mcp { get; init; }

    /// <summary>LLM model patterns (<c>*</c> wildcard), on routes with <c>Metadata:Inspect = Llm</c>.</summary>
    public string[]? Models { get; init; }

    /// <summary>At most this many requests per agent in each window, across replicas.</summary>
    public RateLimitSettings? RateLimit { get; init; }

    /// <summary>The request must carry a valid delegation: a human the agent acts for.</summary>
    public bool RequireDelegation { get; init; }

    /// <summary>When the grant may be used; absent means always.</summary>
    public TimeWindowSettings[]? Hours { get; init; }

    /// <summary>Shadow mode: the grant's restrictions are evaluated and every would-be refusal is
    /// recorded, but not enforced (the routes it opens are).</summary>
    public bool Shadow { get; init; }

    /// <summary>Names separation rules can refer to besides the grant's own (e.g. <c>untrusted-input</c>, <c>write</c>).</summary>
    public string[] Labels { get; init; } = [];
}

/// <summary><c>Grants:{name}:Mcp</c>: what an MCP client may call, decided on each call's own body.</summary>
public sealed record McpGrantSettings
{
    /// <summary><c>tools/call</c> by <c>params.name</c> (<c>*</c> wildcard).</summary>
    public string[]? Tools { get; init; }

    /// <summary><c>prompts/get</c> by <c>params.name</c>.</summary>
    public string[]? Prompts { get; init; }

    /// <summary><c>resources/read</c> and <c>resources/subscribe</c> by <c>params.uri</c>.</summary>
    public string[]? Resources { get; init; }

    /// <summary>The requests the MCP server may send the agent on this grant's streams
    /// (<c>sampling/createMessage</c>, <c>elicitation/create</c>, <c>roots/list</c>, ...). When the
    /// grant restricts MCP, anything not listed is kept from the agent and refused to the server.</summary>
    public string[]? ServerRequests { get; init; }

    /// <summary>Remove the tools this grant does not allow from <c>tools/list</c> answers (default on).</summary>
    public bool FilterToolList { get; init; } = true;
}

/// <summary>A fixed-window rate limit.</summary>
public sealed record RateLimitSettings
{
    public int Requests { get; init; }

    public TimeSpan Window { get; init; } = TimeSpan.FromMinutes(1);
}

/// <summary>A weekly time window, in a time zone: <c>From</c> to <c>To</c> (overnight when <c>To</c> is earlier).</summary>
public sealed record TimeWindowSettings
{
    /// <summary>Mon, Tue, Wed, Thu, Fri, Sat, Sun; absent means every day. The day is the one the window starts on.</summary>
    public string[]? Days { get; init; }

    /// <summary>HH:mm.</summary>
    public string? From { get; init; }

    /// <summary>HH:mm.</summary>
    public string? To { get; init; }

    /// <summary>IANA time zone id. Default UTC.</summary>
    public string TimeZone { get; init; } = "UTC";
}

/// <summary><c>Gateway:Provenance</c>: the signed assertion routes with <c>Metadata:Provenance = true</c>
/// send upstream, and the key that signs it.</summary>
public sealed record ProvenanceSettings
{
    /// <summary>Secret reference to a PEM private key (EC P-256 or RSA). Absent: a key generated at
    /// start — fine for one replica; replicas behind one load balancer need a shared key.</summary>
    public string? SigningKey { get; init; }

    /// <summary>Secret references to keys rotated out: still published, no longer signing.</summary>
    public string[] PreviousKeys { get; init; } = [];

    public string Header { get; init; } = "AgentGateway-Provenance";

    /// <summary>The assertions' <c>iss</c>.</summary>
    public string Issuer { get; init; } = "agentgateway";

    public TimeSpan Lifetime { get; init; } = TimeSpan.FromMinutes(1);
}

/// <summary><c>Gateway:Admin</c>: the inventory and revocation API, on its own listener.</summary>
public sealed record AdminSettings
{
    /// <summary>Where the admin API listens (e.g. <c>http://127.0.0.1:9090</c>); absent means no admin API.
    /// Fixed for the process.</summary>
    public string? Urls { get; init; }

    /// <summary>The <c>Gateway:Inbound:Issuers</c> name whose tokens operators present.</summary>
    public string? Issuer { get; init; }

    /// <summary>The operators: values of that issuer's agent claim allowed to call the admin API.</summary>
    public string[] Subjects { get; init; } = [];

    /// <summary>Operators' tokens must be DPoP-bound, whatever their issuer requires.</summary>
    public bool RequireDpop { get; init; }

    /// <summary>The origins operators reach the admin API at, which a DPoP proof's <c>htu</c> must
    /// name. Absent: the admin listener's own scheme, address and port.</summary>
    public string[] PublicOrigins { get; init; } = [];

    /// <summary>Agents not seen for this long are flagged dormant in the inventory.</summary>
    public TimeSpan DormantAfter { get; init; } = TimeSpan.FromDays(7);

    /// <summary>Without Redis: a file revocations are appended to and read back at start.</summary>
    public string? RevocationsFile { get; init; }

    /// <summary>What just-in-time registered agents may be given, by template name.</summary>
    public Dictionary<string, AgentTemplateSettings> Templates { get; init; } = [];
}

/// <summary><c>Admin:Templates:{name}</c>: the most an ephemeral agent registered from it may get.</summary>
public sealed record AgentTemplateSettings
{
    /// <summary>Grants a registration may pick from.</summary>
    public string[] Grants { get; init; } = [];

    /// <summary>Issuers the agent's identities may come from.</summary>
    public string[] Issuers { get; init; } = [];

    /// <summary>The longest time to live a registration may ask for.</summary>
    public TimeSpan MaxTimeToLive { get; init; } = TimeSpan.FromHours(1);
}

/// <summary><c>Gateway:Audit</c>: the hash-chained audit trail of every credential use and refusal.
/// Fixed for the process (a reload that changes it is refused).</summary>
public sealed record AuditSettings
{
    /// <summary>The JSON-lines file to append to; absent means no audit file.</summary>
    public string? Path { get; init; }

    /// <summary>Secret reference to an HMAC key: the chain then cannot be recomputed without it.</summary>
    public string? Key { get; init; }
}

/// <summary><c>Gateway:Policy</c>: what the grants alone cannot say.</summary>
public sealed record PolicySettings
{
    /// <summary>Largest MCP or LLM body inspected; larger bodies are refused (413) on inspected routes, never forwarded uninspected.</summary>
    public int MaxInspectedBodyBytes { get; init; } = 1024 * 1024;

    /// <summary>Largest server-sent event read from an MCP stream on a grant that restricts MCP; a
    /// larger event ends the stream, since it can be neither inspected nor passed on uninspected.</summary>
    public int MaxServerEventBytes { get; init; } = 4 * 1024 * 1024;

    /// <summary>How requests name the task they belong to.</summary>
    public TaskSettings Task { get; init; } = new();

    /// <summary>Separation rules: combinations of grants one task may not use.</summary>
    public Dictionary<string, SeparationRuleSettings> Separation { get; init; } = [];
}

/// <summary><c>Gateway:Policy:Task</c>. A request's task is the <see cref="Claim"/> of the agent's
/// token when one is configured (signed: the agent cannot change it per request; a token without it
/// names no task, and the header is then refused), else the <see cref="Header"/>. The header is
/// stripped before forwarding.</summary>
public sealed record TaskSettings
{
    public string Header { get; init; } = "Agent-Task";

    public string? Claim { get; init; }

    /// <summary>How long a step history (an agent instance's, a task's) is kept after its latest step.</summary>
    public TimeSpan Ttl { get; init; } = TimeSpan.FromHours(1);
}

/// <summary><c>Gateway:Policy:Separation:{name}</c>: once an agent instance (or a task it names) has
/// used a grant matching <see cref="After"/>, it may not use one matching <see cref="Deny"/>.
/// Entries are grant names or labels.</summary>
public sealed record SeparationRuleSettings
{
    public string[] After { get; init; } = [];

    public string[] Deny { get; init; } = [];

    /// <summary>Record violations without refusing them.</summary>
    public bool Shadow { get; init; }

    /// <summary>Refuse requests allowed by a grant in <see cref="After"/> or <see cref="Deny"/>
    /// that name no task (403 <c>task-required</c>).</summary>
    public bool RequireTask { get; init; }
}
