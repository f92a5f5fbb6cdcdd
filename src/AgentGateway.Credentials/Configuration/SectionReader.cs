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

    /// <summary>Reports keys the settings type does not have, here and in nested settings records
    /// (single, in arrays, in dictionaries), where a typo is just as silent.</summary>
    private static void ReportUnknownKeys(IConfigurationSection section, Type type, ConfigProblems problems)
    {
        var properties = type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.SetMethod is not null)
            .ToDictionary(p => p.Name, StringComparer.OrdinalIgnoreCase);
        foreach (var child in section.GetChildren())
        {
            if (!properties.TryGetValue(child.Key, out var property))
            {
                problems.Add(child.Path, $"unknown setting '{child.Key}'; expected one of: {string.Join(", ", properties.Keys.Order())}");
                continue;
            }

            var propertyType = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            if (IsSettings(propertyType))
            {
                ReportUnknownKeys(child, propertyType, problems);
            }
            else if (ElementType(propertyType) is { } element && IsSettings(element))
            {
                foreach (var item in child.GetChildren())
                {
                    ReportUnknownKeys(item, element, problems);
                }
            }
        }
    }

    private static bool IsSettings(Type type) =>
        type.IsClass && !type.IsArray && !type.IsGenericType && type != typeof(string) && type.Namespace?.StartsWith("AgentGateway", StringComparison.Ordinal) == true;

    private static Type? ElementType(Type type) =>
        type.IsArray ? type.GetElementType()
        : type.IsGenericType && type.GetGenericTypeDefinition() == typeof(Dictionary<,>) ? type.GetGenericArguments()[1]
        : null;

    private static string Describe(Type type) => type.Name.Replace("Settings", string.Empty, StringComparison.Ordinal);
}
