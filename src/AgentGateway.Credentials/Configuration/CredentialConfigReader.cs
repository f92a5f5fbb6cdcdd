using AgentGateway.Configuration;
using AgentGateway.Credentials.Secrets;

namespace AgentGateway.Credentials.Configuration;

/// <summary>
/// The rules every credential kind shares when it validates its settings (secret references,
/// scopes, token timing, settings the chosen method ignores), each adding its problem with the
/// path it is given. Header names and endpoints are typed values of their own
/// (<see cref="HeaderName"/>, <see cref="HttpEndpoint"/>), shared with the rest of the gateway.
/// </summary>
public static class CredentialConfigReader
{
    /// <summary>A required secret reference (<c>env:</c>, <c>file:</c>); never echoes the text.</summary>
    public static bool TryReadSecret(string path, string? text, ConfigProblems problems, out SecretReference reference)
    {
        if (SecretReference.TryParse(text, out var parsed, out var error))
        {
            reference = parsed.Value;
            return true;
        }

        problems.Add(path, error);
        reference = default;
        return false;
    }

    /// <summary>A setting the chosen method ignores is a mistake to report, not to pass over: the
    /// operator believes it is in force.</summary>
    public static bool Unused(string path, string? value, string why, ConfigProblems problems)
    {
        if (value is null)
        {
            return true;
        }

        problems.Add(path, $"is not used here: {why}");
        return false;
    }

    /// <param name="path">The entry's path; problems are named <c>{path}:Scopes:{i}</c>.</param>
    public static bool CheckScopes(string path, string[] scopes, ConfigProblems problems)
    {
        var ok = true;
        for (var i = 0; i < scopes.Length; i++)
        {
            if (string.IsNullOrWhiteSpace(scopes[i]) || scopes[i].Any(char.IsWhiteSpace))
            {
                problems.Add($"{path}:Scopes:{i}", "a scope is one non-empty word without spaces");
                ok = false;
            }
        }

        return ok;
    }

    /// <summary>The bounds every fetched token shares: how early it stops being served, how long a fetch may take.</summary>
    /// <param name="path">The entry's path.</param>
    public static bool CheckTokenTiming(string path, TimeSpan refreshBeforeExpiry, TimeSpan timeout, ConfigProblems problems)
    {
        var ok = true;
        if (refreshBeforeExpiry < TimeSpan.Zero || refreshBeforeExpiry > TimeSpan.FromHours(1))
        {
            problems.Add(path + ":RefreshBeforeExpiry", "must be between 00:00:00 and 01:00:00");
            ok = false;
        }

        if (timeout <= TimeSpan.Zero || timeout > TimeSpan.FromMinutes(2))
        {
            problems.Add(path + ":Timeout", "must be greater than zero and at most 00:02:00");
            ok = false;
        }

        return ok;
    }
}
