using AgentGateway.Configuration;
using Microsoft.Extensions.Configuration;

namespace AgentGateway.Proxy.Policy;

/// <summary>
/// Compiles <c>Gateway:Policy</c> against the compiled grants, listing every problem with its
/// path: body and event limits out of range, the task header, separation rules naming neither a
/// grant nor a grant label.
/// </summary>
internal static class PolicyCompiler
{
    public static PolicyOptions Compile(IConfigurationSection section, IReadOnlyDictionary<string, Grant> grants, ConfigProblems problems)
    {
        var s = SectionReader.Read<PolicySettings>(section, problems);
        if (s.MaxInspectedBodyBytes is < 1024 or > 64 * 1024 * 1024)
        {
            problems.Add(section.Path + ":MaxInspectedBodyBytes", "must be between 1024 and 67108864");
        }

        if (s.MaxServerEventBytes is < 1024 or > 64 * 1024 * 1024)
        {
            problems.Add(section.Path + ":MaxServerEventBytes", "must be between 1024 and 67108864");
        }

        HeaderName.TryRead(section.Path + ":Task:Header", s.Task.Header, problems, out _);
        if (s.Task.Ttl < TimeSpan.FromMinutes(1) || s.Task.Ttl > TimeSpan.FromDays(7))
        {
            problems.Add(section.Path + ":Task:Ttl", "must be between 00:01:00 and 7.00:00:00");
        }

        var names = grants.Values.SelectMany(g => g.Labels.Append(g.Name)).ToHashSet(StringComparer.OrdinalIgnoreCase);
        var rules = new List<SeparationRule>();
        foreach (var entry in section.GetSection("Separation").GetChildren())
        {
            var rule = SectionReader.Read<SeparationRuleSettings>(entry, problems);
            if (rule.After.Length == 0 || rule.Deny.Length == 0)
            {
                problems.Add(entry.Path, "a separation rule needs After and Deny");
            }

            foreach (var (list, key) in new[] { (rule.After, "After"), (rule.Deny, "Deny") })
            {
                for (var i = 0; i < list.Length; i++)
                {
                    if (!names.Contains(list[i]))
                    {
                        problems.Add($"{entry.Path}:{key}:{i}", $"'{list[i]}' is neither a grant nor a grant label");
                    }
                }
            }

            rules.Add(new SeparationRule(entry.Key, rule.After, rule.Deny, rule.Shadow, rule.RequireTask));
        }

        return new PolicyOptions(s.MaxInspectedBodyBytes, s.MaxServerEventBytes, s.Task.Header, s.Task.Claim, s.Task.Ttl, rules);
    }
}
