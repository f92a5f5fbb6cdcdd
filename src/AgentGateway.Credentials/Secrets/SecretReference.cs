using System.Diagnostics.CodeAnalysis;

namespace AgentGateway.Credentials.Secrets;

/// <summary>
/// Where a secret lives: <c>env:NAME</c> (an environment variable) or <c>file:PATH</c> (a file,
/// e.g. a mounted Kubernetes secret; trailing line breaks are trimmed). Configuration holds
/// only references, never the secret itself, so config files can be reviewed and committed.
/// </summary>
public readonly record struct SecretReference(SecretStore Store, string Location)
{
    public static bool TryParse(string? text, [NotNullWhen(true)] out SecretReference? reference, [NotNullWhen(false)] out string? error)
    {
        reference = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "a secret reference is required: 'env:NAME' or 'file:PATH'";
            return false;
        }

        if (text.StartsWith("env:", StringComparison.Ordinal) && text.Length > 4)
        {
            reference = new SecretReference(SecretStore.Environment, text[4..]);
        }
        else if (text.StartsWith("file:", StringComparison.Ordinal) && text.Length > 5)
        {
            reference = new SecretReference(SecretStore.File, text[5..]);
        }

        // Deliberately does not echo the text: a value that is not a reference is most likely
        // the secret itself, pasted where its reference belongs.
        error = reference is null ? "must be a secret reference ('env:NAME' or 'file:PATH'), never the secret itself" : null;
        return reference is not null;
    }

    public override string ToString() => Store == SecretStore.Environment ? $"env:{Location}" : $"file:{Location}";
}

public enum SecretStore
{
    Environment,
    File,
}
