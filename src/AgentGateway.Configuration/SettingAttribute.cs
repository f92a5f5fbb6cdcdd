namespace AgentGateway.Configuration;

/// <summary>
/// What <c>config/gateway.schema.json</c> says about a setting beyond its type: the text editors
/// show and the shape <c>validate</c> checks a file against before the loader runs. The schema is
/// generated from the settings records (<c>agentgateway schema</c>), so this is the one place each
/// of these is written. The loader does not read it: every rule here is also checked at load,
/// with the setting's path, by the feature that compiles the section.
/// </summary>
/// <remarks>On a list, <see cref="Pattern"/>, <see cref="AllowedValues"/>, <see cref="Format"/>
/// and <see cref="MinLength"/> apply to each entry.</remarks>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Class, Inherited = true)]
public sealed class SettingAttribute(string description = "") : Attribute
{
    /// <summary>For operators: what the setting does, its limits and its default when not obvious.</summary>
    public string Description { get; } = description;

    /// <summary>The section is incomplete without it.</summary>
    public bool Required { get; set; }

    /// <summary>A regular expression the value must match (ECMAScript, as JSON Schema has it).</summary>
    public string? Pattern { get; set; }

    /// <summary>The only values accepted, spelt as the loader compares them.</summary>
    public string[]? AllowedValues { get; set; }

    public SettingFormat Format { get; set; }

    /// <summary>Lowest number accepted; <see cref="long.MinValue"/> for none.</summary>
    public long Minimum { get; set; } = long.MinValue;

    /// <summary>Highest number accepted; <see cref="long.MaxValue"/> for none.</summary>
    public long Maximum { get; set; } = long.MaxValue;

    /// <summary>A list needs at least this many entries.</summary>
    public int MinItems { get; set; }

    /// <summary>A text needs at least this many characters.</summary>
    public int MinLength { get; set; }

    /// <summary>On a settings record: a JSON Schema object merged into its node, for rules across
    /// settings (one of two ways to name an issuer, a secret or a private key).</summary>
    public string? Rule { get; set; }
}

/// <summary>Shapes shared by settings of many sections; the schema defines each once.</summary>
public enum SettingFormat
{
    None,

    /// <summary><c>env:NAME</c> or <c>file:PATH</c>, never the secret itself.</summary>
    SecretReference,

    /// <summary>An HTTP header name (an RFC 9110 token).</summary>
    HeaderName,

    /// <summary>An absolute URI.</summary>
    Uri,

    /// <summary>A name other settings refer to (<c>[A-Za-z0-9._-]</c>, up to 128).</summary>
    Name,
}
