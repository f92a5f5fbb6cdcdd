using System.Security.Cryptography;
using System.Text;

namespace AgentGateway.Credentials;

/// <summary>
/// A short keyed hash of a credential, so telemetry can correlate uses of the same token or key
/// without revealing it. Keyed (HMAC), so a fingerprint cannot be checked against a guessed
/// secret by someone who reads only the traces.
/// </summary>
public sealed class CredentialFingerprint
{
    private readonly byte[] _key;

    public CredentialFingerprint()
        : this(RandomNumberGenerator.GetBytes(32))
    {
    }

    public CredentialFingerprint(byte[] key)
    {
        ArgumentNullException.ThrowIfNull(key);
        _key = key;
    }

    public string Of(string secret)
    {
        Span<byte> hash = stackalloc byte[32];
        HMACSHA256.HashData(_key, Encoding.UTF8.GetBytes(secret), hash);
        return "fp:" + Convert.ToHexStringLower(hash[..8]);
    }
}
