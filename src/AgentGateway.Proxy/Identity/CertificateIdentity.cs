using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using AgentGateway.Proxy.Problems;

namespace AgentGateway.Proxy.Identity;

/// <summary>Trust for agents' client certificates: plain mTLS (a CA bundle) and SPIFFE.</summary>
/// <param name="ClientRoots">CAs whose client certificates identify agents by thumbprint or SAN; null when off.</param>
/// <param name="Spiffe">SPIFFE trust, or null when off.</param>
public sealed record CertificateTrust(X509Certificate2Collection? ClientRoots, SpiffeTrust? Spiffe)
{
    public static CertificateTrust None { get; } = new(null, null);

    public bool Enabled => ClientRoots is not null || Spiffe is not null;
}

/// <summary>A SPIFFE trust domain and its bundle: X.509 roots for X509-SVIDs, JWT keys for JWT-SVIDs.</summary>
public sealed record SpiffeTrust(string TrustDomain, X509Certificate2Collection X509Roots, Microsoft.IdentityModel.Tokens.JsonWebKeySet? JwtKeys, IReadOnlyList<string> Audiences)
{
    /// <summary>Only these audiences (<see cref="AccessTokenRules.OnlyAudiences"/>), built once per revision.</summary>
    internal Microsoft.IdentityModel.Tokens.AudienceValidator AudienceRule { get; } = AccessTokenRules.OnlyAudiences(Audiences);
}

/// <summary>
/// Identifies an agent by the client certificate of its TLS connection. Chains are built against
/// the configured roots only (custom root trust; the operating system's store is never consulted).
/// A certificate with a URI SAN is an X509-SVID and must follow the SPIFFE rules: exactly one URI
/// SAN, a well-formed SPIFFE ID in the configured trust domain, a leaf that is not a CA and may
/// sign but not certify. Others map by SHA-256 thumbprint or by SAN.
/// </summary>
public static class CertificateIdentity
{
    public const string SpiffeIssuer = "spiffe";
    public const string ThumbprintIssuer = "x509-sha256";
    public const string SanIssuer = "x509-san";

    private const string SubjectAltNameOid = "2.5.29.17";

    /// <summary>The identity keys the certificate proves (the first found in the inventory wins), or why none.</summary>
    public static (IReadOnlyList<AgentIdentityKey> Keys, Refusal? Refusal) Identify(X509Certificate2 certificate, CertificateTrust trust, DateTimeOffset now)
    {
        var uris = SubjectAlternativeNames(certificate).Where(n => n.Kind == "uri").Select(n => n.Value).ToList();
        if (uris.Any(u => u.StartsWith("spiffe://", StringComparison.OrdinalIgnoreCase)) || (trust.ClientRoots is null && trust.Spiffe is not null))
        {
            return IdentifySvid(certificate, uris, trust.Spiffe, now);
        }

        if (trust.ClientRoots is null)
        {
            return ([], Refusal.Unauthenticated("client certificates are not accepted here"));
        }

        if (!Chains(certificate, trust.ClientRoots, now, requireClientAuth: true))
        {
            return ([], Refusal.Unauthenticated("the client certificate does not chain to a trusted agent CA"));
        }

        var keys = new List<AgentIdentityKey> { new(ThumbprintIssuer, Convert.ToHexString(certificate.GetCertHash(HashAlgorithmName.SHA256))) };
        keys.AddRange(SubjectAlternativeNames(certificate).Select(n => new AgentIdentityKey(SanIssuer, $"{n.Kind}:{n.Value}")));
        return (keys, null);
    }

    /// <summary>Null when <paramref name="id"/> is a SPIFFE ID (spiffe://trust-domain/path) with the
    /// spec's character set, else why not. <paramref name="trustDomain"/> receives the trust domain.</summary>
    public static string? CheckSpiffeId(string id, out string trustDomain)
    {
        trustDomain = "";
        const string scheme = "spiffe://";
        if (!id.StartsWith(scheme, StringComparison.Ordinal) || id.Length > 2048)
        {
            return "not a spiffe:// URI (lower-case scheme, at most 2048 bytes)";
        }

        var rest = id[scheme.Length..];
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        trustDomain = slash < 0 ? rest : rest[..slash];
        if (trustDomain.Length == 0 || !trustDomain.All(c => c is >= 'a' and <= 'z' or >= '0' and <= '9' or '.' or '-' or '_'))
        {
            return "the trust domain is empty or has characters outside a-z, 0-9, '.', '-', '_' (no ports, no user info, no upper case)";
        }

        if (slash < 0)
        {
            return null;
        }

        foreach (var segment in rest[(slash + 1)..].Split('/'))
        {
            if (segment.Length == 0 || segment is "." or ".."
                || !segment.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_'))
            {
                return "the path has an empty, dot or ill-formed segment (no query, no fragment, no percent-encoding)";
            }
        }

        return null;
    }

    private static (IReadOnlyList<AgentIdentityKey>, Refusal?) IdentifySvid(X509Certificate2 leaf, List<string> uris, SpiffeTrust? spiffe, DateTimeOffset now)
    {
        if (spiffe is null)
        {
            return ([], Refusal.Unauthenticated("SPIFFE identities are not accepted here"));
        }

        if (uris.Count != 1)
        {
            return ([], Refusal.Unauthenticated("an X509-SVID has exactly one URI SAN"));
        }

        if (CheckSpiffeId(uris[0], out var trustDomain) is { } why)
        {
            return ([], Refusal.Unauthenticated("the SPIFFE ID is invalid: " + why));
        }

        if (trustDomain != spiffe.TrustDomain)
        {
            return ([], Refusal.Unauthenticated("the SPIFFE ID is not in this gateway's trust domain"));
        }

        var basic = leaf.Extensions.OfType<X509BasicConstraintsExtension>().FirstOrDefault();
        if (basic?.CertificateAuthority == true)
        {
            return ([], Refusal.Unauthenticated("an X509-SVID leaf must not be a CA"));
        }

        var usage = leaf.Extensions.OfType<X509KeyUsageExtension>().FirstOrDefault()?.KeyUsages ?? X509KeyUsageFlags.None;
        if ((usage & X509KeyUsageFlags.DigitalSignature) == 0 || (usage & (X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign)) != 0)
        {
            return ([], Refusal.Unauthenticated("an X509-SVID leaf signs (digitalSignature) and never certifies (keyCertSign, cRLSign)"));
        }

        if (!Chains(leaf, spiffe.X509Roots, now, requireClientAuth: false))
        {
            return ([], Refusal.Unauthenticated("the X509-SVID does not chain to the trust domain's bundle"));
        }

        return ([new AgentIdentityKey(SpiffeIssuer, uris[0])], null);
    }

    private static bool Chains(X509Certificate2 leaf, X509Certificate2Collection roots, DateTimeOffset now, bool requireClientAuth)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(roots);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.VerificationTime = now.UtcDateTime;
        chain.ChainPolicy.VerificationTimeIgnored = false;
        if (requireClientAuth)
        {
            chain.ChainPolicy.ApplicationPolicy.Add(new Oid("1.3.6.1.5.5.7.3.2"));
        }

        return chain.Build(leaf);
    }

    /// <summary>The SANs as (kind, value): dns, uri, email, ip. Read from the raw extension, so
    /// nothing depends on how the platform formats them.</summary>
    public static IEnumerable<(string Kind, string Value)> SubjectAlternativeNames(X509Certificate2 certificate)
    {
        var extension = certificate.Extensions[SubjectAltNameOid];
        if (extension is null)
        {
            yield break;
        }

        var names = new List<(string, string)>();
        try
        {
            var reader = new AsnReader(extension.RawData, AsnEncodingRules.DER).ReadSequence();
            while (reader.HasData)
            {
                var tag = reader.PeekTag();
                if (tag.TagClass != TagClass.ContextSpecific)
                {
                    reader.ReadEncodedValue();
                    continue;
                }

                switch (tag.TagValue)
                {
                    case 1:
                        names.Add(("email", reader.ReadCharacterString(UniversalTagNumber.IA5String, tag)));
                        break;
                    case 2:
                        names.Add(("dns", reader.ReadCharacterString(UniversalTagNumber.IA5String, tag)));
                        break;
                    case 6:
                        names.Add(("uri", reader.ReadCharacterString(UniversalTagNumber.IA5String, tag)));
                        break;
                    case 7:
                        // RFC 5280 §4.2.1.6: four octets or sixteen; anything else is no address.
                        var octets = reader.ReadOctetString(tag);
                        if (octets.Length is not (4 or 16))
                        {
                            throw new AsnContentException("an iPAddress name is 4 or 16 octets");
                        }

                        names.Add(("ip", new System.Net.IPAddress(octets).ToString()));
                        break;
                    default:
                        reader.ReadEncodedValue();
                        break;
                }
            }
        }
        catch (Exception e) when (e is AsnContentException or ArgumentException or CryptographicException)
        {
            // A SAN that does not parse proves nothing, whatever the parser throws: this runs on
            // any certificate a client presents, before its chain is judged.
            names.Clear();
        }

        foreach (var name in names)
        {
            yield return name;
        }
    }
}
