using System.Net;
using System.Net.Http.Headers;
using AgentGateway.FunctionalTests.Infrastructure;
using WireMock.RequestBuilders;
using WireMock.ResponseBuilders;

namespace AgentGateway.FunctionalTests.Credentials;

/// <summary>An upstream that stops accepting a cached hop token: the token is dropped everywhere,
/// and a request that can be replayed safely is sent once more with a fresh one.</summary>
[Collection(GatewayCollection.Name)]
public sealed class UpstreamRefusalTests(GatewayFixture fx) : IAsyncLifetime
{
    public Task InitializeAsync() => fx.ResetAsync();

    public Task DisposeAsync()
    {
        fx.Crm.Server.ResetScenarios();
        foreach (var mapping in fx.Crm.Server.Mappings.Where(m => m.Scenario is not null).ToList())
        {
            fx.Crm.Server.DeleteMapping(mapping.Guid);
        }

        return Task.CompletedTask;
    }

    [Fact]
    public async Task A_get_refused_with_a_cached_token_is_retried_once_with_a_fresh_token()
    {
        await using var gateway = await GatewayInstance.StartAsync(fx.Config(withRedis: true));
        var agentToken = await fx.AgentTokenAsync();
        var before = fx.Auth.TokenRequestsFor(Clients.CrmHop);
        using (var warm = await SendAsync(gateway, HttpMethod.Get, "/crm/warm", agentToken))
        {
            Assert.Equal(HttpStatusCode.OK, warm.StatusCode);
        }

        RefuseOnce("/flaky");
        using var response = await SendAsync(gateway, HttpMethod.Get, "/crm/flaky", agentToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("{\"ok\":true}", await response.Content.ReadAsStringAsync());
        Assert.Equal(2, fx.Auth.TokenRequestsFor(Clients.CrmHop) - before);
        Assert.Equal(3, fx.Crm.Received.Count);
        Assert.Equal(fx.Crm.Header(0, "Authorization"), fx.Crm.Header(1, "Authorization"));
        Assert.NotEqual(fx.Crm.Header(1, "Authorization"), fx.Crm.Header(2, "Authorization"));
        fx.Crm.AssertNeverSaw(agentToken);
    }

    [Fact]
    public async Task A_post_refused_with_a_cached_token_returns_the_401_but_the_next_request_gets_a_fresh_token()
    {
        await using var gateway = await GatewayInstance.StartAsync(fx.Config(withRedis: true));
        var agentToken = await fx.AgentTokenAsync();
        var before = fx.Auth.TokenRequestsFor(Clients.CrmHop);
        using (var warm = await SendAsync(gateway, HttpMethod.Get, "/crm/warm", agentToken))
        {
            Assert.Equal(HttpStatusCode.OK, warm.StatusCode);
        }

        RefuseOnce("/orders");
        using (var post = await SendAsync(gateway, HttpMethod.Post, "/crm/orders", agentToken, "{\"item\":1}"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, post.StatusCode);
        }

        Assert.Equal(2, fx.Crm.Received.Count);
        using (var next = await SendAsync(gateway, HttpMethod.Get, "/crm/after", agentToken))
        {
            Assert.Equal(HttpStatusCode.OK, next.StatusCode);
        }

        Assert.Equal(2, fx.Auth.TokenRequestsFor(Clients.CrmHop) - before);
        Assert.NotEqual(fx.Crm.Header(1, "Authorization"), fx.Crm.Header(2, "Authorization"));
        fx.Crm.AssertNeverSaw(agentToken);
    }

    [Fact]
    public async Task A_fresh_token_refused_at_once_is_not_retried()
    {
        await using var gateway = await GatewayInstance.StartAsync(fx.Config(withRedis: false));
        var agentToken = await fx.AgentTokenAsync();
        var before = fx.Auth.TokenRequestsFor(Clients.CrmHop);

        RefuseOnce("/first");
        using var response = await SendAsync(gateway, HttpMethod.Get, "/crm/first", agentToken);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Single(fx.Crm.Received);
        Assert.Equal(1, fx.Auth.TokenRequestsFor(Clients.CrmHop) - before);
    }

    [Fact]
    public async Task An_upstream_that_refuses_every_token_costs_one_fresh_token_not_one_per_request()
    {
        await using var gateway = await GatewayInstance.StartAsync(fx.Config(withRedis: false));
        var agentToken = await fx.AgentTokenAsync();
        var before = fx.Auth.TokenRequestsFor(Clients.CrmHop);
        using (var warm = await SendAsync(gateway, HttpMethod.Get, "/crm/warm", agentToken))
        {
            Assert.Equal(HttpStatusCode.OK, warm.StatusCode);
        }

        var refusing = RefuseAlways("/always");
        try
        {
            for (var i = 0; i < 5; i++)
            {
                using var refused = await SendAsync(gateway, HttpMethod.Get, "/crm/always", agentToken);
                Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            }
        }
        finally
        {
            fx.Crm.Server.DeleteMapping(refusing);
        }

        using (var elsewhere = await SendAsync(gateway, HttpMethod.Get, "/crm/elsewhere", agentToken))
        {
            Assert.Equal(HttpStatusCode.OK, elsewhere.StatusCode);
        }

        // The warm-up's token, then one fresh token for the first refusal's replay; the four later
        // refusals inside the interval drop nothing and are not replayed.
        Assert.Equal(2, fx.Auth.TokenRequestsFor(Clients.CrmHop) - before);
        Assert.Equal(1 + 2 + 4 + 1, fx.Crm.Received.Count);
        Assert.Equal(fx.Crm.Header(2, "Authorization"), fx.Crm.Header(7, "Authorization"));
        fx.Crm.AssertNeverSaw(agentToken);
    }

    /// <summary>Every request to <paramref name="path"/> gets 401.</summary>
    private Guid RefuseAlways(string path)
    {
        var mapping = Guid.NewGuid();
        fx.Crm.Server.Given(Request.Create().WithPath(path).UsingAnyMethod())
            .WithGuid(mapping)
            .AtPriority(1)
            .RespondWith(Response.Create().WithStatusCode(401).WithHeader("WWW-Authenticate", "Bearer error=\"invalid_token\"").WithBody("token refused"));
        return mapping;
    }

    /// <summary>The next request to <paramref name="path"/> gets 401; later ones fall through to 200.</summary>
    private void RefuseOnce(string path)
    {
        var scenario = "refuse-once-" + Guid.NewGuid().ToString("N");
        fx.Crm.Server.Given(Request.Create().WithPath(path).UsingAnyMethod())
            .AtPriority(1)
            .InScenario(scenario)
            .WillSetStateTo("refused")
            .RespondWith(Response.Create().WithStatusCode(401).WithHeader("WWW-Authenticate", "Bearer error=\"invalid_token\"").WithBody("token revoked"));
    }

    private static async Task<HttpResponseMessage> SendAsync(GatewayInstance gateway, HttpMethod method, string path, string token, string? body = null)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (body is not null)
        {
            request.Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");
        }

        return await gateway.Client.SendAsync(request);
    }
}
