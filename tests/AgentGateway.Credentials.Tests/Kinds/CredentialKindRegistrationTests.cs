using AgentGateway.Configuration;
using AgentGateway.Credentials.Caching;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace AgentGateway.Credentials.Tests.Kinds;

/// <summary>The broker knows no kind itself: a kind registered from outside is read, validated
/// with paths and built like the built-in ones, and the built-in ones are registered once.</summary>
public sealed class CredentialKindRegistrationTests
{
    [Fact]
    public void A_kind_registered_from_outside_is_read_validated_and_built()
    {
        var factory = Factory(services => services.TryAddEnumerable(ServiceDescriptor.Singleton<ICredentialKind, EchoKind>()));
        var problems = new ConfigProblems();

        var read = factory.Read(Section(new()
        {
            ["good:Kind"] = "Echo",
            ["good:Value"] = "hello",
            ["bad:Kind"] = "Echo",
            ["bad:Valeu"] = "typo",
        }), problems);
        var set = factory.Build(read, CacheOptions.LocalOnly, "Gateway:Credentials", problems);

        Assert.Equal(["good"], read.Select(o => o.Name));
        Assert.Contains(problems.Items, p => p.Path == "Gateway:Credentials:bad:Valeu");
        Assert.Contains(problems.Items, p => p.Path == "Gateway:Credentials:bad:Value");
        Assert.True(set.TryGet("good", out var source));
        Assert.Equal(new CredentialKind("Echo"), source!.Kind);
    }

    [Fact]
    public void An_unknown_kind_is_a_problem_that_names_every_registered_kind_once()
    {
        var factory = Factory(services => services.AddCredentialBroker());
        var problems = new ConfigProblems();

        factory.Read(Section(new() { ["odd:Kind"] = "Telepathy" }), problems);

        var problem = Assert.Single(problems.Items);
        Assert.Equal("Gateway:Credentials:odd:Kind", problem.Path);
        Assert.EndsWith("expected one of: ApiKey, AwsSigV4, ManagedIdentity, McpOAuth, MtlsClientCertificate, OAuthClientCredentials, OAuthTokenExchange", problem.Message, StringComparison.Ordinal);
    }

    private static CredentialSetFactory Factory(Action<IServiceCollection> more)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        more(services);
        services.AddCredentialBroker();
        return services.BuildServiceProvider().GetRequiredService<CredentialSetFactory>();
    }

    private static IConfigurationSection Section(Dictionary<string, string?> values) =>
        new ConfigurationBuilder()
            .AddInMemoryCollection(values.ToDictionary(e => "Gateway:Credentials:" + e.Key, e => e.Value))
            .Build()
            .GetSection("Gateway:Credentials");

    public sealed record EchoSettings
    {
        public string? Kind { get; init; }

        public string? Value { get; init; }
    }

    public sealed record EchoOptions(string Name, string Value) : CredentialOptions(Name)
    {
        public override CredentialKind Kind { get; } = new("Echo");
    }

    private sealed class EchoKind : CredentialKindBase<EchoSettings, EchoOptions>
    {
        public override CredentialKind Kind { get; } = new("Echo");

        protected override EchoOptions? Validate(string name, string path, EchoSettings settings, ConfigProblems problems)
        {
            if (string.IsNullOrEmpty(settings.Value))
            {
                problems.Add(path + ":Value", "is required");
                return null;
            }

            return new EchoOptions(name, settings.Value);
        }

        protected override ICredentialSource? Build(EchoOptions options, CredentialBuildContext context, ConfigProblems problems) =>
            new EchoSource(options);
    }

    private sealed class EchoSource(EchoOptions options) : ICredentialSource
    {
        public string Name => options.Name;

        public CredentialKind Kind => options.Kind;

        public string? HeaderName => "X-Echo";

        public ValueTask<CredentialResult> GetAsync(CredentialRequest request, CancellationToken cancellationToken) =>
            ValueTask.FromResult(CredentialResult.Success(new HopCredential(Name, Kind, HeaderName, options.Value, "fp", CredentialSource.Static, null)));
    }
}
