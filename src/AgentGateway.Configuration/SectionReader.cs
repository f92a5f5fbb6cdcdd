using System.Reflection;
using Microsoft.Extensions.Configuration;

namespace AgentGateway.Configuration;

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
            // travel into logs that way. So the binder is asked again, value by value, and each
            // problem names the key and the type it wants, never the value.
            var unreadable = new List<string>();
            ReportUnreadableValues(section, typeof(T), problems, unreadable);
            if (unreadable.Count == 0)
            {
                problems.Add(section.Path, $"a value here cannot be read as {Describe(typeof(T))}; check numbers, times (hh:mm:ss) and lists");
                return new T();
            }

            // The rest is still read, so one bad value does not cascade into "is required" for
            // every setting beside it.
            return ReadAllBut<T>(section, unreadable);
        }
    }

    private static T ReadAllBut<T>(IConfigurationSection section, List<string> unreadable)
        where T : class, new()
    {
        var readable = section.AsEnumerable(makePathsRelative: true)
            .Where(entry => entry.Value is not null && !unreadable.Any(path => IsAtOrUnder(section.Path + ":" + entry.Key, path)));
        try
        {
            return new ConfigurationBuilder().AddInMemoryCollection(readable).Build().Get<T>() ?? new T();
        }
        catch (InvalidOperationException)
        {
            return new T();
        }

        static bool IsAtOrUnder(string key, string path) =>
            key.Equals(path, StringComparison.OrdinalIgnoreCase)
            || (key.StartsWith(path, StringComparison.OrdinalIgnoreCase) && key[path.Length] == ':');
    }

    /// <summary>Reports keys the settings type does not have, here and in nested settings records
    /// (single, in arrays, in dictionaries), where a typo is just as silent.</summary>
    private static void ReportUnknownKeys(IConfigurationSection section, Type type, ConfigProblems problems)
    {
        var properties = Settable(type);
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

    /// <summary>Names every value under <paramref name="section"/> the binder cannot convert to
    /// its property's type, descending through nested records, arrays and dictionaries so the
    /// path ends at the value itself.</summary>
    private static void ReportUnreadableValues(IConfigurationSection section, Type type, ConfigProblems problems, List<string> unreadable)
    {
        var properties = Settable(type);
        foreach (var child in section.GetChildren())
        {
            if (properties.TryGetValue(child.Key, out var property))
            {
                ReportIfUnreadable(child, property.PropertyType, problems, unreadable);
            }
        }
    }

    private static void ReportIfUnreadable(IConfigurationSection section, Type type, ConfigProblems problems, List<string> unreadable)
    {
        try
        {
            section.Get(type);
            return;
        }
        catch (InvalidOperationException)
        {
        }

        var target = Nullable.GetUnderlyingType(type) ?? type;
        if (section.Value is null && ElementType(target) is { } element)
        {
            foreach (var item in section.GetChildren())
            {
                ReportIfUnreadable(item, element, problems, unreadable);
            }
        }
        else if (section.Value is null && target.IsClass && target != typeof(string))
        {
            ReportUnreadableValues(section, target, problems, unreadable);
        }
        else
        {
            problems.Add(section.Path, $"cannot be read as {Expected(target)}");
            unreadable.Add(section.Path);
        }
    }

    /// <summary>What a value of <paramref name="type"/> looks like, in the operator's terms.</summary>
    private static string Expected(Type type) =>
        type == typeof(TimeSpan) ? "a time span (hh:mm:ss)"
        : type == typeof(bool) ? "true or false"
        : type == typeof(Version) ? "a version (1.1, 2.0 or 3.0)"
        : type == typeof(Uri) ? "a URI"
        : type == typeof(DateTimeOffset) || type == typeof(DateTime) ? "a date and time (ISO 8601)"
        : type.IsEnum ? "one of: " + string.Join(", ", Enum.GetNames(type))
        : type == typeof(int) || type == typeof(long) || type == typeof(short) ? "a whole number"
        : type == typeof(double) || type == typeof(decimal) || type == typeof(float) ? "a number"
        : Describe(type);

    /// <summary>The properties the binder can set, by key as configuration spells it (any case).</summary>
    private static Dictionary<string, PropertyInfo> Settable(Type type) =>
        type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.SetMethod is not null)
            .ToDictionary(p => p.Name, StringComparer.OrdinalIgnoreCase);

    private static bool IsSettings(Type type) =>
        type.IsClass && !type.IsArray && !type.IsGenericType && type != typeof(string) && type.Namespace?.StartsWith("AgentGateway", StringComparison.Ordinal) == true;

    private static Type? ElementType(Type type) =>
        type.IsArray ? type.GetElementType()
        : type.IsGenericType && type.GetGenericTypeDefinition() is var definition
            && (definition == typeof(Dictionary<,>) || definition == typeof(IReadOnlyDictionary<,>) || definition == typeof(IDictionary<,>)) ? type.GetGenericArguments()[1]
        : type.IsGenericType && type.GetGenericTypeDefinition() is var list
            && (list == typeof(List<>) || list == typeof(IReadOnlyList<>) || list == typeof(IList<>) || list == typeof(IEnumerable<>)) ? type.GetGenericArguments()[0]
        : null;

    private static string Describe(Type type) => type.Name.Replace("Settings", string.Empty, StringComparison.Ordinal);
}
