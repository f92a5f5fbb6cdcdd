using System.Text.Json;
using System.Text.RegularExpressions;
using AgentGateway.FunctionalTests.Infrastructure;

namespace AgentGateway.FunctionalTests.Configuration;

/// <summary>The README's configuration reference is checked against config/gateway.schema.json
/// (which `validate` checks files against): every setting the schema knows is named in the README,
/// and every <c>Gateway:…</c> path the README names is one the schema knows.</summary>
public sealed partial class SchemaDocumentationTests
{
    private static readonly string Root = Repository.Root;
    private static readonly JsonElement Schema = JsonDocument.Parse(File.ReadAllText(Path.Combine(Root, "config", "gateway.schema.json"))).RootElement;
    private static readonly string Readme = FencedCode().Replace(File.ReadAllText(Path.Combine(Root, "README.md")), "");

    [Fact]
    public void Every_setting_in_the_schema_is_named_in_the_readme()
    {
        var named = InlineCode().Matches(Readme).SelectMany(m => Word().Matches(m.Groups[1].Value)).Select(m => m.Value).ToHashSet(StringComparer.Ordinal);
        var undocumented = new List<string>();
        Walk(Schema.GetProperty("properties").GetProperty("Gateway"), "Gateway", 0, undocumented, named);

        Assert.True(undocumented.Count == 0, "settings in the schema the README never names: " + string.Join(", ", undocumented));
    }

    [Fact]
    public void Every_gateway_path_in_the_readme_is_in_the_schema()
    {
        var paths = GatewayPath().Matches(Readme).Select(m => m.Groups[1].Value).Distinct(StringComparer.Ordinal).ToList();
        Assert.True(paths.Count >= 10, $"expected the README to name settings by path; found {paths.Count}");

        var unknown = paths.Where(path => !Resolves(Schema.GetProperty("properties").GetProperty("Gateway"), path.Split(':').Skip(1))).ToList();

        Assert.True(unknown.Count == 0, "paths the README names that the schema does not know: " + string.Join(", ", unknown));
    }

    private static void Walk(JsonElement node, string path, int depth, List<string> undocumented, HashSet<string> named)
    {
        if (depth > 8)
        {
            return;
        }

        foreach (var (name, child) in Properties(node))
        {
            if (!named.Contains(name))
            {
                undocumented.Add(path + ":" + name);
            }

            Walk(child, path + ":" + name, depth + 1, undocumented, named);
        }
    }

    /// <summary>Follows a path through the schema; a <c>{name}</c> segment stands for a map key.</summary>
    private static bool Resolves(JsonElement node, IEnumerable<string> segments)
    {
        foreach (var segment in segments)
        {
            if (segment.StartsWith('{'))
            {
                continue;
            }

            var next = Properties(node).Where(p => p.Name == segment).Select(p => (JsonElement?)p.Schema).FirstOrDefault();
            if (next is null)
            {
                return false;
            }

            node = next.Value;
        }

        return true;
    }

    /// <summary>The named properties a schema node allows, through <c>$ref</c>, the combinators,
    /// map values (<c>additionalProperties</c>) and array items.</summary>
    private static IEnumerable<(string Name, JsonElement Schema)> Properties(JsonElement node)
    {
        if (node.ValueKind != JsonValueKind.Object)
        {
            yield break;
        }

        if (node.TryGetProperty("$ref", out var reference))
        {
            foreach (var property in Properties(Schema.GetProperty("definitions").GetProperty(reference.GetString()!.Split('/')[^1])))
            {
                yield return property;
            }
        }

        if (node.TryGetProperty("properties", out var properties))
        {
            foreach (var property in properties.EnumerateObject())
            {
                yield return (property.Name, property.Value);
            }
        }

        foreach (var nested in new[] { "allOf", "anyOf", "oneOf" })
        {
            if (node.TryGetProperty(nested, out var options))
            {
                foreach (var property in options.EnumerateArray().SelectMany(Properties))
                {
                    yield return property;
                }
            }
        }

        foreach (var nested in new[] { "additionalProperties", "items" })
        {
            if (node.TryGetProperty(nested, out var inner))
            {
                foreach (var property in Properties(inner))
                {
                    yield return property;
                }
            }
        }
    }

    [GeneratedRegex("```.*?```", RegexOptions.Singleline)]
    private static partial Regex FencedCode();

    [GeneratedRegex("`([^`\n]+)`")]
    private static partial Regex InlineCode();

    [GeneratedRegex("[A-Za-z][A-Za-z0-9]*")]
    private static partial Regex Word();

    [GeneratedRegex(@"`(Gateway(?::[A-Za-z0-9{}]+)+)`")]
    private static partial Regex GatewayPath();
}
