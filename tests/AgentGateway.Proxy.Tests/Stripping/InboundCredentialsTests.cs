using AgentGateway.Proxy.Stripping;

namespace AgentGateway.Proxy.Tests.Stripping;

public sealed class InboundCredentialsTests
{
    [Theory]
    [InlineData("Authorization")]
    [InlineData("proxy-authorization")]
    [InlineData("Cookie")]
    [InlineData("DPoP")]
    [InlineData("x-api-key")]
    [InlineData("X_API_KEY")]
    [InlineData("api-key")]
    [InlineData("x-goog-api-key")]
    [InlineData("anthropic-api-key")]
    [InlineData("OpenAI-Api-Key")]
    [InlineData("Ocp-Apim-Subscription-Key")]
    [InlineData("X-Functions-Key")]
    [InlineData("X-Auth-Token")]
    [InlineData("X-Amz-Security-Token")]
    [InlineData("X-Client-Cert")]
    [InlineData("X-Forwarded-Client-Cert")]
    [InlineData("X-ARR-ClientCert")]
    [InlineData("X-SSL-Client-Verify")]
    [InlineData("X-MS-CLIENT-PRINCIPAL")]
    [InlineData("X-Amzn-Oidc-Accesstoken")]
    [InlineData("X.Api.Key")]
    [InlineData("x~api~key")]
    [InlineData("X-Serverless-Authorization")]
    [InlineData("Cf-Access-Client-Secret")]
    [InlineData("X-Pomerium-Jwt-Assertion")]
    [InlineData("Signature")]
    public void Credential_headers_are_recognised_in_any_spelling(string name)
    {
        Assert.True(InboundCredentials.IsCredentialHeader(name));
    }

    [Theory]
    [InlineData("Content-Type")]
    [InlineData("Accept")]
    [InlineData("User-Agent")]
    [InlineData("X-Request-Id")]
    [InlineData("traceparent")]
    [InlineData("Mcp-Session-Id")]
    [InlineData("anthropic-version")]
    [InlineData("Idempotency-Key")]
    public void Ordinary_headers_pass(string name)
    {
        Assert.False(InboundCredentials.IsCredentialHeader(name));
    }

    [Theory]
    [InlineData("access_token", true)]
    [InlineData("ACCESS-TOKEN", true)]
    [InlineData("api_key", true)]
    [InlineData("key", true)]
    [InlineData("client_secret", true)]
    [InlineData("X-Amz-Signature", true)]
    [InlineData("page_token", true)]
    [InlineData("api.key", true)]
    [InlineData("client_assertion", true)]
    [InlineData("model", false)]
    [InlineData("q", false)]
    [InlineData("monkey", false)]
    public void Credential_query_parameters_are_recognised(string name, bool credential)
    {
        Assert.Equal(credential, InboundCredentials.IsCredentialQueryParameter(name));
    }

    [Theory]
    [InlineData("x-api-key", "X_API_KEY", true)]
    [InlineData("Authorization", "authorization", true)]
    [InlineData("x-api-key", "x-api-keys", false)]
    public void Spellings_an_upstream_could_fold_together_are_the_same_header(string a, string b, bool same)
    {
        Assert.Equal(same, InboundCredentials.SameHeader(a, b));
    }

    [Fact]
    public void Very_long_header_names_are_still_checked()
    {
        Assert.True(InboundCredentials.IsCredentialHeader(new string('x', 300) + "-api-key"));
    }
}
