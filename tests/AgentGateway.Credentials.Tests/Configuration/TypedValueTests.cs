using AgentGateway.Configuration;
using AgentGateway.Credentials.Secrets;

namespace AgentGateway.Credentials.Tests.Configuration;

/// <summary>The typed configuration values: one rule each, wherever the configuration names one.</summary>
public sealed class TypedValueTests
{
    [Theory]
    [InlineData("X-Agent-Key")]
    [InlineData("Subject_Token")]
    [InlineData("x.custom!#$%&'*+^`|~")]
    [InlineData("a")]
    public void A_header_name_is_an_RFC_9110_token(string name)
    {
        Assert.True(HeaderName.TryParse(name, out var parsed));
        Assert.Equal(name, parsed.Value);
    }

    [Theory]
    [InlineData("")]
    [InlineData("Bad Name")]
    [InlineData("X-Key:")]
    [InlineData("X-Key\r\nX-Other")]
    [InlineData("X-K\u00e9y")]
    [InlineData("X-(Key)")]
    [InlineData("\"X\"")]
    [InlineData(null)]
    public void Anything_else_is_not_a_header_name_and_its_problem_has_the_path(string? name)
    {
        var problems = new ConfigProblems();

        Assert.False(HeaderName.TryRead("Gateway:Policy:Task:Header", name, problems, out _));

        Assert.Equal("Gateway:Policy:Task:Header", Assert.Single(problems.Items).Path);
    }

    [Theory]
    [InlineData("RS256")]
    [InlineData("PS384")]
    [InlineData("ES512")]
    public void Asymmetric_algorithms_are_accepted(string algorithm)
    {
        Assert.True(SigningAlgorithm.TryParse(algorithm, out var parsed));
        Assert.Equal(algorithm, parsed.Name);
    }

    [Theory]
    [InlineData("HS256")]
    [InlineData("none")]
    [InlineData("rs256")]
    [InlineData("EdDSA")]
    [InlineData("")]
    public void Symmetric_unknown_or_misspelt_algorithms_are_not(string algorithm)
    {
        Assert.False(SigningAlgorithm.TryParse(algorithm, out _));
        Assert.DoesNotContain(algorithm, SigningAlgorithm.List(" ").Split(' '));
    }

    [Fact]
    public void An_issuer_without_algorithms_gets_a_subset_of_the_accepted_ones()
    {
        Assert.All(SigningAlgorithm.IssuerDefault, a => Assert.True(SigningAlgorithm.All.Contains(a), a));
    }

    [Theory]
    [InlineData("https://idp.example.com/token")]
    [InlineData("http://127.0.0.1:5000/token")]
    [InlineData("http://[::1]/token")]
    [InlineData("http://localhost:8080/")]
    public void Endpoints_are_https_or_loopback(string text)
    {
        Assert.True(HttpEndpoint.TryParse(text, out var endpoint, out _));
        Assert.Equal(new Uri(text), endpoint.Uri);
    }

    [Theory]
    [InlineData("http://idp.example.com/token", "https")]
    [InlineData("https://user:pass@idp.example.com/token", "user information")]
    [InlineData("/token", "absolute")]
    [InlineData("ftp://idp.example.com/", "absolute")]
    public void Other_endpoints_are_refused_with_the_reason(string text, string reason)
    {
        var problems = new ConfigProblems();

        Assert.False(HttpEndpoint.TryRead("Gateway:Credentials:crm:TokenEndpoint", text, problems, out var uri));

        Assert.Null(uri);
        var problem = Assert.Single(problems.Items);
        Assert.Equal("Gateway:Credentials:crm:TokenEndpoint", problem.Path);
        Assert.Contains(reason, problem.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("pass", problem.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_secret_setting_is_parsed_and_resolved_in_one_read_with_the_path_of_its_problem()
    {
        var problems = new ConfigProblems();
        var variable = "AGENTGATEWAY_TEST_" + Guid.NewGuid().ToString("N");

        Assert.False(SecretResolver.TryRead("Gateway:Audit:Key", "sk-live-0123456789", problems, out _));
        Assert.False(SecretResolver.TryRead("Gateway:Provenance:SigningKey", "env:" + variable, problems, out _));
        Environment.SetEnvironmentVariable(variable, "resolved");
        Assert.True(SecretResolver.TryRead("Gateway:Provenance:SigningKey", "env:" + variable, problems, out var value));

        Assert.Equal("resolved", value.Reveal());
        Assert.Equal(["Gateway:Audit:Key", "Gateway:Provenance:SigningKey"], problems.Items.Select(p => p.Path));
        Assert.DoesNotContain(problems.Items, p => p.Message.Contains("sk-live", StringComparison.Ordinal));
    }
}
