using System.Collections.Frozen;
using AgentGateway.Configuration;
using AgentGateway.Proxy.Identity;
using AgentGateway.Proxy.Policy;
using Microsoft.Extensions.Configuration;

namespace AgentGateway.Proxy.Inventory;

/// <summary>
/// Compiles <c>Gateway:Admin</c>: who may call the admin API (an issuer from
/// <c>Gateway:Inbound:Issuers</c> and its operators), dormancy, public origins and the templates
/// of just-in-time registration, whose grants and issuers must exist.
/// </summary>
public static class AdminCompiler
{
    public static AdminOptions Compile(IConfigurationSection section, IReadOnlySet<string> issuers, FrozenDictionary<string, Grant> grants, ConfigProblems problems)
    {
        var s = SectionReader.Read<AdminSettings>(section, problems);
        if (s.Urls is not null)
        {
            // An admin API nobody can authenticate to would be either useless or open: refuse both.
            if (s.Issuer is null || !issuers.Contains(s.Issuer))
            {
                problems.Add(section.Path + ":Issuer", "must name a Gateway:Inbound:Issuers entry whose tokens operators present");
            }

            if (s.Subjects.Length == 0)
            {
                problems.Add(section.Path + ":Subjects", "name at least one operator (a value of the issuer's agent claim)");
            }
        }

        if (s.DormantAfter < TimeSpan.FromMinutes(1))
        {
            problems.Add(section.Path + ":DormantAfter", "must be at least 00:01:00");
        }

        if (s.RevocationsMaxAge < TimeSpan.FromSeconds(1) || s.RevocationsMaxAge > TimeSpan.FromMinutes(5))
        {
            // Shorter, and one slow read refuses every agent; longer, and a replica cut off from
            // Redis serves revoked agents for that long.
            problems.Add(section.Path + ":RevocationsMaxAge", "must be between 00:00:01 and 00:05:00");
        }

        var templates = new Dictionary<string, AgentTemplate>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, template) in s.Templates)
        {
            var path = $"{section.Path}:Templates:{name}";
            for (var i = 0; i < template.Grants.Length; i++)
            {
                if (!grants.ContainsKey(template.Grants[i]))
                {
                    problems.Add($"{path}:Grants:{i}", $"names grant '{template.Grants[i]}', which is not configured under Gateway:Grants");
                }
            }

            for (var i = 0; i < template.Issuers.Length; i++)
            {
                if (!issuers.Contains(template.Issuers[i]))
                {
                    problems.Add($"{path}:Issuers:{i}", $"names issuer '{template.Issuers[i]}', which is not configured under Gateway:Inbound:Issuers");
                }
            }

            if (template.MaxTimeToLive < TimeSpan.FromMinutes(1) || template.MaxTimeToLive > TimeSpan.FromDays(1))
            {
                problems.Add(path + ":MaxTimeToLive", "must be between 00:01:00 and 1.00:00:00: ephemeral agents are short-lived");
            }

            templates[name] = new AgentTemplate(
                name,
                template.Grants.ToFrozenSet(StringComparer.OrdinalIgnoreCase),
                template.Issuers.ToFrozenSet(StringComparer.OrdinalIgnoreCase),
                template.MaxTimeToLive);
        }

        return new AdminOptions(s.Issuer, s.Subjects.ToFrozenSet(StringComparer.Ordinal), s.DormantAfter)
        {
            Templates = templates.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase),
            RequireDpop = s.RequireDpop,
            RevocationsMaxAge = s.RevocationsMaxAge,
            PublicOrigins = PublicOrigins.Compile(section.Path + ":PublicOrigins", s.PublicOrigins, problems),
        };
    }
}
