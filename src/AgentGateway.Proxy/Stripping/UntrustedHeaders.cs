namespace AgentGateway.Proxy.Stripping;

/// <summary>
/// Headers an agent must not be able to set for the upstream even though they are not its
/// credentials: identity that a proxy or identity provider in front of an upstream asserts (the
/// upstream believes them because "only the proxy can set them" — the gateway is now that proxy),
/// claims about the client or the original request, instructions to proxies on the way, and
/// requests to reinterpret the method (policy decided on the real one). Matched by family, in every
/// folded spelling (<see cref="NamePatterns"/>); the families below are those of the common proxies
/// and identity providers, and a route that wants certainty forwards only what it names
/// (<see cref="ForwardHeaders"/>).
/// </summary>
public static class UntrustedHeaders
{
    internal static readonly string[] HeaderPatterns =
    [
        // Identity asserted by a forward-auth proxy or identity-aware proxy.
        ":x-auth-", "auth-request",                                     // oauth2-proxy X-Auth-Request-User/-Email/-Groups/-Access-Token; Keycloak gatekeeper X-Auth-*
        ":remote-", ":x-remote-",                                       // Authelia, Traefik and Caddy forward-auth Remote-User/-Groups/-Email/-Name; Kubernetes front proxy X-Remote-User/-Group/-Extra-*
        "remote-user", "forwarded-user", "forwarded-email", "forwarded-groups", "forwarded-preferred",
        ":x-webauth-",                                                  // Grafana's auth proxy and friends: X-WebAuth-User, -Groups, -Email
        ":x-user", "username", "userid", "user-id", "user-email", "useremail", "user-name", "user-login", "user-groups", "user-roles",
        ":x-email:", ":x-groups:", ":x-roles:", ":x-role:", ":x-identity", "identity-",
        ":x-authentik-",                                                // Authentik X-Authentik-Username/-Groups/-Email/-Jwt/-Meta-*
        ":x-pomerium-",                                                 // Pomerium X-Pomerium-Jwt-Assertion, -Claim-*
        ":x-vouch-",                                                    // Vouch Proxy X-Vouch-User, -Idp-Claims-*
        ":cf-",                                                         // Cloudflare: Cf-Access-Jwt-Assertion, -Authenticated-User-Email, Cf-Connecting-Ip, ...
        ":x-goog-iap-", ":x-goog-authenticated-",                       // Google IAP
        ":x-amzn-oidc-", ":x-amzn-apigateway-", ":x-amzn-remapped-",    // AWS ALB authentication, API Gateway
        ":x-ms-client-principal", ":x-ms-token-",                       // Azure App Service authentication (EasyAuth)
        ":x-azure-", ":x-arr-",                                         // Azure Front Door X-Azure-FDID/-ClientIP, ARR X-ARR-SSL/-ClientCert
        ":x-consumer-", ":x-credential-", ":x-anonymous-", "userinfo",  // Kong X-Consumer-Username/-Id/-Groups, X-Credential-Identifier, X-Anonymous-Consumer, X-Userinfo
        ":x-apigee-",                                                   // Apigee
        ":x-endpoint-api-", ":x-apigateway-api-",                       // Google Cloud Endpoints / ESPv2, API Gateway: X-Endpoint-API-UserInfo, X-Apigateway-Api-Userinfo
        ":x-envoy-", ":x-istio-",                                       // Envoy (internal, original path, peer metadata, retry and timeout instructions), Istio
        ":impersonate-",                                                // Kubernetes impersonation: Impersonate-User, -Group, -Uid, -Extra-*
        ":x-proxy-user", ":x-proxyuser-",
        ":tailscale-", ":teleport-", ":shib-",                          // Tailscale serve, Teleport application access, Shibboleth
        ":gap-",                                                        // oauth2-proxy's older Gap-Auth, Gap-Signature
        ":sm-", ":smuser", ":smuniversalid", ":smsession", ":smauth",   // CA SiteMinder SM_USER, SMUSER, SM_UNIVERSALID, SM_USERDN, SMSESSION
        ":iv-",                                                         // IBM Security Verify Access (WebSEAL) iv-user, iv-groups, iv-creds, iv-remote-address
        ":x-scope-",                                                    // Grafana Mimir, Loki, Cortex, Tempo: X-Scope-OrgID, the tenant the auth proxy asserts
        ":x-group:", ":auth-",                                          // X-Group; nginx auth_request Auth-User, Auth-Groups, Auth-Email
        // Shibboleth's attribute headers under ShibUseHeaders On (beside Shib-*): whole names only.
        ":eppn:", ":affiliation:", ":unscoped-affiliation:", ":entitlement:", ":persistent-id:", ":targeted-id:",
        ":pairwise-id:", ":subject-id:", ":mail:", ":displayname:", ":givenname:", ":sn:", ":cn:", ":uid:", ":edupersonprincipalname:",

        // Client address and original-request claims. YARP sets X-Forwarded-For/-Proto/-Host/-Prefix
        // itself after the strip; every other X-Forwarded-* (-Port, -Server, -Uri, -Method, -Ssl, -Scheme,
        // -User, -Client-Cert, ...) would otherwise pass as the agent wrote it.
        ":forwarded:", ":x-forwarded-", ":x-original-", ":x-rewrite-url:", ":x-host:", "host-override",
        "real-ip", "client-ip", "connecting-ip", "originating-ip", ":x-remote-addr:",
        ":fastly-", ":akamai-", ":x-akamai-",

        // Other tracing systems' context (B3/Zipkin, Jaeger, Google Cloud, AWS X-Ray, Sentry, Datadog,
        // OpenTracing, gRPC): the upstream is told the gateway's trace, nothing the agent chose about it.
        ":b3:", ":x-b3-", ":uber-trace-id:", ":uberctx-", ":x-cloud-trace-context:", ":x-amzn-trace-id:",
        ":sentry-trace:", ":x-datadog-", ":ot-tracer-", ":grpc-trace-bin:",

        // Method overrides: the method the policy decided on is the method that goes.
        "method-override", "methodoverride", "http-method", "httpmethod", ":x-method:",
    ];

    private static readonly NamePatterns Headers = new(HeaderPatterns);

    /// <summary>Query parameters that ask the upstream's framework to take another method:
    /// <c>_method</c> (Rails, Laravel, Symfony, Spring, Express), <c>_HttpMethod</c> (Salesforce),
    /// <c>X-HTTP-Method-Override</c> and the like.</summary>
    private static readonly NamePatterns MethodOverrideQuery = new(
    [
        ":-method:", ":--method:", ":x-method:", "method-override", "methodoverride", "http-method", "httpmethod",
    ]);

    /// <summary>Whether <paramref name="name"/> is never forwarded from an agent.</summary>
    public static bool IsUntrusted(string name) => Headers.Matches(name);

    /// <summary>Whether query parameter <paramref name="name"/> asks for another method than the request's.</summary>
    public static bool IsMethodOverrideParameter(string name) => MethodOverrideQuery.Matches(name);

    /// <summary>
    /// The header names a message's <c>Connection</c> header nominates as hop-by-hop (RFC 9110
    /// §7.6.1): they are for the connection they arrived on and end there. YARP drops only its fixed
    /// list, so without this an agent's <c>Connection: X-Secret-Hint</c> header would travel on, and
    /// an upstream's nominated headers would reach the agent.
    /// </summary>
    public static IEnumerable<string> NominatedHopByHop(Microsoft.Extensions.Primitives.StringValues connection)
    {
        foreach (var value in connection)
        {
            if (string.IsNullOrEmpty(value))
            {
                continue;
            }

            foreach (var token in value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                // The body's own headers and Host stay: policy and inspection decided on them, and
                // dropping them would change how the upstream reads the message, not who it is for.
                if (!token.Equals("close", StringComparison.OrdinalIgnoreCase)
                    && !token.StartsWith("Content-", StringComparison.OrdinalIgnoreCase)
                    && !token.Equals("Host", StringComparison.OrdinalIgnoreCase)
                    && !token.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase))
                {
                    yield return token;
                }
            }
        }
    }
}
