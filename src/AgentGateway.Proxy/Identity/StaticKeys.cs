using System.Security.Cryptography;
using System.Text;

namespace AgentGateway.Proxy.Identity;

/// <summary>Static API keys (development only): the inventory holds their SHA-256, and a presented
/// key is compared against every configured hash in constant time, so neither timing nor the
/// configuration reveals a key.</summary>
public static class StaticKeys
{
    public const string Issuer = "static-key";

    /// <summary>The identity a presented key proves, if its hash is one of <paramref name="hashes"/>.</summary>
    public static AgentIdentityKey? Match(string presented, IEnumerable<AgentIdentityKey> hashes)
    {
        var digest = SHA256.HashData(Encoding.UTF8.GetBytes(presented));
        AgentIdentityKey? found = null;
        foreach (var key in hashes)
        {
            // Every hash is compared, found or not: the time taken does not depend on which matched.
            if (CryptographicOperations.FixedTimeEquals(digest, Convert.FromHexString(key.Subject)))
            {
                found = key;
            }
        }

        return found;
    }
}
