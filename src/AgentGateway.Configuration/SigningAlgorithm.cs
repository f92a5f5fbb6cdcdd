using System.Collections.Frozen;

namespace AgentGateway.Configuration;

/// <summary>
/// A JWS signature algorithm the gateway accepts or signs with (RFC 7518 §3.1): asymmetric only —
/// RSA PKCS#1, RSA-PSS and ECDSA — so a public key can never be used as an HMAC secret, and
/// <c>none</c> never passes. The one list for issuers' tokens, JWT-SVIDs, DPoP proofs, the
/// <c>WWW-Authenticate</c> challenge that advertises them and client assertions.
/// </summary>
public readonly record struct SigningAlgorithm
{
    private static readonly string[] Names = ["ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512"];

    private SigningAlgorithm(string name) => Name = name;

    /// <summary>Every accepted algorithm name (case-sensitive, as JOSE spells them).</summary>
    public static FrozenSet<string> All { get; } = Names.ToFrozenSet(StringComparer.Ordinal);

    /// <summary>The accepted names, in a stable order, separated by <paramref name="separator"/>.</summary>
    public static string List(string separator) => string.Join(separator, Names);

    /// <summary>What an issuer accepts when its entry names no algorithms.</summary>
    public static string[] IssuerDefault => ["RS256", "PS256", "ES256"];

    public string Name { get; }

    public static bool TryParse(string? text, out SigningAlgorithm algorithm)
    {
        algorithm = default;
        if (text is null || !All.Contains(text))
        {
            return false;
        }

        algorithm = new SigningAlgorithm(text);
        return true;
    }

    public override string ToString() => Name ?? string.Empty;
}
