using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using AgentGateway.FunctionalTests.Infrastructure;
using WireMock.RequestBuilders;
using WireMock.ResponseBuilders;
using WireMock.Server;

namespace AgentGateway.FunctionalTests.Credentials;

/// <summary>
/// A token endpoint that is down, slow, rate-limiting, redirecting or talking nonsense: the agent
/// gets 503 <c>credential-unavailable</c> with a safe reason, nothing is forwarded without its
/// credential, and the failure is not cached — the first request after the endpoint recovers
/// gets a token.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class TokenEndpointFaultTests(GatewayFixture fx) : IAsyncLifetime, IDisposable
{
    private const string SecretVariable = "AGW_TEST_FAULTY_SECRET";
    private readonly WireMockServer _endpoint = WireMockServer.Start();

    public Task InitializeAsync()
    {
        Environment.SetEnvironmentVariable(SecretVariable, "faulty-endpoint-secret-canary");
        return fx.ResetAsync();
    }

    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose()
    {
        _endpoint.Stop();
        _endpoint.Dispose();
    }

    public static TheoryData<string, string> Faults => new()
    {
        { "rate-limited", "HTTP 429" },
        { "server-error", "HTTP 500" },
        { "html", "not an OAuth token response" },
        { "no-access-token", "no access_token" },
        { "wrong-token-type", "is not Bearer" },
        { "slow", "did not answer within 1 s" },
    };

    [Theory]
    [MemberData(nameof(Faults))]
    public async Task A_failing_token_endpoint_gives_503_forwards_nothing_and_is_not_cached(string fault, string expected)
    {
        Answer(fault);
        await using var gateway = await GatewayInstance.StartAsync(WithFaultyHop(fx.Config(withRedis: true), _endpoint.Url + "/token"));
        var agentToken = await fx.AgentTokenAsync();

        using (var response = await gateway.GetAsAgentAsync("/faulty/accounts", agentToken))
        {
            var problem = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.ServiceUnavailable, "credential-unavailable");
            var detail = problem.GetProperty("detail").GetString()!;
            Assert.True(detail.Contains(expected, StringComparison.Ordinal), detail);
            Assert.DoesNotContain("faulty-endpoint-secret-canary", problem.GetRawText(), StringComparison.Ordinal);
        }

        Assert.Empty(fx.Crm.Received);

        _endpoint.Reset();
        Answer("ok");
        using (var recovered = await gateway.GetAsAgentAsync("/faulty/accounts", agentToken))
        {
            Assert.Equal(HttpStatusCode.OK, recovered.StatusCode);
        }

        Assert.Equal("Bearer endpoint-token", fx.Crm.Header(0, "Authorization"));
        Assert.DoesNotContain(gateway.Logs.Lines, l => l.Contains("faulty-endpoint-secret-canary", StringComparison.Ordinal));
        fx.Crm.AssertNeverSaw(agentToken);
    }

    [Fact]
    public async Task A_token_endpoint_nobody_listens_on_gives_503()
    {
        var closedPort = Loopback.FreePort();
        await using var gateway = await GatewayInstance.StartAsync(WithFaultyHop(fx.Config(withRedis: false), $"http://127.0.0.1:{closedPort}/token"));
        var agentToken = await fx.AgentTokenAsync();

        using var response = await gateway.GetAsAgentAsync("/faulty/accounts", agentToken);

        var problem = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.ServiceUnavailable, "credential-unavailable");
        Assert.Contains("reaching the endpoint", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Empty(fx.Crm.Received);
    }

    [Fact]
    public async Task A_redirecting_token_endpoint_is_not_followed_so_the_secret_goes_nowhere_else()
    {
        using var elsewhere = WireMockServer.Start();
        elsewhere.Given(Request.Create().UsingAnyMethod()).RespondWith(Response.Create().WithStatusCode(200)
            .WithHeader("Content-Type", "application/json").WithBody("""{"access_token":"stolen","token_type":"Bearer","expires_in":3600}"""));
        _endpoint.Given(Request.Create().UsingAnyMethod()).RespondWith(Response.Create().WithStatusCode(307).WithHeader("Location", elsewhere.Url + "/token"));
        await using var gateway = await GatewayInstance.StartAsync(WithFaultyHop(fx.Config(withRedis: false), _endpoint.Url + "/token"));
        var agentToken = await fx.AgentTokenAsync();

        using var response = await gateway.GetAsAgentAsync("/faulty/accounts", agentToken);

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.ServiceUnavailable, "credential-unavailable");
        Assert.Empty(elsewhere.LogEntries);
        Assert.Empty(fx.Crm.Received);
    }

    private void Answer(string fault)
    {
        var response = fault switch
        {
            "ok" => Json("""{"access_token":"endpoint-token","token_type":"Bearer","expires_in":3600}"""),
            "rate-limited" => Response.Create().WithStatusCode(429).WithHeader("Retry-After", "30").WithBody("slow down"),
            "server-error" => Response.Create().WithStatusCode(500).WithBody("<html>boom faulty-endpoint-secret-canary</html>"),
            "html" => Response.Create().WithStatusCode(200).WithHeader("Content-Type", "text/html").WithBody("<html><body>Sign in</body></html>"),
            "no-access-token" => Json("""{"token_type":"Bearer","expires_in":3600}"""),
            "wrong-token-type" => Json("""{"access_token":"x","token_type":"N_A","expires_in":3600}"""),
            "slow" => Json("""{"access_token":"late","token_type":"Bearer","expires_in":3600}""").WithDelay(TimeSpan.FromSeconds(3)),
            _ => throw new ArgumentOutOfRangeException(nameof(fault)),
        };
        _endpoint.Given(Request.Create().WithPath("/token").UsingPost()).RespondWith(response);
    }

    private static IResponseBuilder Json(string body) =>
        Response.Create().WithStatusCode(200).WithHeader("Content-Type", "application/json").WithBody(body);

    /// <summary>Hop <c>faulty</c>: an OAuth credential at <paramref name="tokenEndpoint"/> with a 1 s timeout.</summary>
    private static JsonObject WithFaultyHop(JsonObject config, string tokenEndpoint) => config.WithHop("faulty", new JsonObject
    {
        ["Kind"] = "OAuthClientCredentials",
        ["TokenEndpoint"] = tokenEndpoint,
        ["ClientId"] = "faulty-client",
        ["ClientSecret"] = "env:" + SecretVariable,
        ["Timeout"] = "00:00:01",
    });
}
