using System.Collections.Frozen;
using AgentGateway.Configuration;
using AgentGateway.Credentials;
using AgentGateway.Proxy.Identity;
using AgentGateway.Proxy.Policy;
using Microsoft.Extensions.Configuration;

namespace AgentGateway.Proxy.Inventory;

/// <summary>
/// Compiles <c>Gateway:Agents</c> into the <see cref="AgentDirectory"/>: each agent's owner, grants
/// (by name, from <c>Gateway:Grants</c>) and identities (each of exactly one kind, owned by one
/// agent), and the classes whose matching identities are instances of an agent.
/// </summary>
public static class AgentDirectoryCompiler
{
    public static AgentDirectory Compile(IConfigurationSection section, IReadOnlySet<string> issuerNames, FrozenDictionary<string, Grant> grants, ConfigProblems problems)
    {
        var byIdentity = new Dictionary<AgentIdentityKey, Agent>();
        var byId = new Dictionary<string, Agent>(StringComparer.OrdinalIgnoreCase);
        var classes = new List<AgentClass>();
        var canonicalIssuer = issuerNames.ToDictionary(n => n, n => n, StringComparer.OrdinalIgnoreCase);
        foreach (var entry in section.GetChildren())
        {
            if (!CredentialName.IsValid(entry.Key))
            {
                problems.Add(entry.Path, $"agent id '{entry.Key}' must be letters, digits, '-', '_' or '.'");
                continue;
            }

            var s = SectionReader.Read<AgentSettings>(entry, problems);
            if (string.IsNullOrWhiteSpace(s.Owner))
            {
                problems.Add(entry.Path + ":Owner", "is required: every agent has someone who answers for it");
            }

            if (s.Identities.Length == 0 && s.Class is null)
            {
                problems.Add(entry.Path + ":Identities", "at least one identity is required, or the agent can never be recognised");
            }

            var agentGrants = new List<Grant>();
            for (var i = 0; i < s.Grants.Length; i++)
            {
                if (!grants.TryGetValue(s.Grants[i], out var grant))
                {
                    problems.Add($"{entry.Path}:Grants:{i}", $"names grant '{s.Grants[i]}', which is not configured under Gateway:Grants");
                    continue;
                }

                agentGrants.Add(grant);
            }

            var identities = new List<AgentIdentityKey>();
            for (var i = 0; i < s.Identities.Length; i++)
            {
                var identity = s.Identities[i];
                var path = $"{entry.Path}:Identities:{i}";
                if (CompileIdentity(identity, path, canonicalIssuer, problems) is not { } key)
                {
                    continue;
                }

                var (issuerName, subjectName) = (key.Issuer, key.Subject);
                if (byIdentity.TryGetValue(key, out var other) || identities.Contains(key))
                {
                    problems.Add(path, $"identity ({issuerName}, {subjectName}) already belongs to agent '{other?.Id ?? entry.Key}'");
                    continue;
                }

                identities.Add(key);
            }

            var agent = Agent.Create(entry.Key, s.Owner ?? string.Empty, s.Description, s.ExpiresAt, s.Grants, agentGrants) with
            {
                Identities = identities,
                RequireDpop = s.RequireDpop,
            };
            byId[entry.Key] = agent;
            foreach (var key in identities)
            {
                byIdentity[key] = agent;
            }

            if (s.Class is { } agentClass && CompileClass(entry.Path + ":Class", agentClass, agent, canonicalIssuer, problems) is { } compiled)
            {
                classes.Add(compiled);
            }
        }

        return new AgentDirectory(byIdentity.ToFrozenDictionary(), byId.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase)) { Classes = classes };
    }

    private static AgentClass? CompileClass(string path, AgentClassSettings s, Agent agent, Dictionary<string, string> issuers, ConfigProblems problems)
    {
        if (s.InstanceIdleTimeout < TimeSpan.FromMinutes(1))
        {
            problems.Add(path + ":InstanceIdleTimeout", "must be at least 00:01:00");
        }

        if (s.SpiffePrefix is { } prefix)
        {
            if (s.Issuer is not null || s.SubjectPattern is not null || !prefix.EndsWith('/') || CertificateIdentity.CheckSpiffeId(prefix.TrimEnd('/'), out _) is not null)
            {
                problems.Add(path + ":SpiffePrefix", "must be a SPIFFE ID ending with '/', and alone (no Issuer, no SubjectPattern)");
                return null;
            }

            return new AgentClass(agent, CertificateIdentity.SpiffeIssuer, null, prefix, s.InstanceIdleTimeout);
        }

        if (s.Issuer is null || !issuers.TryGetValue(s.Issuer, out var issuer))
        {
            problems.Add(path + ":Issuer", $"names issuer '{s.Issuer}', which is not configured under Gateway:Inbound:Issuers");
            return null;
        }

        if (string.IsNullOrEmpty(s.SubjectPattern) || s.SubjectPattern == "*")
        {
            problems.Add(path + ":SubjectPattern", "is required, and narrower than '*': a class is a family of agents, not the whole issuer");
            return null;
        }

        return new AgentClass(agent, issuer, GlobPattern.ForName(s.SubjectPattern), null, s.InstanceIdleTimeout);
    }

    /// <summary>One identity, of exactly one kind: (issuer, subject), a SPIFFE ID, a certificate
    /// thumbprint or SAN, or a static key's hash.</summary>
    private static AgentIdentityKey? CompileIdentity(AgentIdentitySettings identity, string path, Dictionary<string, string> issuers, ConfigProblems problems)
    {
        var kinds = new[] { identity.Issuer ?? identity.Subject, identity.Spiffe, identity.CertificateThumbprint, identity.CertificateSan, identity.StaticKeySha256 }.Count(v => v is not null);
        if (kinds != 1)
        {
            problems.Add(path, "an identity is one of: Issuer + Subject, Spiffe, CertificateThumbprint, CertificateSan, StaticKeySha256");
            return null;
        }

        if (identity.Spiffe is { } spiffe)
        {
            if (CertificateIdentity.CheckSpiffeId(spiffe, out _) is { } why)
            {
                problems.Add(path + ":Spiffe", why);
                return null;
            }

            return new AgentIdentityKey(CertificateIdentity.SpiffeIssuer, spiffe);
        }

        if (identity.CertificateThumbprint is { } thumbprint)
        {
            var hex = thumbprint.Replace(":", "", StringComparison.Ordinal).ToUpperInvariant();
            if (hex.Length != 64 || !hex.All(char.IsAsciiHexDigit))
            {
                problems.Add(path + ":CertificateThumbprint", "must be a SHA-256 thumbprint: 64 hex digits");
                return null;
            }

            return new AgentIdentityKey(CertificateIdentity.ThumbprintIssuer, hex);
        }

        if (identity.CertificateSan is { } san)
        {
            var colon = san.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0 || san[..colon] is not ("dns" or "uri" or "email" or "ip") || colon == san.Length - 1)
            {
                problems.Add(path + ":CertificateSan", "must be dns:…, uri:…, email:… or ip:…");
                return null;
            }

            return new AgentIdentityKey(CertificateIdentity.SanIssuer, san);
        }

        if (identity.StaticKeySha256 is { } hash)
        {
            var hex = hash.ToLowerInvariant();
            if (hex.Length != 64 || !hex.All(char.IsAsciiHexDigit))
            {
                problems.Add(path + ":StaticKeySha256", "must be the key's SHA-256: 64 hex digits (e.g. printf %s \"$KEY\" | sha256sum)");
                return null;
            }

            return new AgentIdentityKey(StaticKeys.Issuer, hex);
        }

        if (identity.Issuer is null || !issuers.TryGetValue(identity.Issuer, out var issuerName))
        {
            problems.Add(path + ":Issuer", $"names issuer '{identity.Issuer}', which is not configured under Gateway:Inbound:Issuers");
            return null;
        }

        if (string.IsNullOrEmpty(identity.Subject))
        {
            problems.Add(path + ":Subject", "is required: the agent claim's value");
            return null;
        }

        return new AgentIdentityKey(issuerName, identity.Subject);
    }
}
