using System.Net;
using System.Text.Json.Nodes;
using AgentGateway.FunctionalTests.Infrastructure;
using WireMock.Logging;
using WireMock.RequestBuilders;
using WireMock.ResponseBuilders;
using WireMock.Server;

namespace AgentGateway.FunctionalTests.Credentials;

/// <summary>
/// The platform metadata endpoints of Azure (IMDS) and GCP (the metadata server), emulated by one
/// WireMock server that the real SDKs reach through their own endpoint overrides:
/// <c>AZURE_POD_IDENTITY_AUTHORITY_HOST</c> for Azure.Identity, <c>GCE_METADATA_HOST</c> for
/// Google.Apis.Auth. The SDKs read them once per process, so one server serves the whole class.
/// </summary>
public sealed class MetadataEndpoints : IDisposable
{
    public const string AzurePath = "/metadata/identity/oauth2/token";
    public const string GcpPath = "/computeMetadata/v1/instance/service-accounts/default/token";

    /// <summary>One server for the process: the SDKs keep the first endpoint they read, so every
    /// class that needs one (the HTTP database hop, the PostgreSQL hop) shares it.</summary>
    private static readonly Lazy<WireMockServer> Shared = new(() =>
    {
        var server = WireMockServer.Start();
        Environment.SetEnvironmentVariable("AZURE_POD_IDENTITY_AUTHORITY_HOST", server.Url);
        Environment.SetEnvironmentVariable("GCE_METADATA_HOST", new Uri(server.Url!).Authority);
        return server;
    });

    public MetadataEndpoints()
    {
        Server = Shared.Value;
    }

    public WireMockServer Server { get; }

    public IReadOnlyList<ILogEntry> Calls(string path) => [.. Server.LogEntries.Where(e => e.RequestMessage.Path == path)];

    /// <summary>IMDS issues <paramref name="token"/>, for an hour, to requests that carry <c>Metadata: true</c>.</summary>
    public void AzureIssues(string token)
    {
        var expiresOn = DateTimeOffset.UtcNow.AddHours(1).ToUnixTimeSeconds();
        Server.Given(Request.Create().WithPath(AzurePath).UsingGet().WithHeader("Metadata", "true"))
            .RespondWith(Response.Create().WithStatusCode(200).WithHeader("Content-Type", "application/json").WithBody(
                $$"""{"access_token":"{{token}}","expires_on":"{{expiresOn}}","expires_in":"3599","resource":"https://database.windows.net","token_type":"Bearer"}"""));
    }

    /// <summary>The GCP metadata server issues <paramref name="token"/> to requests with <c>Metadata-Flavor: Google</c>.</summary>
    public void GcpIssues(string token)
    {
        Server.Given(Request.Create().WithPath(GcpPath).UsingGet().WithHeader("Metadata-Flavor", "Google"))
            .RespondWith(Response.Create().WithStatusCode(200).WithHeader("Content-Type", "application/json").WithHeader("Metadata-Flavor", "Google")
                .WithBody($$"""{"access_token":"{{token}}","expires_in":3599,"token_type":"Bearer"}"""));
    }

    public void Fails(string path) =>
        Server.Given(Request.Create().WithPath(path).UsingAnyMethod())
            .RespondWith(Response.Create().WithStatusCode(500).WithBody("metadata service unavailable"));

    public void Reset()
    {
        Server.Reset();
    }

    public void Dispose() => Server.Reset();
}

[Collection(GatewayCollection.Name)]
public sealed class ManagedIdentityTests(GatewayFixture fx, MetadataEndpoints metadata) : IAsyncLifetime, IClassFixture<MetadataEndpoints>
{
    public Task InitializeAsync()
    {
        metadata.Reset();
        return fx.ResetAsync();
    }

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task Azure_managed_identity_token_reaches_the_database_and_is_fetched_once()
    {
        var hopToken = "azure-mi-canary-" + Guid.NewGuid().ToString("N");
        metadata.AzureIssues(hopToken);
        await using var gateway = await GatewayInstance.StartAsync(WithDatabase(fx.Config(withRedis: true), Azure()));
        var agentToken = await fx.AgentTokenAsync();

        using var first = await gateway.GetAsAgentAsync("/db/query", agentToken);
        using var second = await gateway.GetAsAgentAsync("/db/query", agentToken);

        Assert.True(first.StatusCode == HttpStatusCode.OK, await first.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        Assert.Equal("Bearer " + hopToken, fx.Crm.Header(0, "Authorization"));
        Assert.Equal("Bearer " + hopToken, fx.Crm.Header(1, "Authorization"));
        var call = Assert.Single(metadata.Calls(MetadataEndpoints.AzurePath)).RequestMessage;
        Assert.Equal("https://database.windows.net", call.Query!["resource"].Single());
        Assert.False(call.Query.ContainsKey("client_id"));
        fx.Crm.AssertNeverSaw(agentToken);
    }

    [Fact]
    public async Task A_user_assigned_azure_identity_is_asked_for_by_client_id()
    {
        metadata.AzureIssues("azure-ua-" + Guid.NewGuid().ToString("N"));
        var clientId = Guid.NewGuid().ToString();
        await using var gateway = await GatewayInstance.StartAsync(WithDatabase(fx.Config(withRedis: false), Azure(clientId)));
        var agentToken = await fx.AgentTokenAsync();

        using var response = await gateway.GetAsAgentAsync("/db/query", agentToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var call = Assert.Single(metadata.Calls(MetadataEndpoints.AzurePath)).RequestMessage;
        Assert.Equal(clientId, call.Query!["client_id"].Single());
        fx.Crm.AssertNeverSaw(agentToken);
    }

    [Fact]
    public async Task Gcp_service_account_token_reaches_the_api_with_the_configured_scopes()
    {
        var hopToken = "gcp-sa-canary-" + Guid.NewGuid().ToString("N");
        metadata.GcpIssues(hopToken);
        var credential = new JsonObject
        {
            ["Kind"] = "ManagedIdentity",
            ["Provider"] = "Gcp",
            ["Scopes"] = new JsonArray("https://www.googleapis.com/auth/cloud-platform"),
        };
        await using var gateway = await GatewayInstance.StartAsync(WithDatabase(fx.Config(withRedis: false), credential));
        var agentToken = await fx.AgentTokenAsync();

        using var first = await gateway.GetAsAgentAsync("/db/query", agentToken);
        using var second = await gateway.GetAsAgentAsync("/db/query", agentToken);

        Assert.True(first.StatusCode == HttpStatusCode.OK, await first.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        Assert.Equal("Bearer " + hopToken, fx.Crm.Header(1, "Authorization"));
        var call = Assert.Single(metadata.Calls(MetadataEndpoints.GcpPath)).RequestMessage;
        Assert.Contains("cloud-platform", call.Query!["scopes"].Single(), StringComparison.Ordinal);
        fx.Crm.AssertNeverSaw(agentToken);
    }

    [Fact]
    public async Task A_failing_metadata_endpoint_gives_503_and_forwards_nothing()
    {
        metadata.Fails(MetadataEndpoints.AzurePath);
        // The SDK retries a failing IMDS on its own; the credential's Timeout bounds the wait.
        var credential = Azure();
        credential["Timeout"] = "00:00:02";
        await using var gateway = await GatewayInstance.StartAsync(WithDatabase(fx.Config(withRedis: false), credential));
        var agentToken = await fx.AgentTokenAsync();

        using var response = await gateway.GetAsAgentAsync("/db/query", agentToken);

        var problem = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.ServiceUnavailable, "credential-unavailable");
        Assert.DoesNotContain("metadata service unavailable", problem.GetRawText(), StringComparison.Ordinal);
        Assert.Empty(fx.Crm.Received);
    }

    private static JsonObject Azure(string? clientId = null)
    {
        var credential = new JsonObject
        {
            ["Kind"] = "ManagedIdentity",
            ["Provider"] = "Azure",
            ["Scopes"] = new JsonArray("https://database.windows.net/.default"),
        };
        if (clientId is not null)
        {
            credential["ClientId"] = clientId;
        }

        return credential;
    }

    private static JsonObject WithDatabase(JsonObject config, JsonObject credential) => config.WithHop("db", credential);
}
