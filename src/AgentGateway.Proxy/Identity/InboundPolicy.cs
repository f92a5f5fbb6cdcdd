using System.Collections.Frozen;

namespace AgentGateway.Proxy.Identity;

/// <summary>The compiled <c>Gateway:Inbound</c> section: trusted issuers by their exact <c>iss</c>.</summary>
public sealed class InboundPolicy(FrozenDictionary<string, TrustedIssuer> issuersByIss, int maxTokenBytes)
{
    public int MaxTokenBytes { get; } = maxTokenBytes;

    public IReadOnlyCollection<TrustedIssuer> Issuers => issuersByIss.Values;

    /// <summary>Exact, case-sensitive match: <c>https://idp/</c> and <c>https://idp</c> are different issuers.</summary>
    public bool TryGetIssuer(string iss, out TrustedIssuer? issuer) => issuersByIss.TryGetValue(iss, out issuer);
}
