using AgentGateway.Credentials.OAuth;
using AgentGateway.Credentials.Secrets;

namespace AgentGateway.Credentials.Tests.OAuth;

/// <summary>Two credentials that would get different tokens never share a cache entry; the same
/// credential written differently does.</summary>
public sealed class CacheKeyTests
{
    private static readonly TokenCacheKeyGenerator Keys = new();

    private static readonly OAuthClient Client = new(
        new Uri("https://idp.example/token"), "client", new ClientSecretAuthentication(new SecretReference(SecretStore.Environment, "X"), ClientSecretStyle.PostBody), TimeSpan.FromSeconds(10));

    private static readonly OAuthClientCredentialsOptions Base = new(
        "crm", Client, ["a", "b"], ["https://api.example/"], "Authorization", TimeSpan.FromMinutes(1));

    private const string Secret = "secret-1";

    public static TheoryData<string, OAuthClientCredentialsOptions, string> Variants => new()
    {
        { "endpoint", Base with { Client = Client with { TokenEndpoint = new Uri("https://other.example/token") } }, "secret-1" },
        { "client", Base with { Client = Client with { ClientId = "client-2" } }, "secret-1" },
        { "scopes", Base with { Scopes = ["a"] }, "secret-1" },
        { "scope moved into the client id", Base with { Client = Client with { ClientId = "client\na" }, Scopes = ["b"] }, "secret-1" },
        { "resource", Base with { Resources = ["https://api.example/other"] }, "secret-1" },
        { "no resource", Base with { Resources = [] }, "secret-1" },
        { "auth style", Base with { Client = Client with { Authentication = new ClientSecretAuthentication(new SecretReference(SecretStore.Environment, "X"), ClientSecretStyle.BasicAuthentication) } }, "secret-1" },
        { "rotated secret", Base, "secret-2" },
        { "private key instead of a secret", Base with { Client = Client with { Authentication = new PrivateKeyJwtAuthentication(new SecretReference(SecretStore.Environment, "X"), null, null, null) } }, "secret-1" },
    };

    [Theory]
    [MemberData(nameof(Variants))]
    public void Every_parameter_that_shapes_the_token_changes_the_key(string _, OAuthClientCredentialsOptions variant, string secret)
    {
        Assert.NotEqual(Keys.ForCredential(ClientCredentialsSource.CacheKeyParts(Base, Secret)), Keys.ForCredential(ClientCredentialsSource.CacheKeyParts(variant, secret)));
    }

    [Fact]
    public void Order_of_scopes_and_resources_and_the_credential_name_do_not_change_the_key()
    {
        var reordered = Base with { Name = "crm-renamed", Scopes = ["b", "a"] };

        Assert.Equal(Keys.ForCredential(ClientCredentialsSource.CacheKeyParts(Base, Secret)), Keys.ForCredential(ClientCredentialsSource.CacheKeyParts(reordered, Secret)));
    }

    [Fact]
    public void The_key_does_not_reveal_the_secret()
    {
        Assert.DoesNotContain("secret-1", Keys.ForCredential(ClientCredentialsSource.CacheKeyParts(Base, Secret)), StringComparison.Ordinal);
    }
}
