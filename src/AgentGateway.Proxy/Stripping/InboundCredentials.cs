namespace AgentGateway.Proxy.Stripping;

/// <summary>
/// Recognises every credential an agent might bring, so the gateway can remove it before the
/// hop. Names are compared folded (<see cref="NamePatterns"/>): case-insensitively and with every
/// punctuation character read as '-', since several servers (CGI-style frameworks among them) fold
/// <c>X_Api_Key</c> and <c>X.Api.Key</c> into <c>X-Api-Key</c>, so all are the same header to an upstream.
/// </summary>
/// <remarks>
/// The list errs on the side of removing: a header that is not a credential but looks like one
/// is lost to the upstream, whereas a credential that slips through is a leak. Whatever the hop
/// needs, the gateway injects itself. Identity assertions of proxies and identity providers are
/// in <see cref="UntrustedHeaders"/>; a route that wants certainty forwards only the headers it
/// names (<see cref="ForwardHeaders"/>).
/// </remarks>
public static class InboundCredentials
{
    /// <summary>Header names that are credentials wherever the pattern appears in the name.</summary>
    internal static readonly string[] HeaderPatterns =
    [
        "authorization",       // Authorization, Proxy-Authorization, X-Forwarded-Authorization, X-Serverless-Authorization
        "authenticat",         // X-Authenticated-User, X-Goog-Authenticated-User-Email
        "-auth:", ":auth:",    // X-Auth, Gap-Auth
        "cookie",              // Cookie, Cookie2
        "dpop",
        "api-key", "apikey",   // X-Api-Key, Api-Key, X-Goog-Api-Key, X-Anthropic-Api-Key, OpenAI-Api-Key
        "subscription-key",    // Ocp-Apim-Subscription-Key
        "functions-key",       // X-Functions-Key
        "access-key", "accesskey", "private-key",
        "token",               // X-Auth-Token, X-Access-Token, X-Amz-Security-Token, Private-Token, X-Ms-Token-Aad-Id-Token
        "bearer", "jwt",       // X-Jwt, X-Pomerium-Jwt-Assertion, Cf-Access-Jwt-Assertion
        "assertion", "saml",   // X-Goog-Iap-Jwt-Assertion, X-JWT-Assertion (WSO2), SAML assertions
        "secret", "password", "passwd", "credential",
        "signature",           // HTTP message signatures made with the agent's key
        "client-cert", "clientcert", "ssl-client", "client-verify", "client-dn", "client-s-dn", ":x-ssl-",
        "principal",           // X-Ms-Client-Principal (identity asserted by a front end)
        "oidc",                // X-Amzn-Oidc-Accesstoken, -Identity, -Data
    ];

    private static readonly NamePatterns Headers = new(HeaderPatterns);

    /// <summary>Query parameters that carry credentials: exact names (anchored) and names containing a fragment.</summary>
    private static readonly NamePatterns Query = new(
    [
        ":access-token:", ":id-token:", ":refresh-token:", ":token:", ":jwt:", ":bearer:", ":auth:", ":authorization:",
        ":api-key:", ":apikey:", ":key:", ":x-api-key:", ":client-secret:", ":password:", ":sig:", ":signature:",
        ":x-amz-security-token:", ":x-amz-credential:", ":x-amz-signature:", ":x-goog-signature:", ":x-goog-credential:",
        "token", "secret", "password", "passwd", "api-key", "apikey", "credential", "jwt", "assertion", "signature",
    ]);

    public static bool IsCredentialHeader(string name) => Headers.Matches(name);

    public static bool IsCredentialQueryParameter(string name) => Query.Matches(name);

    /// <summary>True when an upstream could read <paramref name="a"/> as header <paramref name="b"/>.</summary>
    public static bool SameHeader(string a, string b) => NamePatterns.SameName(a, b);
}
