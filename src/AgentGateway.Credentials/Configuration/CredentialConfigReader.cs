using System.Net;
using AgentGateway.Credentials.Secrets;

namespace AgentGateway.Credentials.Configuration;

/// <summary>
/// The rules every credential kind shares when it validates its settings (secret references,
/// header names, scopes, token timing, endpoints), each adding its problem with the path it is
/// given. <see cref="TryReadEndpoint"/> also serves the gateway's other readers.
/// </summary>
public static class CredentialConfigReader
{
    /// <summary>Token endpoints receive client secrets: HTTPS only, except on the loopback interface
    /// (a local identity provider or a test), where there is no network to protect.</summary>
    public static bool TryReadEndpoint(string path, string? text, ConfigProblems problems, out Uri? endpoint)
    {
        endpoint = null;
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttps && uri.Scheme != Uri.UriSchemeHttp))
        {
            problems.Add(path, "must be an absolute http(s) URL");
            return false;
        }

        if (uri.Scheme == Uri.UriSchemeHttp && !IsLoopback(uri))
        {
            problems.Add(path, "must use https (plain http is allowed only for loopback addresses)");
            return false;
        }

        if (!string.IsNullOrEmpty(uri.UserInfo))
        {
            problems.Add(path, "must not carry user information");
            return false;
        }

        endpoint = uri;
        return true;
    }

    public static bool IsLoopback(Uri uri) =>
        uri.IsLoopback || (IPAddress.TryParse(uri.DnsSafeHost, out var ip) && IPAddress.IsLoopback(ip));

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

    public static bool CheckHeaderName(string path, string? header, ConfigProblems problems)
    {
        // RFC 9110 token characters; anything else could split or smuggle headers.
        if (string.IsNullOrEmpty(header) || !header.All(c => char.IsAsciiLetterOrDigit(c) || "!#$%&'*+-.^_`|~".Contains(c)))
        {
            problems.Add(path, "must be a valid HTTP header name");
            return false;
        }

        return true;
    }
}
