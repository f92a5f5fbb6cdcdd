using System.Text.Json;
using System.Text.Json.Serialization;

namespace AgentGateway.Credentials;

/// <summary>
/// A kind of hop credential: the configuration's <c>Kind</c> value. An open set, like
/// <see cref="HttpMethod"/>: each kind is registered as an <see cref="ICredentialKind"/> and names
/// itself; the kinds below are named here too so that callers can refer to them.
/// </summary>
[JsonConverter(typeof(CredentialKindJsonConverter))]
public readonly record struct CredentialKind
{
    private readonly string? _name;

    public CredentialKind(string name)
    {
        if (!IsValidName(name))
        {
            throw new ArgumentException("a credential kind is a non-empty name of ASCII letters and digits", nameof(name));
        }

        _name = name;
    }

    /// <summary>A static key for the hop, e.g. an LLM provider's API key, put in a configured header.</summary>
    public static CredentialKind ApiKey { get; } = new("ApiKey");

    /// <summary>An OAuth 2.1 client-credentials access token obtained from a token endpoint.</summary>
    public static CredentialKind OAuthClientCredentials { get; } = new("OAuthClientCredentials");

    /// <summary>An RFC 8693 token-exchange (on-behalf-of) token: the delegating user's token
    /// exchanged, with the agent's own token as actor, for a token naming both.</summary>
    public static CredentialKind OAuthTokenExchange { get; } = new("OAuthTokenExchange");

    /// <summary>An MCP server's token: its authorization server discovered from its RFC 9728
    /// metadata (and checked against an allowlist), the token bound to it with RFC 8707.</summary>
    public static CredentialKind McpOAuth { get; } = new("McpOAuth");

    /// <summary>A cloud workload's own identity token — Azure managed identity or a GCP service
    /// account on the metadata server — for HTTP-fronted databases and cloud APIs.</summary>
    public static CredentialKind ManagedIdentity { get; } = new("ManagedIdentity");

    /// <summary>A client certificate the upstream connection presents (mutual TLS), per cluster;
    /// re-read when its files rotate.</summary>
    public static CredentialKind MtlsClientCertificate { get; } = new("MtlsClientCertificate");

    /// <summary>The name; empty only for <c>default</c>.</summary>
    public string Name => _name ?? string.Empty;

    public static bool IsValidName(string? name) =>
        !string.IsNullOrEmpty(name) && name.Length <= 64 && name.All(char.IsAsciiLetterOrDigit);

    public override string ToString() => Name;
}

/// <summary>A kind is written as its name, also as a dictionary key (credential uses per kind).</summary>
internal sealed class CredentialKindJsonConverter : JsonConverter<CredentialKind>
{
    public override CredentialKind Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        new(reader.GetString()!);

    public override void Write(Utf8JsonWriter writer, CredentialKind value, JsonSerializerOptions options) =>
        writer.WriteStringValue(value.Name);

    public override CredentialKind ReadAsPropertyName(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        new(reader.GetString()!);

    public override void WriteAsPropertyName(Utf8JsonWriter writer, CredentialKind value, JsonSerializerOptions options) =>
        writer.WritePropertyName(value.Name);
}
