using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using AgentGateway.Credentials.Secrets;

namespace AgentGateway.Credentials.OAuth;

/// <summary>
/// Cache keys for OAuth tokens: a SHA-256 hash over every parameter that shapes the token. The
/// client secret enters as its own hash, so a rotated secret never serves a token obtained with
/// the old one; scopes and resources are sorted, since the same set in another order is the same
/// token. The parts are JSON-encoded before hashing, which keeps field boundaries unambiguous
/// whatever the values contain.
/// </summary>
internal static class TokenCacheKey
{
    private const string Prefix = "agw:token:v1:";

    public static string For(string grant, OAuthClient client, SecretValue secret, IEnumerable<string> scopes, IEnumerable<string> resources, params string?[] grantParameters)
    {
        var material = JsonSerializer.SerializeToUtf8Bytes(new[]
        {
            [grant, client.TokenEndpoint.AbsoluteUri, client.ClientId, client.Authentication.ToString()],
            [.. scopes.Order(StringComparer.Ordinal)],
            [.. resources.Order(StringComparer.Ordinal)],
            grantParameters,
            [Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret.Reveal())))],
        });
        return Prefix + Convert.ToHexStringLower(SHA256.HashData(material));
    }
}
