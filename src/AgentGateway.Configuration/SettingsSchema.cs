using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Schema;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace AgentGateway.Configuration;

/// <summary>
/// The JSON Schema of a settings record, as <see cref="JsonSchemaExporter"/> derives it from the
/// record's properties, completed with what the record says in <see cref="SettingAttribute"/>s and
/// with the defaults a new record holds. Nested records named in <c>definitions</c> become
/// references, so each is described once.
/// </summary>
public static class SettingsSchema
{
    /// <summary>Where a shared shape is defined in the schema's <c>definitions</c>.</summary>
    public const string TimeSpanDefinition = "timespan";

    // As the configuration binder reads a section: no unknown key is bound (SectionReader reports
    // them), enums by name. Numbers and booleans stay typed: the schema asks for the JSON types an
    // editor completes, although the binder would also take them as strings.
    private static readonly JsonSerializerOptions Serializer = new()
    {
        TypeInfoResolver = new DefaultJsonTypeInfoResolver(),
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        Converters = { new JsonStringEnumConverter() },
        RespectNullableAnnotations = true,
    };

    /// <param name="type">The settings record.</param>
    /// <param name="definitionOf">The <c>definitions</c> name of a nested record described apart, or null to describe it in place.</param>
    public static JsonObject Describe(Type type, Func<Type, string?> definitionOf)
    {
        ArgumentNullException.ThrowIfNull(type);
        ArgumentNullException.ThrowIfNull(definitionOf);
        var exporter = new JsonSchemaExporterOptions
        {
            TreatNullObliviousAsNonNullable = true,
            TransformSchemaNode = (context, node) => Transform(context, node, type, definitionOf),
        };
        return (JsonObject)Serializer.GetJsonSchemaAsNode(type, exporter);
    }

    /// <summary>A reference to a shape in <c>definitions</c>.</summary>
    public static JsonObject Reference(string definition) => new() { ["$ref"] = "#/definitions/" + definition };

    private static JsonNode Transform(JsonSchemaExporterContext context, JsonNode node, Type root, Func<Type, string?> definitionOf)
    {
        var type = Nullable.GetUnderlyingType(context.TypeInfo.Type) ?? context.TypeInfo.Type;
        if (node is not JsonObject schema)
        {
            return node;
        }

        // A setting left out is the default; an explicit null is nothing an operator means to write.
        if (schema["type"] is JsonArray types && types.Any(t => t?.GetValue<string>() == "null"))
        {
            var rest = types.Select(t => t!.GetValue<string>()).Where(t => t != "null").ToList();
            schema["type"] = rest.Count == 1 ? rest[0] : new JsonArray([.. rest.Select(t => (JsonNode)t)]);
        }

        if (type == typeof(TimeSpan))
        {
            return Reference(TimeSpanDefinition);
        }

        if (context.TypeInfo.Kind != JsonTypeInfoKind.Object)
        {
            return schema;
        }

        if (type != root && definitionOf(type) is { } definition)
        {
            return Reference(definition);
        }

        if (type.GetCustomAttribute<SettingAttribute>(inherit: true) is { } record)
        {
            if (record.Description.Length > 0)
            {
                First(schema, "description", record.Description);
            }

            if (record.Rule is { } rule)
            {
                foreach (var (key, value) in JsonNode.Parse(rule)!.AsObject())
                {
                    schema[key] = value?.DeepClone();
                }
            }
        }

        var defaults = type.IsAbstract ? null : Activator.CreateInstance(type);
        var required = new JsonArray();
        foreach (var property in context.TypeInfo.Properties)
        {
            if (schema["properties"]?[property.Name] is not JsonObject setting)
            {
                continue;
            }

            var attribute = property.AttributeProvider?.GetCustomAttributes(typeof(SettingAttribute), inherit: true).OfType<SettingAttribute>().FirstOrDefault();
            if (attribute is not null)
            {
                setting = Apply(attribute, setting);
                schema["properties"]![property.Name] = setting;
                if (attribute.Required)
                {
                    required.Add(property.Name);
                }
            }

            if (attribute?.Required != true && defaults is not null && Default(property.Get?.Invoke(defaults)) is { } value)
            {
                setting["default"] = value;
            }
        }

        if (required.Count > 0)
        {
            schema["required"] = required;
        }

        return schema;
    }

    private static JsonObject Apply(SettingAttribute attribute, JsonObject setting)
    {
        var list = setting["type"]?.GetValue<string>() == "array";
        var value = list ? (JsonObject)setting["items"]! : setting;
        value = attribute.Format switch
        {
            SettingFormat.SecretReference => Reference("secretReference"),
            SettingFormat.HeaderName => Reference("headerName"),
            SettingFormat.Name => Reference("name"),
            _ => value,
        };
        if (attribute.Format == SettingFormat.Uri)
        {
            value["format"] = "uri";
        }

        if (attribute.Pattern is { } pattern)
        {
            value["pattern"] = pattern;
        }

        if (attribute.AllowedValues is { } allowed)
        {
            value["enum"] = new JsonArray([.. allowed.Select(a => (JsonNode)a)]);
        }

        if (attribute.MinLength > 0)
        {
            value["minLength"] = attribute.MinLength;
        }

        if (list)
        {
            setting["items"] = value;
        }
        else
        {
            setting = value;
        }

        if (attribute.MinItems > 0)
        {
            setting["minItems"] = attribute.MinItems;
        }

        if (attribute.Minimum != long.MinValue)
        {
            setting["minimum"] = attribute.Minimum;
        }

        if (attribute.Maximum != long.MaxValue)
        {
            setting["maximum"] = attribute.Maximum;
        }

        if (attribute.Description.Length > 0)
        {
            First(setting, "description", attribute.Description);
        }

        return setting;
    }

    /// <summary>Puts <paramref name="key"/> first, where a reader of the file looks.</summary>
    private static void First(JsonObject node, string key, string value)
    {
        node.Remove(key);
        node.Insert(0, key, value);
    }

    /// <summary>The default as an operator would write it; none for what has no default (null,
    /// empty lists and maps, nested records, which describe their own).</summary>
    private static JsonNode? Default(object? value) => value switch
    {
        string text => text,
        bool flag => flag,
        int number => number,
        long number => number,
        TimeSpan span => span.ToString("c", System.Globalization.CultureInfo.InvariantCulture),
        Enum choice => choice.ToString(),
        _ => null,
    };
}
