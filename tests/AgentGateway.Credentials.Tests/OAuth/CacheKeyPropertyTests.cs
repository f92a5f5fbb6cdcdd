using AgentGateway.Credentials.OAuth;
using AgentGateway.Credentials.Secrets;

namespace AgentGateway.Credentials.Tests.OAuth;

/// <summary>
/// A property, checked over thousands of generated parameter tuples drawn from tiny alphabets
/// (so that near-collisions — values that differ by one character, or that move a separator
/// from one field to the next — are common): two tuples share a cache key exactly when they
/// describe the same token.
/// </summary>
public sealed class CacheKeyPropertyTests
{
    private static readonly TokenCacheKeyGenerator Keys = new();

    // Characters chosen to break naive concatenation: separators, quotes, brackets, escapes.
    private static readonly string[] Atoms = ["a", "b", "a,b", "\"", "\n", "[", "]", "\\", ":", " ", "é", ""];

    [Fact]
    public void Client_credentials_keys_are_equal_exactly_when_the_canonical_parameters_are()
    {
        var random = new Random(20261122);
        var seen = new Dictionary<string, string>();
        for (var i = 0; i < 5000; i++)
        {
            var client = Client(random);
            var scopes = List(random);
            var resources = List(random);
            var secret = "s" + Pick(random);
            var definition = new OAuthClientCredentialsOptions("n" + Pick(random), client, scopes, resources, "Authorization", TimeSpan.FromMinutes(1));
            var canonical = Canonical(client, scopes, resources, secret);

            Check(seen, canonical, Keys.ForCredential(ClientCredentialsSource.CacheKeyParts(definition, secret)));
        }
    }

    [Fact]
    public void Token_exchange_keys_separate_every_user_agent_and_parameter()
    {
        var random = new Random(8693);
        var seen = new Dictionary<string, string>();
        for (var i = 0; i < 5000; i++)
        {
            var client = Client(random);
            var scopes = List(random);
            var resources = List(random);
            var audience = random.Next(3) == 0 ? null : Pick(random);
            var actor = random.Next(2) == 0;
            var agent = Pick(random);
            var delegation = new Delegation(Pick(random), Pick(random), "token-" + i, DateTimeOffset.UnixEpoch);
            var definition = new OAuthTokenExchangeOptions("n", client, scopes, resources, audience, actor, "Authorization", TimeSpan.FromMinutes(1));
            var canonical = Canonical(client, scopes, resources, "secret") +
                $"|aud={Escape(audience)}|actor={actor}|agent={Escape(agent)}|iss={Escape(delegation.IssuerName)}|user={Escape(delegation.Subject)}";

            Check(seen, canonical, Keys.ForSubject(Keys.ForCredential(TokenExchangeSource.CacheKeyParts(definition, "secret")), agent, delegation));
        }
    }

    [Fact]
    public void The_two_grants_never_share_a_key_for_the_same_client_and_shape()
    {
        var client = new OAuthClient(new Uri("https://idp.example/token"), "c", new ClientSecretAuthentication(new SecretReference(SecretStore.Environment, "X"), ClientSecretStyle.PostBody), TimeSpan.FromSeconds(5));
        var credentials = new OAuthClientCredentialsOptions("n", client, ["a"], [], "Authorization", TimeSpan.FromMinutes(1));
        var exchange = new OAuthTokenExchangeOptions("n", client, ["a"], [], null, false, "Authorization", TimeSpan.FromMinutes(1));

        Assert.NotEqual(
            Keys.ForCredential(ClientCredentialsSource.CacheKeyParts(credentials, "s")),
            Keys.ForSubject(Keys.ForCredential(TokenExchangeSource.CacheKeyParts(exchange, "s")), "", new Delegation("", "", "t", DateTimeOffset.UnixEpoch)));
    }

    private static void Check(Dictionary<string, string> seen, string canonical, string key)
    {
        if (seen.TryGetValue(key, out var earlier))
        {
            Assert.True(earlier == canonical, $"two different tuples share a key:\n{earlier}\n{canonical}");
        }
        else
        {
            seen[key] = canonical;
        }

        // And the same tuple always gets the same key.
        var keyOfCanonical = seen.Where(e => e.Value == canonical).Select(e => e.Key).Distinct().ToList();
        Assert.True(keyOfCanonical.Count == 1, "one tuple, two keys: " + canonical);
    }

    private static OAuthClient Client(Random random) => new(
        new Uri("https://idp.example/" + Uri.EscapeDataString(Pick(random))),
        "c" + Pick(random),
        new ClientSecretAuthentication(new SecretReference(SecretStore.Environment, "X"), random.Next(2) == 0 ? ClientSecretStyle.PostBody : ClientSecretStyle.BasicAuthentication),
        TimeSpan.FromSeconds(5));

    private static string[] List(Random random) => [.. Enumerable.Range(0, random.Next(3)).Select(_ => Pick(random))];

    private static string Pick(Random random) => Atoms[random.Next(Atoms.Length)] + (random.Next(4) == 0 ? Atoms[random.Next(Atoms.Length)] : "");

    private static string Canonical(OAuthClient client, IEnumerable<string> scopes, IEnumerable<string> resources, string secret) =>
        $"{client.TokenEndpoint.AbsoluteUri}|{Escape(client.ClientId)}|{client.Authentication.Method}" +
        $"|scopes={string.Join(",", scopes.Order(StringComparer.Ordinal).Select(Escape))}" +
        $"|resources={string.Join(",", resources.Order(StringComparer.Ordinal).Select(Escape))}|secret={Escape(secret)}";

    // Bracketed so an empty value still counts: [""] and [] are different lists.
    private static string Escape(string? value) => value is null ? "null" : "<" + Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(value)) + ">";
}
