using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace AgentGateway.Credentials.OAuth;

/// <summary>
/// Cache keys for OAuth tokens: a SHA-256 hash over every parameter that shapes the token. The
/// client's secret or private key enters as its own hash, so rotated material never serves a token
/// obtained with the old one; scopes and resources are sorted, since the same set in another order is the same
/// token. The parts are JSON-encoded before hashing, which keeps field boundaries unambiguous
/// whatever the values contain.
/// </summary>
internal static class TokenCacheKey
{
    private const string Prefix = "agw:token:v1:";

    public static string For(string grant, OAuthClient client, string keyMaterial, IEnumerable<string> scopes, IEnumerable<string> resources, params string?[] grantParameters)
    {
        var material = JsonSerializer.SerializeToUtf8Bytes(new[]
        {
            [grant, client.TokenEndpoint.AbsoluteUri, client.ClientId, client.Authentication.Method],
            [.. scopes.Order(StringComparer.Ordinal)],
            [.. resources.Order(StringComparer.Ordinal)],
            grantParameters,
            [Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(keyMaterial)))],
        });
        return Prefix + Convert.ToHexStringLower(SHA256.HashData(material));
    }

    /// <summary>
    /// The key of one subject's token under a configured credential whose own key is
    /// <paramref name="credentialKey"/> (computed once, at configuration load): only the parts that
    /// vary per request are hashed per request. Each part is length-prefixed, so parts cannot run
    /// into one another.
    /// </summary>
    public static string Within(string credentialKey, string agentId, string issuer, string subject)
    {
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        using (var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
        {
            Append(sha, credentialKey);
            Append(sha, agentId);
            Append(sha, issuer);
            Append(sha, subject);
            sha.GetHashAndReset(hash);
        }

        return Prefix + Convert.ToHexStringLower(hash);
    }

    private static void Append(IncrementalHash sha, string part)
    {
        Span<byte> length = stackalloc byte[4];
        var bytes = Encoding.UTF8.GetBytes(part);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(length, bytes.Length);
        sha.AppendData(length);
        sha.AppendData(bytes);
    }
}
