using AgentGateway.Configuration;
using AgentGateway.Credentials.AwsSigV4;
using AgentGateway.Credentials.Caching;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace AgentGateway.Credentials.Tests.AwsSigV4;

/// <summary>An <c>AwsSigV4</c> entry is validated at load like every kind's: every problem at its
/// path, settings the chosen identity would ignore named rather than passed over.</summary>
public sealed class AwsSigV4SettingsTests
{
    [Fact]
    public void Every_problem_of_an_entry_is_listed_with_its_path()
    {
        var problems = new ConfigProblems();

        var read = Factory().Read(Section(new()
        {
            ["aws:Kind"] = "AwsSigV4",
            ["aws:Service"] = "Bedrock Runtime",
            ["aws:WebIdentityToken"] = "/var/run/token",
            ["aws:ExternalId"] = "x",
            ["aws:StsEndpoint"] = "http://sts.example.test",
            ["aws:SessionDuration"] = "00:01:00",
            ["aws:Payload"] = "Unsigned",
            ["aws:MaxBodyBytes"] = "1024",
            ["aws:Timeout"] = "00:00:00",
        }), problems);

        Assert.Empty(read);
        Assert.Equal(
            [
                "Gateway:Credentials:aws:ExternalId",
                "Gateway:Credentials:aws:MaxBodyBytes",
                "Gateway:Credentials:aws:Region",
                "Gateway:Credentials:aws:Service",
                "Gateway:Credentials:aws:SessionDuration",
                "Gateway:Credentials:aws:StsEndpoint",
                "Gateway:Credentials:aws:Timeout",
                "Gateway:Credentials:aws:WebIdentityToken",
            ],
            problems.Items.Select(p => p.Path).Distinct().Order(StringComparer.Ordinal));
        Assert.Contains(problems.Items, p => p.Path.EndsWith(":WebIdentityToken", StringComparison.Ordinal) && p.Message.Contains("needs RoleArn", StringComparison.Ordinal));
        Assert.Contains(problems.Items, p => p.Path.EndsWith(":MaxBodyBytes", StringComparison.Ordinal) && p.Message.Contains("Unsigned", StringComparison.Ordinal));
        Assert.DoesNotContain(problems.Items, p => p.Message.Contains("/var/run/token", StringComparison.Ordinal));
    }

    [Fact]
    public void A_web_identity_role_entry_is_read_with_its_identity_and_defaults()
    {
        var problems = new ConfigProblems();

        var read = Factory().Read(Section(new()
        {
            ["bedrock:Kind"] = "AwsSigV4",
            ["bedrock:Region"] = "eu-central-1",
            ["bedrock:Service"] = "bedrock",
            ["bedrock:RoleArn"] = "arn:aws:iam::123456789012:role/gateway",
            ["bedrock:WebIdentityToken"] = "file:/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
        }), problems);

        Assert.Empty(problems.Items);
        var options = Assert.IsType<AwsSigV4Options>(Assert.Single(read));
        Assert.Equal(("eu-central-1", "bedrock", AwsPayloadSigning.Signed, AwsSigV4Kind.DefaultMaxBodyBytes), (options.Region, options.Service, options.Payload, options.MaxBodyBytes));
        Assert.Equal("arn:aws:iam::123456789012:role/gateway", options.Identity.RoleArn);
        Assert.Equal("agentgateway", options.Identity.RoleSessionName);
        Assert.NotNull(options.Identity.WebIdentityToken);
    }

    [Fact]
    public void Entries_that_differ_only_in_region_or_service_share_their_credentials_and_other_identities_do_not()
    {
        var role = new AwsIdentity("arn:aws:iam::123456789012:role/a", null, "agentgateway", null, TimeSpan.FromHours(1), null);

        Assert.Equal(AwsSigV4Source.CacheKeyFor(role), AwsSigV4Source.CacheKeyFor(role with { }));
        Assert.NotEqual(AwsSigV4Source.CacheKeyFor(role), AwsSigV4Source.CacheKeyFor(role with { RoleArn = "arn:aws:iam::123456789012:role/b" }));
        Assert.NotEqual(AwsSigV4Source.CacheKeyFor(role), AwsSigV4Source.CacheKeyFor(role with { ExternalId = "x1" }));
        Assert.NotEqual(AwsSigV4Source.CacheKeyFor(role), AwsSigV4Source.CacheKeyFor(role with { RoleArn = null }));
    }

    [Fact]
    public void A_built_source_is_the_kind_that_writes_authorization_and_holds_no_secret_at_load()
    {
        var factory = Factory();
        var problems = new ConfigProblems();
        var read = factory.Read(Section(new() { ["aws:Kind"] = "AwsSigV4", ["aws:Region"] = "us-east-1", ["aws:Service"] = "bedrock" }), problems);

        var set = factory.Build(read, CacheOptions.LocalOnly, "Gateway:Credentials", problems);

        Assert.Empty(problems.Items);
        Assert.True(set.TryGet("aws", out var source));
        Assert.Equal(new CredentialKind("AwsSigV4"), source!.Kind);
        Assert.Equal("Authorization", source.HeaderName);
        Assert.Empty(source.Secrets);
    }

    private static CredentialSetFactory Factory()
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddCredentialBroker();
        return services.BuildServiceProvider().GetRequiredService<CredentialSetFactory>();
    }

    private static IConfigurationSection Section(Dictionary<string, string?> values) =>
        new ConfigurationBuilder()
            .AddInMemoryCollection(values.ToDictionary(e => "Gateway:Credentials:" + e.Key, e => e.Value))
            .Build()
            .GetSection("Gateway:Credentials");
}
