namespace AgentGateway.Proxy.Audit;

/// <summary><c>Gateway:Audit</c>: the hash-chained audit trail of every credential use and refusal.
/// Fixed for the process (a reload that changes it is refused).</summary>
public sealed record AuditSettings
{
    /// <summary>The JSON-lines file to append to; absent means no audit file.</summary>
    public string? Path { get; init; }

    /// <summary>Secret reference to an HMAC key: the chain then cannot be recomputed without it.</summary>
    public string? Key { get; init; }
}
