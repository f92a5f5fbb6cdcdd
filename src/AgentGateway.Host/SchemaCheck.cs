using System.Text.Json;
using NJsonSchema;

namespace AgentGateway.Host;

/// <summary>Checks a configuration file against <c>config/gateway.schema.json</c> (embedded in the
/// command): the shape editors complete from. The loader's semantic rules run after it and go
/// further (cross-references, secrets, keys); this catches misspelt and misplaced settings in the
/// operator's own words, with the path of each.</summary>
internal static class SchemaCheck
{
    private static readonly Lazy<Task<JsonSchema>> Schema = new(LoadAsync);

    /// <summary>The problems, as "path: what" lines; empty when the file fits the schema.</summary>
    public static async Task<IReadOnlyList<string>> CheckAsync(string file)
    {
        string json;
        try
        {
            // The configuration allows comments and trailing commas; the schema validator does not.
            using var document = JsonDocument.Parse(await File.ReadAllTextAsync(file), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
            json = document.RootElement.GetRawText();
        }
        catch (JsonException)
        {
            return []; // the configuration loader reports unreadable JSON with its position
        }

        var schema = await Schema.Value;
        return [.. schema.Validate(json).SelectMany(Leaves).Select(e => $"{Path(e.Path)}: {Describe(e.Kind)}").Distinct()];
    }

    /// <summary>An entry of a named map (an agent, a grant) that does not fit is reported by the
    /// validator at the entry; what is wrong inside it sits in its child errors. Those name the
    /// setting itself. (The branches of a one-of are left whole: each branch's errors would be noise.)</summary>
    private static IEnumerable<NJsonSchema.Validation.ValidationError> Leaves(NJsonSchema.Validation.ValidationError error) =>
        error is NJsonSchema.Validation.ChildSchemaValidationError { Kind: NJsonSchema.Validation.ValidationErrorKind.AdditionalPropertiesNotValid } child
            && child.Errors.Values.Any(e => e.Count > 0)
            ? child.Errors.Values.SelectMany(e => e).SelectMany(Leaves)
            : [error];

    private static async Task<JsonSchema> LoadAsync()
    {
        await using var stream = typeof(SchemaCheck).Assembly.GetManifestResourceStream("gateway.schema.json")
            ?? throw new InvalidOperationException("the configuration schema is not embedded");
        using var reader = new StreamReader(stream);
        return await JsonSchema.FromJsonAsync(await reader.ReadToEndAsync());
    }

    /// <summary>"#/Gateway.Inbound.ClockSkew" → "Gateway:Inbound:ClockSkew", the configuration's own notation.</summary>
    private static string Path(string? path) => string.IsNullOrEmpty(path) ? "(root)" : path.TrimStart('#', '/').Replace('.', ':').Replace("[", ":", StringComparison.Ordinal).Replace("]", "", StringComparison.Ordinal);

    private static string Describe(NJsonSchema.Validation.ValidationErrorKind kind) => kind switch
    {
        NJsonSchema.Validation.ValidationErrorKind.NoAdditionalPropertiesAllowed => "unknown setting",
        NJsonSchema.Validation.ValidationErrorKind.AdditionalPropertiesNotValid => "has a setting this kind does not know, or a value of the wrong shape",
        NJsonSchema.Validation.ValidationErrorKind.PropertyRequired => "a required setting is missing",
        NJsonSchema.Validation.ValidationErrorKind.PatternMismatch => "does not have the expected format",
        NJsonSchema.Validation.ValidationErrorKind.NotInEnumeration => "is not one of the allowed values",
        NJsonSchema.Validation.ValidationErrorKind.IntegerExpected => "is not a whole number",
        NJsonSchema.Validation.ValidationErrorKind.NumberTooSmall => "is below the lowest value allowed",
        NJsonSchema.Validation.ValidationErrorKind.NumberTooBig => "is above the highest value allowed",
        NJsonSchema.Validation.ValidationErrorKind.TooFewItems => "has fewer entries than required",
        NJsonSchema.Validation.ValidationErrorKind.ArrayItemNotValid => "has an entry that is not allowed here",
        NJsonSchema.Validation.ValidationErrorKind.NumberExpected => "is not a number",
        NJsonSchema.Validation.ValidationErrorKind.BooleanExpected => "is not true or false",
        NJsonSchema.Validation.ValidationErrorKind.StringExpected => "is not a string",
        NJsonSchema.Validation.ValidationErrorKind.ArrayExpected => "is not a list",
        NJsonSchema.Validation.ValidationErrorKind.ObjectExpected => "is not an object",
        NJsonSchema.Validation.ValidationErrorKind.DateTimeExpected => "is not a date and time (ISO 8601)",
        NJsonSchema.Validation.ValidationErrorKind.UriExpected => "is not a URI",
        _ => "does not fit the schema (" + kind + ")",
    };
}
