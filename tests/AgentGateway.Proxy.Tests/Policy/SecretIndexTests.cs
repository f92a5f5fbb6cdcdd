using AgentGateway.Credentials;
using AgentGateway.Proxy.Policy;

namespace AgentGateway.Proxy.Tests.Policy;

public sealed class SecretIndexTests
{
    [Fact]
    public void An_injected_token_is_found_as_a_whole_run_and_not_by_coincidence()
    {
        var index = new SecretIndex();
        const string token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
        index.Remember(new HopCredential("crm", CredentialKind.OAuthClientCredentials, "Authorization", "Bearer " + token, "fp", CredentialSource.Fetched, null));

        Assert.True(index.ContainsToken("note: " + token + " end"));
        Assert.True(index.ContainsToken("q=" + token));
        Assert.False(index.ContainsToken(token[..^1]));
        Assert.False(index.ContainsToken("something else entirely, long enough"));
    }
}
