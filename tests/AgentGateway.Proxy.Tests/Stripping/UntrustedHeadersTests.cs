using AgentGateway.Proxy.Stripping;

namespace AgentGateway.Proxy.Tests.Stripping;

/// <summary>The identity-header families of the common proxies and identity providers, the
/// forwarding claims and the method overrides, in every spelling an upstream could fold together;
/// and the ordinary headers real clients send, which must pass.</summary>
public sealed class UntrustedHeadersTests
{
    public static TheoryData<string> Forged => new()
    {
        // The eleven an attacker sent, and their families.
        "X-WebAuth-User", "X-WebAuth-Groups", "X-WEBAUTH-EMAIL", "Remote-User", "Remote-Groups", "Remote-Email", "Remote-Name",
        "X-Forwarded-Preferred-Username", "X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups", "X-Forwarded-Access-Token",
        "X-Auth-Request-User", "X-Auth-Request-Email", "X-Auth-Request-Groups", "X-Auth-Request-Preferred-Username", "X-Auth-Request-Access-Token",
        "X-Consumer-Username", "X-Consumer-Id", "X-Consumer-Custom-Id", "X-Consumer-Groups", "X-Credential-Identifier", "X-Anonymous-Consumer",
        "X-Userinfo", "X-User", "X-User-Id", "X-Username", "X-User-Email", "X-Remote-User", "X-Remote-Group", "X-Remote-Extra-Scopes",
        "X-Endpoint-API-UserInfo", "X-Endpoint-API-Consumer-Number", "X-Apigateway-Api-Userinfo",
        "X-Authentik-Username", "X-Authentik-Groups", "X-Authentik-Jwt", "X-Authentik-Meta-App",
        "X-Goog-IAP-JWT-Assertion", "X-Goog-Authenticated-User-Email", "X-Goog-Authenticated-User-Id",
        "Cf-Access-Jwt-Assertion", "Cf-Access-Authenticated-User-Email", "CF-Connecting-IP", "Cf-Ipcountry",
        "X-Envoy-Internal", "X-Envoy-Original-Path", "X-Envoy-Peer-Metadata", "X-Envoy-External-Address", "X-Istio-Attributes",
        "X-Forwarded-Client-Cert", "X-Pomerium-Jwt-Assertion", "X-Pomerium-Claim-Email",
        "X-Amzn-Oidc-Data", "X-Amzn-Oidc-Identity", "X-Amzn-Oidc-Accesstoken",
        "X-Ms-Client-Principal", "X-MS-CLIENT-PRINCIPAL-NAME", "X-Ms-Client-Principal-Id", "X-Ms-Token-Aad-Access-Token", "X-Azure-FDID",
        "X-Apigee-Developer-App", "X-Authenticated-Userid", "X-Authenticated-Scope", "X-Proxy-User",
        "Impersonate-User", "Impersonate-Group", "Impersonate-Uid", "Impersonate-Extra-Scopes",
        "Tailscale-User-Login", "Teleport-Jwt-Assertion", "X-Vouch-User", "Shib-Identity-Provider", "X-Identity",

        // Client-address and original-request claims.
        "Forwarded", "X-Real-IP", "True-Client-IP", "X-Client-IP", "Fastly-Client-IP", "X-Original-URL", "X-Original-URI",
        "X-Original-Forwarded-For", "X-Rewrite-URL", "X-Forwarded-Port", "X-Forwarded-Server", "X-Forwarded-Uri", "X-Forwarded-Ssl",

        // Method overrides.
        "X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override", "X-Method",

        // Other spellings of the same names.
        "x_webauth_user", "REMOTE_USER", "x.forwarded.preferred.username", "X-Envoy_Internal", "cf_access_jwt_assertion",
        "x-http-method-override", "X_HTTP_METHOD_OVERRIDE", "x~envoy~internal",
    };

    [Theory]
    [MemberData(nameof(Forged))]
    public void Identity_forwarding_and_method_override_headers_are_never_forwarded(string name)
    {
        Assert.True(UntrustedHeaders.IsUntrusted(name) || InboundCredentials.IsCredentialHeader(name), name);
    }

    [Theory]
    [InlineData("Content-Type")]
    [InlineData("Accept")]
    [InlineData("Accept-Encoding")]
    [InlineData("Accept-Language")]
    [InlineData("User-Agent")]
    [InlineData("X-Request-Id")]
    [InlineData("traceparent")]
    [InlineData("Mcp-Session-Id")]
    [InlineData("Mcp-Protocol-Version")]
    [InlineData("Last-Event-ID")]
    [InlineData("anthropic-version")]
    [InlineData("anthropic-beta")]
    [InlineData("OpenAI-Organization")]
    [InlineData("OpenAI-Project")]
    [InlineData("X-Stainless-Retry-Count")]
    [InlineData("Idempotency-Key")]
    [InlineData("If-None-Match")]
    [InlineData("Prefer")]
    [InlineData("x-ms-version")]
    [InlineData("x-ms-client-request-id")]
    [InlineData("x-goog-api-client")]
    [InlineData("x-goog-user-project")]
    [InlineData("x-amz-date")]
    [InlineData("X-Tenant-Id")]
    [InlineData("Access-Control-Request-Method")]
    public void Ordinary_headers_pass(string name)
    {
        Assert.False(UntrustedHeaders.IsUntrusted(name), name);
        Assert.False(InboundCredentials.IsCredentialHeader(name), name);
    }

    [Theory]
    [InlineData("_method", true)]
    [InlineData("_METHOD", true)]
    [InlineData("__method", true)]
    [InlineData("$method", true)]
    [InlineData("_HttpMethod", true)]
    [InlineData("X-HTTP-Method-Override", true)]
    [InlineData("x_http_method_override", true)]
    [InlineData("x-http-method", true)]
    [InlineData("X-Method-Override", true)]
    [InlineData("method", false)]
    [InlineData("methods", false)]
    [InlineData("payment_method", false)]
    public void Method_override_query_parameters_are_recognised(string name, bool recognised)
    {
        Assert.Equal(recognised, UntrustedHeaders.IsMethodOverrideParameter(name));
    }
}
