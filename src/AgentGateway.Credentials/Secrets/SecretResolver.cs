using System.Diagnostics.CodeAnalysis;
using AgentGateway.Configuration;

namespace AgentGateway.Credentials.Secrets;

/// <summary>Resolves <see cref="SecretReference"/>s at configuration load, so a missing secret is a
/// load-time problem with a path, not a request-time surprise.</summary>
public static class SecretResolver
{
    /// <summary>Files larger than this are not secrets; refusing them avoids reading a wrong path whole.</summary>
    private const int MaxSecretFileBytes = 64 * 1024;

    /// <summary>A configured secret reference (<c>env:</c>, <c>file:</c>), parsed and resolved: the one
    /// way a setting holding a secret is read at load. A problem at <paramref name="path"/> says what
    /// is wrong with the reference, never the value.</summary>
    public static bool TryRead(string path, string? reference, ConfigProblems problems, [NotNullWhen(true)] out SecretValue? value)
    {
        value = null;
        if (!SecretReference.TryParse(reference, out var parsed, out var error) || !TryResolve(parsed.Value, out value, out error))
        {
            problems.Add(path, error!);
            return false;
        }

        return value is not null;
    }

    public static bool TryResolve(SecretReference reference, out SecretValue? value, out string? error)
    {
        value = null;
        switch (reference.Store)
        {
            case SecretStore.Environment:
                var text = Environment.GetEnvironmentVariable(reference.Location);
                if (string.IsNullOrEmpty(text))
                {
                    error = $"environment variable '{reference.Location}' is not set or empty";
                    return false;
                }

                value = new SecretValue(text);
                error = null;
                return true;

            case SecretStore.File:
                try
                {
                    var info = new FileInfo(reference.Location);
                    if (!info.Exists)
                    {
                        error = $"secret file '{reference.Location}' does not exist";
                        return false;
                    }

                    if (info.Length > MaxSecretFileBytes)
                    {
                        error = $"secret file '{reference.Location}' is larger than {MaxSecretFileBytes} bytes";
                        return false;
                    }

                    var content = File.ReadAllText(info.FullName).TrimEnd('\r', '\n');
                    if (content.Length == 0)
                    {
                        error = $"secret file '{reference.Location}' is empty";
                        return false;
                    }

                    value = new SecretValue(content);
                    error = null;
                    return true;
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    error = $"secret file '{reference.Location}' cannot be read: {ex.GetType().Name}";
                    return false;
                }

            default:
                error = "unknown secret store";
                return false;
        }
    }
}
