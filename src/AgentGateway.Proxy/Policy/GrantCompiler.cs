using System.Collections.Frozen;
using System.Globalization;
using AgentGateway.Configuration;
using AgentGateway.Proxy.Routes;
using AgentGateway.Proxy.Inspection;
using Microsoft.Extensions.Configuration;

namespace AgentGateway.Proxy.Policy;

/// <summary>
/// Compiles <c>Gateway:Grants</c>, listing every problem with its path: patterns that cannot
/// match, restrictions the route cannot enforce (a tool list on a route whose bodies are not
/// inspected would silently allow every tool), time zones that do not exist.
/// </summary>
internal static class GrantCompiler
{
    private static readonly FrozenSet<string> HttpMethods = FrozenSet.ToFrozenSet(
        ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"], StringComparer.Ordinal);

    private static readonly Dictionary<string, DayOfWeek> DayNames = new(StringComparer.OrdinalIgnoreCase)
    {
        ["Mon"] = DayOfWeek.Monday,
        ["Tue"] = DayOfWeek.Tuesday,
        ["Wed"] = DayOfWeek.Wednesday,
        ["Thu"] = DayOfWeek.Thursday,
        ["Fri"] = DayOfWeek.Friday,
        ["Sat"] = DayOfWeek.Saturday,
        ["Sun"] = DayOfWeek.Sunday,
    };

    public static FrozenDictionary<string, Grant> Compile(IConfigurationSection section, IReadOnlyDictionary<string, GatewayRoute> routes, ConfigProblems problems)
    {
        var grants = new Dictionary<string, Grant>(StringComparer.OrdinalIgnoreCase);
        foreach (var entry in section.GetChildren())
        {
            var s = SectionReader.Read<GrantSettings>(entry, problems);
            if (s.Routes.Length == 0 && s.Databases is not { Count: > 0 })
            {
                problems.Add(entry.Path + ":Routes", "a grant must open at least one route (or database)");
            }

            for (var i = 0; i < s.Routes.Length; i++)
            {
                if (!routes.ContainsKey(s.Routes[i]))
                {
                    problems.Add($"{entry.Path}:Routes:{i}", $"names route '{s.Routes[i]}', which is not configured under ReverseProxy:Routes");
                }
            }

            var methods = List(entry, "Methods", s.Methods);
            for (var i = 0; i < (methods?.Length ?? 0); i++)
            {
                if (!HttpMethods.Contains(methods![i]))
                {
                    problems.Add($"{entry.Path}:Methods:{i}", $"'{methods[i]}' is not one of: {string.Join(", ", HttpMethods.Order())}");
                }
            }

            // A pattern that only identifiers the gateway refuses could match is a mistake: said at load.
            var paths = Patterns(entry, "Paths", List(entry, "Paths", s.Paths), GlobPattern.ForPath, problems,
                p => !p.StartsWith('/') ? "a path pattern starts with '/'" : Decidable("path", Identifiers.AmbiguousPath(Placeholder(p))));
            var tools = Patterns(entry, "Mcp:Tools", List(entry, "Mcp:Tools", s.Mcp?.Tools), GlobPattern.ForName, problems, McpNames.CheckToolPattern);
            var prompts = Patterns(entry, "Mcp:Prompts", List(entry, "Mcp:Prompts", s.Mcp?.Prompts), GlobPattern.ForPath, problems,
                p => Decidable("prompt name", Identifiers.AmbiguousName(Placeholder(p))));
            var resources = Patterns(entry, "Mcp:Resources", List(entry, "Mcp:Resources", s.Mcp?.Resources), GlobPattern.ForUri, problems,
                p => Decidable("resource URI", Identifiers.AmbiguousUri(Placeholder(p))));
            var serverRequests = ServerRequests(entry, List(entry, "Mcp:ServerRequests", s.Mcp?.ServerRequests), problems);
            var models = Patterns(entry, "Models", List(entry, "Models", s.Models), GlobPattern.ForPath, problems,
                p => Decidable("model name", Identifiers.AmbiguousModel(Placeholder(p))));

            // A restriction on bodies the route does not inspect would be silently void.
            foreach (var routeId in s.Routes)
            {
                if (!routes.TryGetValue(routeId, out var route))
                {
                    continue;
                }

                if (((tools ?? prompts ?? resources) is not null || serverRequests is not null) && route.Inspect != BodyKind.Mcp)
                {
                    problems.Add(entry.Path + ":Mcp", $"route '{routeId}' does not inspect MCP bodies; set its Metadata:Inspect to Mcp");
                }

                if (models is not null && route.Inspect != BodyKind.Llm)
                {
                    problems.Add(entry.Path + ":Models", $"route '{routeId}' does not inspect LLM bodies; set its Metadata:Inspect to Llm");
                }
            }

            RateLimit? rate = null;
            if (s.RateLimit is { } limit)
            {
                if (limit.Requests < 1 || limit.Window < TimeSpan.FromSeconds(1) || limit.Window > TimeSpan.FromDays(1))
                {
                    problems.Add(entry.Path + ":RateLimit", "Requests must be at least 1 and Window between 00:00:01 and 1.00:00:00");
                }
                else
                {
                    rate = new RateLimit(limit.Requests, limit.Window);
                }
            }

            var hours = s.Hours is null ? null : ReadHours(entry.Path + ":Hours", s.Hours, problems);
            foreach (var label in s.Labels)
            {
                if (string.IsNullOrWhiteSpace(label))
                {
                    problems.Add(entry.Path + ":Labels", "a label is a non-empty name");
                }
            }

            grants[entry.Key] = new Grant(
                entry.Key,
                s.Routes.ToFrozenSet(StringComparer.OrdinalIgnoreCase),
                methods?.ToFrozenSet(StringComparer.Ordinal),
                paths,
                tools,
                prompts,
                resources,
                s.Mcp?.FilterToolList ?? true,
                serverRequests,
                models,
                rate,
                s.RequireDelegation,
                hours,
                s.Shadow,
                s.Labels.ToFrozenSet(StringComparer.OrdinalIgnoreCase));
        }

        return grants.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase);
    }

    /// <summary>A pattern with each wildcard standing for one plain character.</summary>
    private static string Placeholder(string pattern) => pattern.Replace("**", "x", StringComparison.Ordinal).Replace("*", "x", StringComparison.Ordinal);

    private static string? Decidable(string kind, string? why) =>
        why is null ? null : $"matches only {kind}s the gateway refuses as ambiguous ({why})";

    private static FrozenSet<string>? ServerRequests(IConfigurationSection entry, string[]? methods, ConfigProblems problems)
    {
        if (methods is null)
        {
            return null;
        }

        for (var i = 0; i < methods.Length; i++)
        {
            if (!ServerMessage.KnownServerRequests.Contains(methods[i]))
            {
                problems.Add(
                    $"{entry.Path}:Mcp:ServerRequests:{i}",
                    $"'{methods[i]}' is not a request an MCP server sends a client; one of: {string.Join(", ", ServerMessage.KnownServerRequests.Order(StringComparer.Ordinal))}");
            }
        }

        return methods.ToFrozenSet(StringComparer.Ordinal);
    }

    /// <summary>The list at <paramref name="key"/> when the key is present — even as an empty list,
    /// which JSON configuration represents as an empty value and the binder as null.</summary>
    private static string[]? List(IConfigurationSection entry, string key, string[]? bound)
    {
        var section = entry.GetSection(key);
        return section.Exists() ? bound ?? [] : null;
    }

    private static GlobPattern[]? Patterns(
        IConfigurationSection entry, string key, string[]? texts, Func<string, GlobPattern> compile, ConfigProblems problems, Func<string, string?> check)
    {
        if (texts is null)
        {
            return null;
        }

        var patterns = new List<GlobPattern>();
        for (var i = 0; i < texts.Length; i++)
        {
            var why = string.IsNullOrEmpty(texts[i]) ? "a pattern is not empty" : check(texts[i]);
            if (why is not null)
            {
                problems.Add($"{entry.Path}:{key}:{i}", why);
                continue;
            }

            patterns.Add(compile(texts[i]));
        }

        return [.. patterns];
    }

    private static TimeWindow[] ReadHours(string path, TimeWindowSettings[] windows, ConfigProblems problems)
    {
        var result = new List<TimeWindow>();
        for (var i = 0; i < windows.Length; i++)
        {
            var w = windows[i];
            var at = $"{path}:{i}";
            var ok = true;
            if (!TimeOnly.TryParseExact(w.From, "HH:mm", CultureInfo.InvariantCulture, DateTimeStyles.None, out var from))
            {
                problems.Add(at + ":From", "must be HH:mm");
                ok = false;
            }

            if (!TimeOnly.TryParseExact(w.To, "HH:mm", CultureInfo.InvariantCulture, DateTimeStyles.None, out var to))
            {
                problems.Add(at + ":To", "must be HH:mm");
                ok = false;
            }

            TimeZoneInfo? zone = null;
            try
            {
                zone = TimeZoneInfo.FindSystemTimeZoneById(w.TimeZone);
            }
            catch (Exception ex) when (ex is TimeZoneNotFoundException or InvalidTimeZoneException)
            {
                problems.Add(at + ":TimeZone", $"'{w.TimeZone}' is not a time zone this machine knows (IANA ids, e.g. Europe/Berlin)");
                ok = false;
            }

            var days = new HashSet<DayOfWeek>();
            foreach (var name in w.Days ?? [.. DayNames.Keys])
            {
                if (DayNames.TryGetValue(name, out var day))
                {
                    days.Add(day);
                }
                else
                {
                    problems.Add(at + ":Days", $"'{name}' is not one of: {string.Join(", ", DayNames.Keys)}");
                    ok = false;
                }
            }

            if (ok)
            {
                result.Add(new TimeWindow(days, from, to, zone!));
            }
        }

        return [.. result];
    }
}
