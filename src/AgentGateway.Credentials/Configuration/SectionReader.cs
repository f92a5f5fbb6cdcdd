using System.Reflection;
using Microsoft.Extensions.Configuration;

namespace AgentGateway.Credentials.Configuration;

/// <summary>
/// Binds one configuration section to a settings record and reports, as problems rather than
/// exceptions, the two mistakes operators make most: a misspelt key (which the binder would
/// silently ignore, leaving a safe-looking default in force) and a value of the wrong type.
/// </summary>
public static class SectionReader
{
    public static T Read<T>(IConfigurationSection section, ConfigProblems problems)
        where T : class, new()
    {
        ReportUnknownKeys(section, typeof(T), problems);
        try
        {
            return section.Get<T>() ?? new T();
        }
        catch (InvalidOperationException)
        {
            // The binder's message can quote the offending value; a misplaced secret must not
            // travel into logs that way, so the problem names the section only.
            problems.Add(section.Path, $"a value here cannot be read as {Describe(typeof(T))}; check numbers, times (hh:mm:ss) and lists");
            return new T();
        }
    }

    /// <summary>The children of a section holding named entries (agents, grants, …), in file order.</summary>
    public static IEnumerable<IConfigurationSection> Entries(IConfiguration parent, string key) =>
        parent.GetSection(key).GetChildren();

    private static void ReportUnknownKeys(IConfigurationSection section, Type type, ConfigProblems problems)
    {
        var known = type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.SetMethod is not null)
            .Select(p => p.Name)
            .ToHashSet(StringComparer.OrdinalIgnoreCase);
        foreach (var child in section.GetChildren())
        {
            if (!known.Contains(child.Key))
            {
                problems.Add(child.Path, $"unknown setting '{child.Key}'; expected one of: {string.Join(", ", known.Order())}");
            }
        }
    }

    private static string Describe(Type type) => type.Name.Replace("Settings", string.Empty, StringComparison.Ordinal);
}
