using System.Net;
using System.Text.Json.Nodes;
using AgentGateway.FunctionalTests.Infrastructure;
using Microsoft.Extensions.Time.Testing;

namespace AgentGateway.FunctionalTests.Credentials;

/// <summary>
/// Mutual TLS to the upstream: a cluster's connections present the client certificate its
/// metadata names, to a real Kestrel upstream that requires one from its CA; the server's own
/// certificate is checked against the configured CA only; a rotated certificate file is used
/// for the next connection without a reload.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class MtlsClientCertificateTests(GatewayFixture fx) : IAsyncLifetime
{
    private readonly TestPki _pki = TestPki.Create("AgentGateway test upstream CA");
    private MtlsUpstream _upstream = null!;

    public async Task InitializeAsync()
    {
        await fx.ResetAsync();
        _upstream = await MtlsUpstream.StartAsync(_pki.IssueServer(), _pki);
    }

    public async Task DisposeAsync()
    {
        await _upstream.DisposeAsync();
        _pki.Dispose();
    }

    [Fact]
    public async Task The_cluster_presents_its_certificate_and_the_agent_token_never_arrives()
    {
        var client = _pki.IssueClient("gateway-client");
        var (certificate, key) = _pki.WritePem(client);
        await using var gateway = await GatewayInstance.StartAsync(WithMtls(fx.Config(withRedis: false), certificate, key, _pki.WriteAuthorityPem()));
        var agentToken = await fx.AgentTokenAsync();

        using var response = await gateway.GetAsAgentAsync("/secure/accounts?access_token=" + agentToken, agentToken);

        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        var seen = Assert.Single(_upstream.Received);
        Assert.Equal(client.Thumbprint, seen.Thumbprint);
        Assert.Equal("/accounts", seen.PathAndQuery);
        Assert.False(seen.Headers.ContainsKey("Authorization"));
        _upstream.AssertNeverSaw(agentToken);
    }

    [Fact]
    public async Task A_route_can_add_an_oauth_token_on_a_cluster_that_presents_a_certificate()
    {
        var client = _pki.IssueClient("gateway-client");
        var (certificate, key) = _pki.WritePem(client);
        await using var gateway = await GatewayInstance.StartAsync(WithMtls(fx.Config(withRedis: false), certificate, key, _pki.WriteAuthorityPem()));
        var agentToken = await fx.AgentTokenAsync();

        using var response = await gateway.GetAsAgentAsync("/secure-oauth/accounts", agentToken);

        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        var seen = Assert.Single(_upstream.Received);
        Assert.Equal(client.Thumbprint, seen.Thumbprint);
        Assert.StartsWith("Bearer ", seen.Headers["Authorization"], StringComparison.Ordinal);
        _upstream.AssertNeverSaw(agentToken);
    }

    [Fact]
    public async Task Without_the_certificate_the_upstream_refuses_the_handshake_and_the_agent_gets_502()
    {
        var (certificate, key) = _pki.WritePem(_pki.IssueClient("gateway-client"));
        await using var gateway = await GatewayInstance.StartAsync(WithMtls(fx.Config(withRedis: false), certificate, key, _pki.WriteAuthorityPem()));
        var agentToken = await fx.AgentTokenAsync();

        using var response = await gateway.GetAsAgentAsync("/secure-nocert/accounts", agentToken);

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Empty(_upstream.Received);
    }

    [Fact]
    public async Task A_server_certificate_from_another_ca_is_refused_before_anything_is_sent()
    {
        using var otherCa = TestPki.Create("Somebody else's CA");
        var (certificate, key) = _pki.WritePem(_pki.IssueClient("gateway-client"));
        await using var gateway = await GatewayInstance.StartAsync(WithMtls(fx.Config(withRedis: false), certificate, key, otherCa.WriteAuthorityPem()));
        var agentToken = await fx.AgentTokenAsync();

        using var response = await gateway.GetAsAgentAsync("/secure-oauth/accounts", agentToken);

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Empty(_upstream.Received);
    }

    [Fact]
    public async Task A_rotated_certificate_file_is_presented_on_the_next_connection_without_a_reload()
    {
        var first = _pki.IssueClient("gateway-client-1");
        var (certificate, key) = _pki.WritePem(first);
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var gateway = await GatewayInstance.StartAsync(WithMtls(fx.Config(withRedis: false), certificate, key, _pki.WriteAuthorityPem()), time);
        var agentToken = await fx.AgentTokenAsync();
        var revision = gateway.Config.Status.Revision;
        using (var before = await gateway.GetAsAgentAsync("/secure/a", agentToken))
        {
            Assert.Equal(HttpStatusCode.OK, before.StatusCode);
        }

        var second = _pki.IssueClient("gateway-client-2");
        _pki.WritePem(second, certificate, key);
        // The files are looked at again once ReloadInterval (1 s) has passed on the gateway's clock.
        time.Advance(TimeSpan.FromSeconds(1.1));
        using (var after = await gateway.GetAsAgentAsync("/secure/b", agentToken))
        {
            Assert.Equal(HttpStatusCode.OK, after.StatusCode);
        }

        Assert.Equal(first.Thumbprint, _upstream.Received[0].Thumbprint);
        Assert.Equal(second.Thumbprint, _upstream.Received[^1].Thumbprint);
        Assert.Equal(revision, gateway.Config.Status.Revision);
        Assert.Contains(gateway.Logs.Lines, m => m.Contains("Client certificate crm-mtls rotated", StringComparison.Ordinal));
        _upstream.AssertNeverSaw(agentToken);
    }

    [Fact]
    public async Task An_expired_certificate_rotated_in_is_not_used_the_agent_gets_503()
    {
        var (certificate, key) = _pki.WritePem(_pki.IssueClient("gateway-client"));
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var gateway = await GatewayInstance.StartAsync(WithMtls(fx.Config(withRedis: false), certificate, key, _pki.WriteAuthorityPem()), time);
        var agentToken = await fx.AgentTokenAsync();

        var expired = _pki.IssueClient("gateway-client-old", DateTimeOffset.UtcNow.AddDays(-2), DateTimeOffset.UtcNow.AddDays(-1));
        _pki.WritePem(expired, certificate, key);
        time.Advance(TimeSpan.FromSeconds(1.1));
        using var response = await gateway.GetAsAgentAsync("/secure/a", agentToken);

        var problem = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.ServiceUnavailable, "credential-unavailable");
        Assert.Contains("expired", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Empty(_upstream.Received);
    }

    /// <summary>Cluster <c>secure</c> (the mTLS upstream, presenting credential <c>crm-mtls</c>) with
    /// routes <c>secure</c> (certificate only) and <c>secure-oauth</c> (plus the CRM OAuth token);
    /// cluster <c>secure-nocert</c>, the same upstream without a certificate.</summary>
    private JsonObject WithMtls(JsonObject config, string certificate, string key, string authority)
    {
        var gateway = config["Gateway"]!;
        gateway["Credentials"]!["crm-mtls"] = new JsonObject
        {
            ["Kind"] = "MtlsClientCertificate",
            ["Certificate"] = "file:" + certificate,
            ["PrivateKey"] = "file:" + key,
            ["ServerCertificateAuthority"] = "file:" + authority,
            ["ReloadInterval"] = "00:00:01",
        };
        config.WithRoute("secure", _upstream.Url, "crm-mtls")
            .WithRoute("secure-oauth", _upstream.Url, "crm", cluster: "secure", grant: "secure")
            .WithRoute("secure-nocert", _upstream.Url, "none", grant: "secure");
        config["ReverseProxy"]!["Clusters"]!["secure"]!["Metadata"] = new JsonObject { ["ClientCertificate"] = "crm-mtls" };
        return config;
    }
}
