namespace AgentGateway.Credentials;

/// <summary>
/// What the broker hands the injection point: the header to set and its value, plus the facts
/// telemetry records about the use. <see cref="HeaderValue"/> is the only secret-bearing
/// member and is excluded from <see cref="ToString"/>. Both header members are null for a
/// credential that travels on the connection (a client certificate); <see cref="HeaderValue"/>
/// is null for one that a <see cref="Signer"/> writes as the request leaves.
/// </summary>
public sealed record HopCredential(
    string CredentialName,
    CredentialKind Kind,
    string? HeaderName,
    string? HeaderValue,
    string Fingerprint,
    CredentialSource Source,
    DateTimeOffset? ExpiresAt)
{
    /// <summary>The token itself, for a hop that carries it outside an HTTP header (a database login
    /// takes it as the password). Set by the token kinds; secret-bearing like <see cref="HeaderValue"/>.</summary>
    public string? Secret { get; init; }

    /// <summary>Signs the request as it is sent, for a credential that is a signature over it
    /// (writing <see cref="HeaderName"/> itself); null for a header value set in advance.</summary>
    public IRequestSigner? Signer { get; init; }

    public override string ToString() =>
        $"{CredentialName} ({Kind}, {HeaderName ?? "no header"}, fingerprint {Fingerprint}, {Source})";
}

/// <summary>Where the credential came from on this request.</summary>
public enum CredentialSource
{
    /// <summary>Static material loaded with the configuration (API keys).</summary>
    Static,

    /// <summary>Served from this process's memory.</summary>
    LocalCache,

    /// <summary>Served from the cache every replica shares (Redis): another replica fetched it.</summary>
    SharedCache,

    /// <summary>Fetched from the issuer for this request.</summary>
    Fetched,
}

/// <summary>Why a credential could not be had. <see cref="Detail"/> is safe to show the agent:
/// it names the credential and the failure class, never a secret or a raw issuer response.</summary>
public sealed record CredentialError(string CredentialName, string Detail);

/// <summary>The broker's answer: a credential or an error, switched on rather than thrown.</summary>
public readonly record struct CredentialResult
{
    private CredentialResult(HopCredential? credential, CredentialError? error)
    {
        Credential = credential;
        Error = error;
    }

    public HopCredential? Credential { get; }

    public CredentialError? Error { get; }

    public static CredentialResult Success(HopCredential credential) => new(credential, null);

    public static CredentialResult Failure(CredentialError error) => new(null, error);
}
