using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.IdentityModel.Tokens;

namespace AgentGateway.FunctionalTests.Adversarial;

/// <summary>
/// JWTs assembled byte by byte, so a test can say exactly what a hostile token carries — headers no
/// library would write, algorithms it would refuse to sign with, signatures that are wrong on purpose.
/// </summary>
internal static class RawJwt
{
    public static string Create(IReadOnlyDictionary<string, object?> header, IReadOnlyDictionary<string, object?> payload, Func<byte[], byte[]>? sign)
    {
        var signingInput = Segment(header) + "." + Segment(payload);
        var signature = sign is null ? "" : Base64UrlEncoder.Encode(sign(Encoding.ASCII.GetBytes(signingInput)));
        return signingInput + "." + signature;
    }

    /// <summary>A token whose payload segment is the given bytes, not JSON (e.g. compressed).</summary>
    public static string CreateRaw(IReadOnlyDictionary<string, object?> header, byte[] payload, Func<byte[], byte[]> sign)
    {
        var signingInput = Segment(header) + "." + Base64UrlEncoder.Encode(payload);
        return signingInput + "." + Base64UrlEncoder.Encode(sign(Encoding.ASCII.GetBytes(signingInput)));
    }

    /// <summary>A payload that would be valid for the gateway in every respect.</summary>
    public static Dictionary<string, object?> ValidPayload(string issuer, string subject, string audience)
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        return new()
        {
            ["iss"] = issuer,
            ["aud"] = audience,
            ["sub"] = subject,
            ["client_id"] = subject,
            ["iat"] = now - 60,
            ["nbf"] = now - 60,
            ["exp"] = now + 600,
            ["jti"] = Guid.NewGuid().ToString("N"),
        };
    }

    public static Dictionary<string, object?> Header(string alg, string? kid, string typ = "at+jwt")
    {
        var header = new Dictionary<string, object?> { ["alg"] = alg, ["typ"] = typ };
        if (kid is not null)
        {
            header["kid"] = kid;
        }

        return header;
    }

    public static Func<byte[], byte[]> Rs256(RSA key) => input => key.SignData(input, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);

    public static Func<byte[], byte[]> Rs512(RSA key) => input => key.SignData(input, HashAlgorithmName.SHA512, RSASignaturePadding.Pkcs1);

    /// <summary>Signs with a library security key (the test authorization server's own).</summary>
    public static Func<byte[], byte[]> With(SecurityKey key, string algorithm) => input =>
    {
        var provider = key.CryptoProviderFactory.CreateForSigning(key, algorithm);
        try
        {
            return provider.Sign(input);
        }
        finally
        {
            key.CryptoProviderFactory.ReleaseSignatureProvider(provider);
        }
    };

    public static Func<byte[], byte[]> Hs256(byte[] secret) => input => HMACSHA256.HashData(secret, input);

    /// <summary>An RSA public key as a JWK.</summary>
    public static Dictionary<string, object?> Jwk(RSA key, string kid)
    {
        var parameters = key.ExportParameters(includePrivateParameters: false);
        return new()
        {
            ["kty"] = "RSA",
            ["use"] = "sig",
            ["alg"] = "RS256",
            ["kid"] = kid,
            ["n"] = Base64UrlEncoder.Encode(parameters.Modulus),
            ["e"] = Base64UrlEncoder.Encode(parameters.Exponent),
        };
    }

    public static string Jwks(params (RSA Key, string Kid)[] keys) =>
        JsonSerializer.Serialize(new { keys = keys.Select(k => Jwk(k.Key, k.Kid)).ToArray() });

    private static string Segment(IReadOnlyDictionary<string, object?> json) => Base64UrlEncoder.Encode(JsonSerializer.SerializeToUtf8Bytes(json));
}
