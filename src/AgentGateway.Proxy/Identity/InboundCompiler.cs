using System.Collections.Frozen;
using System.Security.Cryptography.X509Certificates;
using AgentGateway.Configuration;
using AgentGateway.Credentials.Secrets;
using Microsoft.Extensions.Configuration;

namespace AgentGateway.Proxy.Identity;

/// <summary>The compiled <c>Gateway:Inbound</c> section and the issuer names later sections refer to.</summary>
/// <param name="Policy">How agents prove who they are.</param>
/// <param name="IssuerNames">The names of the issuers that compiled (any case).</param>
public sealed record CompiledInbound(InboundOptions Policy, IReadOnlySet<string> IssuerNames);

/// <summary>
/// Compiles <c>Gateway:Inbound</c>: token bounds, trusted issuers, delegation, client-certificate
/// and SPIFFE trust (their PEM bundles and JWKS read from secret references at load), static keys
/// and public origins. Every problem is reported under the section's path.
/// </summary>
public static class InboundCompiler
{
    /// <param name="section">The <c>Gateway:Inbound</c> section.</param>
    /// <param name="issuerKeys">Where issuers' keys will be fetched from when first needed.</param>
    /// <param name="problems">Collects every problem, by path.</param>
    public static CompiledInbound Compile(IConfigurationSection section, IssuerKeySources issuerKeys, ConfigProblems problems)
    {
        var settings = SectionReader.Read<InboundSettings>(section, problems);
        if (settings.ClockSkew < TimeSpan.Zero || settings.ClockSkew > TimeSpan.FromMinutes(5))
        {
            problems.Add(section.Path + ":ClockSkew", "must be between 00:00:00 and 00:05:00");
        }

        if (settings.MaxTokenLifetime < TimeSpan.FromMinutes(1) || settings.MaxTokenLifetime > TimeSpan.FromDays(1))
        {
            problems.Add(section.Path + ":MaxTokenLifetime", "must be between 00:01:00 and 1.00:00:00");
        }

        if (settings.MaxTokenBytes is < 512 or > 256 * 1024)
        {
            problems.Add(section.Path + ":MaxTokenBytes", "must be between 512 and 262144");
        }

        var byIss = new Dictionary<string, TrustedIssuer>(StringComparer.Ordinal);
        var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var entry in section.GetSection("Issuers").GetChildren())
        {
            if (IssuerCompiler.Compile(entry, settings.ClockSkew, issuerKeys, problems) is not { } issuer)
            {
                continue;
            }

            names.Add(entry.Key);
            if (!byIss.TryAdd(issuer.Issuer, issuer))
            {
                problems.Add(entry.Path, $"another issuer already has iss '{issuer.Issuer}'");
            }
        }

        var delegation = CompileDelegation(section.Path + ":Delegation", settings.Delegation, names, problems);
        var certificates = new CertificateTrust(
            settings.ClientCertificates is { } client && PemBundle.TryRead(section.Path + ":ClientCertificates:TrustBundle", client.TrustBundle, problems, out var trust) ? trust : null,
            settings.Spiffe is { } spiffe ? CompileSpiffe(section.Path + ":Spiffe", spiffe, problems) : null);
        if (settings.StaticKeys.Enabled)
        {
            HeaderName.TryRead(section.Path + ":StaticKeys:Header", settings.StaticKeys.Header, problems, out _);
        }

        var policy = new InboundOptions(byIss.ToFrozenDictionary(StringComparer.Ordinal), settings.MaxTokenBytes, delegation)
        {
            Certificates = certificates,
            StaticKeyHeader = settings.StaticKeys.Enabled ? settings.StaticKeys.Header : null,
            MaxTokenLifetime = settings.MaxTokenLifetime,
            ClockSkew = settings.ClockSkew,
            PublicOrigins = PublicOrigins.Compile(section.Path + ":PublicOrigins", settings.PublicOrigins, problems),
        };
        return new CompiledInbound(policy, names);
    }

    private static DelegationOptions CompileDelegation(string path, DelegationSettings settings, HashSet<string> issuerNames, ConfigProblems problems)
    {
        if (HeaderName.TryRead(path + ":Header", settings.Header, problems, out _)
            && string.Equals(settings.Header, "Authorization", StringComparison.OrdinalIgnoreCase))
        {
            problems.Add(path + ":Header", "must not be Authorization: that carries the agent's own token");
        }

        for (var i = 0; i < settings.Issuers.Length; i++)
        {
            if (!issuerNames.Contains(settings.Issuers[i]))
            {
                problems.Add($"{path}:Issuers:{i}", $"names issuer '{settings.Issuers[i]}', which is not configured under Gateway:Inbound:Issuers");
            }
        }

        return new DelegationOptions(settings.Header, settings.Issuers.ToFrozenSet(StringComparer.OrdinalIgnoreCase), settings.RequireAuthorizedParty);
    }

    private static SpiffeTrust? CompileSpiffe(string path, SpiffeSettings s, ConfigProblems problems)
    {
        if (s.TrustDomain is null || CertificateIdentity.CheckSpiffeId("spiffe://" + s.TrustDomain, out _) is not null)
        {
            problems.Add(path + ":TrustDomain", "must be a SPIFFE trust domain (lower-case letters, digits, '.', '-', '_')");
            return null;
        }

        var roots = s.X509Bundle is null ? [] : PemBundle.TryRead(path + ":X509Bundle", s.X509Bundle, problems, out var bundle) ? bundle : null;
        Microsoft.IdentityModel.Tokens.JsonWebKeySet? keys = null;
        if (s.JwtBundle is not null)
        {
            if (SecretResolver.TryRead(path + ":JwtBundle", s.JwtBundle, problems, out var json))
            {
                try
                {
                    keys = new Microsoft.IdentityModel.Tokens.JsonWebKeySet(json.Reveal());
                }
                catch (ArgumentException)
                {
                    problems.Add(path + ":JwtBundle", "is not a JWKS document");
                }
            }

            if (s.Audiences.Length == 0)
            {
                problems.Add(path + ":Audiences", "JWT-SVIDs need at least one accepted audience");
            }
        }

        if (s.X509Bundle is null && s.JwtBundle is null)
        {
            problems.Add(path, "set X509Bundle, JwtBundle or both");
        }

        return roots is null ? null : new SpiffeTrust(s.TrustDomain, roots, keys, s.Audiences);
    }
}
