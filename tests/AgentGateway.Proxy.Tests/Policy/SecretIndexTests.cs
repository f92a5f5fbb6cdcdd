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

    [Fact]
    public void A_value_injected_again_after_its_token_was_forgotten_is_remembered_again()
    {
        // The same string object each time, as a warm route injects its cached credential.
        var index = new SecretIndex();
        var credential = new HopCredential("crm", CredentialKind.OAuthClientCredentials, "Authorization", "Bearer AbCdEfGhIjKlMnOpQrStUvWxYz012345", "fp", CredentialSource.Fetched, null);
        index.Remember(credential);
        Assert.True(index.ContainsToken("AbCdEfGhIjKlMnOpQrStUvWxYz012345"));

        // Ten thousand newer tokens: the oldest, this one, is forgotten.
        for (var i = 0; i < 10_000; i++)
        {
            index.Remember(credential with { HeaderValue = $"Bearer other-token-{i:D8}" });
        }

        Assert.False(index.ContainsToken("AbCdEfGhIjKlMnOpQrStUvWxYz012345"));
        index.Remember(credential);
        Assert.True(index.ContainsToken("AbCdEfGhIjKlMnOpQrStUvWxYz012345"));
    }

    [Fact]
    public void The_forms_of_an_injected_value_are_its_own_tokens_whichever_values_came_before()
    {
        // More values than the index notes by reference, so some share a note's place.
        var index = new SecretIndex();
        var values = Enumerable.Range(0, 64).Select(i => $"Bearer token-number-{i:D4}-of-many").ToArray();
        foreach (var value in values)
        {
            index.Remember(new HopCredential("crm", CredentialKind.OAuthClientCredentials, "Authorization", value, "fp", CredentialSource.Fetched, null));
        }

        for (var round = 0; round < 2; round++)
        {
            foreach (var value in values)
            {
                var forms = index.TokenForms(value);
                Assert.True(forms.IsIn(value.AsSpan(7)));
                Assert.False(forms.IsIn(values[(Array.IndexOf(values, value) + 1) % values.Length].AsSpan(7)));
            }
        }
    }

    [Fact]
    public void A_token_is_found_in_whichever_run_of_a_text_it_is()
    {
        var index = new SecretIndex();
        const string token = "AbCdEfGhIjKlMnOpQrStUvWx";
        index.Remember(new HopCredential("crm", CredentialKind.OAuthClientCredentials, "Authorization", "Bearer " + token, "fp", CredentialSource.Fetched, null));

        // Runs are cut at every character a token cannot hold, ASCII or not.
        Assert.True(index.ContainsToken(token));
        Assert.True(index.ContainsToken("a b, c; [" + token + "]"));
        Assert.True(index.ContainsToken("shortrun=" + token + "&more=long-enough-run"));
        Assert.True(index.ContainsToken("é" + token + "é"));
        Assert.False(index.ContainsToken("x" + token));
        Assert.False(index.ContainsToken(token + "~"));
    }

    [Fact]
    public void A_token_is_found_between_the_slashes_of_a_path_even_when_it_holds_slashes_itself()
    {
        var index = new SecretIndex();
        const string jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
        const string opaque = "AbCdEf/GhIjKl+MnOpQr/StUvWx";
        index.Remember(new HopCredential("crm", CredentialKind.OAuthClientCredentials, "Authorization", "Bearer " + jwt, "fp", CredentialSource.Fetched, null));
        index.Remember(new HopCredential("crm", CredentialKind.OAuthClientCredentials, "Authorization", "Bearer " + opaque, "fp", CredentialSource.Fetched, null));

        Assert.True(index.ContainsToken("/crm/accounts/" + jwt));
        Assert.True(index.ContainsToken("/crm/" + jwt + "/notes"));
        Assert.True(index.ContainsToken("/files/" + opaque + "/raw"));
        Assert.False(index.ContainsToken("/crm/accounts/" + jwt[..^1] + "/x"));
    }

    [Theory]
    [InlineData(12)]
    [InlineData(4096)]
    [InlineData(4097)]
    [InlineData(9000)]
    public void A_token_of_any_length_is_found_whole_and_between_slashes(int length)
    {
        // Runs are looked up only at lengths some remembered token has; the table of lengths ends
        // at 4096, and longer tokens are always looked up.
        var index = new SecretIndex();
        var token = new string(Enumerable.Range(0, length).Select(i => (char)('A' + (i % 26))).ToArray());
        index.Remember(new HopCredential("crm", CredentialKind.OAuthClientCredentials, "Authorization", "Bearer " + token, "fp", CredentialSource.Fetched, null));

        Assert.True(index.ContainsToken(token));
        Assert.True(index.ContainsToken("/crm/" + token + "/notes"));
        Assert.False(index.ContainsToken("/crm/" + token[1..] + "/notes"));
    }
}
