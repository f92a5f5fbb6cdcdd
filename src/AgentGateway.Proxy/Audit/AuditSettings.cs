using AgentGateway.Configuration;

namespace AgentGateway.Proxy.Audit;

/// <summary><c>Gateway:Audit</c>: the hash-chained audit trail of every credential use and refusal.
/// Fixed for the process (a reload that changes it is refused).</summary>
[Setting("The hash-chained audit trail of every credential use and refusal (JSON lines). Fixed for the process; each replica writes its own file.")]
public sealed record AuditSettings
{
    /// <summary>The JSON-lines file to append to; absent means no audit file.</summary>
    [Setting("The file to append to (its directory must exist). Absent: no audit file.")]
    public string? Path { get; init; }

    /// <summary>Secret reference to an HMAC key: the chain then cannot be recomputed without it.</summary>
    [Setting("An HMAC key: the chain then cannot be recomputed without it. Pass it to 'agentgateway audit verify --key'.", Format = SettingFormat.SecretReference)]
    public string? Key { get; init; }
}
