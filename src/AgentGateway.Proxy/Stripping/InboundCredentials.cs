namespace AgentGateway.Proxy.Stripping;

/// <summary>
/// Recognises every credential an agent might bring, so the gateway can remove it before the
/// hop. Names compare case-insensitively and with '_' equal to '-': several servers (CGI-style
/// frameworks among them) fold <c>X_Api_Key</c> into <c>X-Api-Key</c>, so both spellings are the
/// same header to an upstream.
/// </summary>
/// <remarks>
/// The list errs on the side of removing: a header that is not a credential but looks like one
/// is lost to the upstream, whereas a credential that slips through is a leak. Whatever the hop
/// needs, the gateway injects itself.
/// </remarks>
public static class InboundCredentials
{
    /// <summary>Header names that are credentials or identity assertions wherever they appear in the name.</summary>
    private static readonly string[] HeaderFragments =
    [
        "authorization",       // Authorization, Proxy-Authorization, X-Forwarded-Authorization
        "authenticat",         // X-Authenticated-User, X-Goog-Authenticated-User-Email
        "cookie",              // Cookie, Cookie2
        "dpop",
        "api-key", "apikey",   // X-Api-Key, Api-Key, X-Goog-Api-Key, X-Anthropic-Api-Key, OpenAI-Api-Key
        "subscription-key",    // Ocp-Apim-Subscription-Key
        "functions-key",       // X-Functions-Key
        "token",               // X-Auth-Token, X-Access-Token, X-Amz-Security-Token, Private-Token
        "secret", "password", "passwd", "credential",
        "signature",           // HTTP message signatures made with the agent's key
        "client-cert", "clientcert", "ssl-client", "client-verify", "client-dn", "client-s-dn", "x-ssl-",
        "principal",           // X-Ms-Client-Principal (identity asserted by a front end)
        "oidc",                // X-Amzn-Oidc-Accesstoken, -Identity, -Data
        "remote-user", "forwarded-user", "forwarded-email", "forwarded-groups",
        "auth-request",        // X-Auth-Request-User and friends
        "x-auth-",
    ];

    /// <summary>Query parameters that carry credentials (exact names, same folding).</summary>
    private static readonly string[] QueryNames =
    [
        "access-token", "id-token", "refresh-token", "token", "jwt", "bearer", "auth", "authorization",
        "api-key", "apikey", "key", "x-api-key", "client-secret", "password", "sig", "signature",
        "x-amz-security-token", "x-amz-credential", "x-amz-signature", "x-goog-signature", "x-goog-credential",
    ];

    /// <summary>Query-parameter name fragments that are credentials wherever they appear.</summary>
    private static readonly string[] QueryFragments = ["token", "secret", "password", "api-key", "apikey"];

    public static bool IsCredentialHeader(string name)
    {
        Span<char> buffer = stackalloc char[128];
        var folded = Fold(name, buffer);
        foreach (var fragment in HeaderFragments)
        {
            if (folded.Contains(fragment, StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }

    public static bool IsCredentialQueryParameter(string name)
    {
        Span<char> buffer = stackalloc char[128];
        var folded = Fold(name, buffer);
        foreach (var candidate in QueryNames)
        {
            if (folded.SequenceEqual(candidate))
            {
                return true;
            }
        }

        foreach (var fragment in QueryFragments)
        {
            if (folded.Contains(fragment, StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>True when an upstream could read <paramref name="a"/> as header <paramref name="b"/>.</summary>
    public static bool SameHeader(string a, string b)
    {
        if (a.Length != b.Length)
        {
            return false;
        }

        for (var i = 0; i < a.Length; i++)
        {
            if (FoldChar(a[i]) != FoldChar(b[i]))
            {
                return false;
            }
        }

        return true;
    }

    private static ReadOnlySpan<char> Fold(string name, Span<char> buffer)
    {
        // Longer names are folded on the heap; they are rare and still must be checked.
        var target = name.Length <= buffer.Length ? buffer[..name.Length] : new char[name.Length];
        for (var i = 0; i < name.Length; i++)
        {
            target[i] = FoldChar(name[i]);
        }

        return target;
    }

    private static char FoldChar(char c) => c == '_' ? '-' : char.ToLowerInvariant(c);
}
