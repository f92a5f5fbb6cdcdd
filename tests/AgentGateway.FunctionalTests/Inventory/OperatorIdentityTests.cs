using System.Net;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using AgentGateway.FunctionalTests.Adversarial;
using AgentGateway.FunctionalTests.Infrastructure;
using Microsoft.IdentityModel.JsonWebTokens;

namespace AgentGateway.FunctionalTests.Inventory;

/// <summary>
/// Operators are identified by the same rules as agents, through the same code: a DPoP-bound
/// operator token only with a valid proof for the admin listener (never as a plain bearer token),
/// no token living longer than <c>Inbound:MaxTokenLifetime</c>, access tokens only (<c>typ</c>),
/// <c>iat</c> not in the future, the issuer's and the admin API's <c>RequireDpop</c>. Tokens come
/// from the real OpenIddict server (minted with its own signing key where a shape it would never
/// issue is needed), proofs are real.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class OperatorIdentityTests(GatewayFixture fx) : IAsyncLifetime
{
    private readonly ECDsa _key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private readonly ECDsa _other = ECDsa.Create(ECCurve.NamedCurves.nistP256);

    public Task InitializeAsync() => fx.ResetAsync();

    public Task DisposeAsync()
    {
        _key.Dispose();
        _other.Dispose();
        return Task.CompletedTask;
    }

    [Fact]
    public async Task A_dpop_bound_operator_token_works_only_with_a_fresh_proof_for_the_admin_listener()
    {
        await using var gateway = await GatewayInstance.StartAsync(fx.Config(withRedis: false).WithAdmin());
        using var http = new HttpClient { BaseAddress = gateway.AdminAddress };
        var token = DpopProof.BoundToken(fx.Auth, Clients.Operator, _key);
        var url = new Uri(gateway.AdminAddress!, "/admin/agents").ToString();
        var proof = DpopProof.Create(_key, "GET", url, token);

        using var asBearer = await SendAsync(http, "Bearer " + token);
        using var noProof = await SendAsync(http, "DPoP " + token);
        using var proven = await SendAsync(http, "DPoP " + token, proof);
        using var replayed = await SendAsync(http, "DPoP " + token, proof);
        using var forTheProxy = await SendAsync(http, "DPoP " + token, DpopProof.Create(_key, "GET", new Uri(gateway.Address, "/admin/agents").ToString(), token));
        using var otherMethod = await SendAsync(http, "DPoP " + token, DpopProof.Create(_key, "POST", url, token));
        using var otherKey = await SendAsync(http, "DPoP " + token, ProofByAnotherKey(url, token));
        using var forTheHostNamed = await SendAsync(http, "DPoP " + token, [DpopProof.Create(_key, "GET", "http://admin.elsewhere.example/admin/agents", token)], host: "admin.elsewhere.example");
        using var unboundAsDpop = await SendAsync(http, "DPoP " + await fx.AgentTokenAsync(Clients.Operator), DpopProof.Create(_key, "GET", url, token));

        await Detail(asBearer, "bound to a key");
        await Detail(noProof, "exactly one DPoP proof");
        Assert.Equal(HttpStatusCode.OK, proven.StatusCode);
        await Detail(replayed, "replay");
        await Detail(forTheProxy, "htu");
        await Detail(otherMethod, "htm");
        await Detail(otherKey, "cnf.jkt");
        await Detail(forTheHostNamed, "htu");
        await Detail(unboundAsDpop, "needs a DPoP-bound token");
    }

    public static TheoryData<string, string, string> Shapes => new()
    {
        { "ten days", "token-lifetime-too-long", "minutes" },
        { "id token", "unauthenticated", "typ" },
        { "issued in the future", "unauthenticated", "iat" },
        { "expired", "unauthenticated", "expired" },
        { "other audience", "unauthenticated", "audience" },
        { "no iat nor nbf", "unauthenticated", "iat" },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public async Task An_operator_token_an_agent_could_not_use_is_refused_on_the_admin_api_too(string shape, string reason, string why)
    {
        await using var gateway = await GatewayInstance.StartAsync(fx.Config(withRedis: false).WithAdmin());
        using var http = new HttpClient { BaseAddress = gateway.AdminAddress };
        var now = DateTime.UtcNow;
        var token = shape switch
        {
            "ten days" => fx.Auth.Mint(Clients.Operator, AuthorizationServer.GatewayAudience, now.AddMinutes(-1), now.AddDays(10)),
            "id token" => fx.Auth.Mint(Clients.Operator, AuthorizationServer.GatewayAudience, now.AddMinutes(-1), now.AddMinutes(10), type: "JWT"),
            "issued in the future" => fx.Auth.Mint(Clients.Operator, AuthorizationServer.GatewayAudience, now.AddMinutes(-1), now.AddMinutes(30), issuedAt: now.AddMinutes(10)),
            "expired" => fx.Auth.Mint(Clients.Operator, AuthorizationServer.GatewayAudience, now.AddMinutes(-20), now.AddMinutes(-10)),
            "other audience" => fx.Auth.Mint(Clients.Operator, AuthorizationServer.OtherAudience, now.AddMinutes(-1), now.AddMinutes(10)),
            "no iat nor nbf" => Unstamped(),
            _ => throw new ArgumentOutOfRangeException(nameof(shape)),
        };

        using var refused = await SendAsync(http, "Bearer " + token);
        using var control = await SendAsync(http, "Bearer " + await fx.AgentTokenAsync(Clients.Operator));

        var problem = await ProblemAssert.IsProblemAsync(refused, HttpStatusCode.Unauthorized, reason);
        Assert.Contains(why, problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, control.StatusCode);
    }

    [Theory]
    [InlineData("issuer")]
    [InlineData("admin")]
    public async Task Where_dpop_is_required_an_unbound_operator_token_is_refused(string where)
    {
        var config = fx.Config(withRedis: false).WithAdmin();
        if (where == "issuer")
        {
            config["Gateway"]!["Inbound"]!["Issuers"]!["corp"]!["RequireDpop"] = true;
        }
        else
        {
            config["Gateway"]!["Admin"]!["RequireDpop"] = true;
        }

        await using var gateway = await GatewayInstance.StartAsync(config);
        using var http = new HttpClient { BaseAddress = gateway.AdminAddress };
        var token = DpopProof.BoundToken(fx.Auth, Clients.Operator, _key);

        using var unbound = await SendAsync(http, "Bearer " + await fx.AgentTokenAsync(Clients.Operator));
        using var bound = await SendAsync(http, "DPoP " + token, DpopProof.Create(_key, "GET", new Uri(gateway.AdminAddress!, "/admin/agents").ToString(), token));

        await Detail(unbound, "requires DPoP", "DPoP-bound");
        Assert.Equal(HttpStatusCode.OK, bound.StatusCode);
    }

    /// <summary>Behind a proxy, the admin API's proofs name its public origin, not the address it listens on.</summary>
    [Fact]
    public async Task With_admin_public_origins_a_proof_must_name_one_of_them()
    {
        var config = fx.Config(withRedis: false).WithAdmin();
        config["Gateway"]!["Admin"]!["PublicOrigins"] = new JsonArray("https://admin.gateway.example");
        await using var gateway = await GatewayInstance.StartAsync(config);
        using var http = new HttpClient { BaseAddress = gateway.AdminAddress };
        var token = DpopProof.BoundToken(fx.Auth, Clients.Operator, _key);

        using var listener = await SendAsync(http, "DPoP " + token, DpopProof.Create(_key, "GET", new Uri(gateway.AdminAddress!, "/admin/agents").ToString(), token));
        using var published = await SendAsync(http, "DPoP " + token, DpopProof.Create(_key, "GET", "https://ADMIN.gateway.example:443/admin/agents?page=1", token));

        await Detail(listener, "htu");
        Assert.Equal(HttpStatusCode.OK, published.StatusCode);
    }

    private string ProofByAnotherKey(string url, string token) => DpopProof.Create(_other, "GET", url, token);

    /// <summary>An operator token signed by the real server's key, saying neither when it was issued nor from when it is valid.</summary>
    private string Unstamped()
    {
        var kid = new JsonWebToken(fx.Auth.Mint(Clients.Operator, AuthorizationServer.GatewayAudience, DateTime.UtcNow.AddMinutes(-1), DateTime.UtcNow.AddMinutes(5))).Kid;
        var payload = RawJwt.ValidPayload(fx.Auth.Issuer, Clients.Operator, AuthorizationServer.GatewayAudience);
        payload.Remove("iat");
        payload.Remove("nbf");
        return RawJwt.Create(RawJwt.Header("RS256", kid), payload, RawJwt.With(fx.Auth.SigningKeys[0], "RS256"));
    }

    private static async Task Detail(HttpResponseMessage response, params string[] anyOf)
    {
        var problem = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.Unauthorized, "unauthenticated");
        var detail = problem.GetProperty("detail").GetString()!;
        Assert.True(anyOf.Any(part => detail.Contains(part, StringComparison.Ordinal)), detail);
    }

    private static Task<HttpResponseMessage> SendAsync(HttpClient http, string authorization, params string[] proofs) =>
        SendAsync(http, authorization, proofs, host: null);

    private static async Task<HttpResponseMessage> SendAsync(HttpClient http, string authorization, string[] proofs, string? host)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/admin/agents");
        request.Headers.TryAddWithoutValidation("Authorization", authorization);
        if (host is not null)
        {
            request.Headers.Host = host;
        }

        foreach (var proof in proofs)
        {
            request.Headers.TryAddWithoutValidation("DPoP", proof);
        }

        return await http.SendAsync(request);
    }
}
