namespace AgentGateway.Credentials;

/// <summary>Rules for the names operators give credentials (and routes refer to).</summary>
public static class CredentialName
{
    /// <summary>The route metadata value meaning "this hop needs no credential". The agent's own
    /// credentials are still stripped.</summary>
    public const string None = "none";

    public static bool IsValid(string? name) =>
        !string.IsNullOrEmpty(name) && name.Length <= 128 &&
        name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');
}
