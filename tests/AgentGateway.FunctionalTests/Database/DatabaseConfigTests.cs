using AgentGateway.FunctionalTests.Infrastructure;
using AgentGateway.Proxy.Configuration;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace AgentGateway.FunctionalTests.Database;

/// <summary><c>Gateway:Databases</c> compiled at load, on the gateway's own clock.</summary>
public sealed class DatabaseConfigTests
{
    [Fact]
    public async Task The_listener_certificate_is_judged_expired_by_the_gateways_clock_not_the_wall_clock()
    {
        using var pki = TestPki.Create("database-config-ca");
        var (certificate, key) = pki.WritePem(pki.IssueServer());
        var authority = pki.WriteAuthorityPem();
        var settings = new Dictionary<string, string?>
        {
            ["ReverseProxy:Routes:r:ClusterId"] = "c",
            ["ReverseProxy:Routes:r:Match:Path"] = "/r/{**rest}",
            ["ReverseProxy:Routes:r:Metadata:Credential"] = "none",
            ["ReverseProxy:Clusters:c:Destinations:d:Address"] = "https://api.example.com/",
            ["Gateway:Databases:orders:Listen"] = "127.0.0.1:0",
            ["Gateway:Databases:orders:Tls:Certificate"] = "file:" + certificate,
            ["Gateway:Databases:orders:Tls:PrivateKey"] = "file:" + key,
            ["Gateway:Databases:orders:Upstream:Host"] = "db.example.com",
            ["Gateway:Databases:orders:Upstream:Database"] = "appdb",
            ["Gateway:Databases:orders:Upstream:CertificateAuthority"] = "file:" + authority,
        };

        var today = await LoadAsync(settings, new FakeTimeProvider(DateTimeOffset.UtcNow));
        // The certificate lives a day; two days on, the gateway's clock says it has expired.
        var later = await LoadAsync(settings, new FakeTimeProvider(DateTimeOffset.UtcNow.AddDays(2)));

        Assert.True(today.Succeeded, string.Join("; ", today.Problems.Select(p => $"{p.Path}: {p.Message}")));
        Assert.Contains(later.Problems, p => p.Path == "Gateway:Databases:orders:Tls:Certificate" && p.Message.Contains("has expired", StringComparison.Ordinal));
    }

    private static async Task<ConfigLoadResult> LoadAsync(Dictionary<string, string?> settings, TimeProvider time)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var services = new ServiceCollection()
            .AddLogging()
            .AddSingleton(time)
            .AddSingleton<IConfiguration>(configuration)
            .AddAgentGatewayConfiguration();
        await using var provider = services.BuildServiceProvider();
        return await provider.GetRequiredService<GatewayConfigLoader>().LoadAsync(configuration, 1, CancellationToken.None);
    }
}
