using AgentGateway.Configuration;
using AgentGateway.Credentials.Secrets;
using Microsoft.Extensions.Configuration;

namespace AgentGateway.Proxy.Provenance;

/// <summary>Compiles <c>Gateway:Provenance</c> into the <see cref="ProvenanceSigner"/>: the header,
/// the assertions' lifetime, and the signing keys read from secret references (PEM EC or RSA).</summary>
public static class ProvenanceCompiler
{
    /// <summary>Without a configured key: one generated per process, so a reload keeps it.</summary>
    private static readonly Lazy<Microsoft.IdentityModel.Tokens.SecurityKey> EphemeralProvenanceKey = new(ProvenanceSigner.Ephemeral);

    public static ProvenanceSigner? Compile(IConfigurationSection section, TimeProvider time, ConfigProblems problems)
    {
        var s = SectionReader.Read<ProvenanceSettings>(section, problems);
        HeaderName.TryRead(section.Path + ":Header", s.Header, problems, out _);
        if (s.Lifetime < TimeSpan.FromSeconds(5) || s.Lifetime > TimeSpan.FromMinutes(10))
        {
            problems.Add(section.Path + ":Lifetime", "must be between 00:00:05 and 00:10:00: the assertion covers one request");
        }

        var current = s.SigningKey is null ? EphemeralProvenanceKey.Value : ReadSigningKey(section.Path + ":SigningKey", s.SigningKey, problems);
        var previous = new List<Microsoft.IdentityModel.Tokens.SecurityKey>();
        for (var i = 0; i < s.PreviousKeys.Length; i++)
        {
            if (ReadSigningKey($"{section.Path}:PreviousKeys:{i}", s.PreviousKeys[i], problems) is { } old)
            {
                previous.Add(old);
            }
        }

        return current is null ? null : new ProvenanceSigner(new ProvenanceOptions(s.Header, s.Issuer, s.Lifetime), current, previous, time);
    }

    private static Microsoft.IdentityModel.Tokens.AsymmetricSecurityKey? ReadSigningKey(string path, string reference, ConfigProblems problems)
    {
        if (!SecretResolver.TryRead(path, reference, problems, out var pem))
        {
            return null;
        }

        Microsoft.IdentityModel.Tokens.AsymmetricSecurityKey key;
        try
        {
            var ec = System.Security.Cryptography.ECDsa.Create();
            ec.ImportFromPem(pem.Reveal());
            key = new Microsoft.IdentityModel.Tokens.ECDsaSecurityKey(ec);
        }
        catch (Exception ex) when (ex is ArgumentException or System.Security.Cryptography.CryptographicException)
        {
            try
            {
                var rsa = System.Security.Cryptography.RSA.Create();
                rsa.ImportFromPem(pem.Reveal());
                key = new Microsoft.IdentityModel.Tokens.RsaSecurityKey(rsa);
            }
            catch (Exception inner) when (inner is ArgumentException or System.Security.Cryptography.CryptographicException)
            {
                problems.Add(path, "does not hold a PEM EC or RSA private key");
                return null;
            }
        }

        key.KeyId = Microsoft.IdentityModel.Tokens.Base64UrlEncoder.Encode(Microsoft.IdentityModel.Tokens.JsonWebKeyConverter.ConvertFromSecurityKey(key).ComputeJwkThumbprint());
        return key;
    }
}
