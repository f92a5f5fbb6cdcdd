using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using AgentGateway.FunctionalTests.Infrastructure;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace AgentGateway.FunctionalTests.Identity;

/// <summary>DPoP (RFC 9449) with real proofs: a bound token works only with a fresh proof by its
/// key for this request; a proof is good once across replicas; a bound token is never a bearer token.</summary>
[Collection(GatewayCollection.Name)]
public sealed class DpopTests(GatewayFixture fx) : IAsyncLifetime
{
    private readonly ECDsa _key = ECDsa.Create(ECCurve.NamedCurves.nistP256);

    public Task InitializeAsync() => fx.ResetAsync();

    public Task DisposeAsync()
    {
        _key.Dispose();
        return Task.CompletedTask;
    }

    [Fact]
    public async Task A_bound_token_with_a_valid_proof_is_forwarded_and_neither_reaches_the_upstream()
    {
        await using var gateway = await GatewayInstance.StartAsync(fx.Config(withRedis: false));
        var token = BoundToken(_key);
        var proof = Proof(_key, "GET", Url(gateway, "/crm/accounts"), token);

        using var response = await SendAsync(gateway, "/crm/accounts", "DPoP " + token, proof);

        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        Assert.Null(fx.Crm.Header(0, "DPoP"));
        fx.Crm.AssertNeverSaw(token);
        fx.Crm.AssertNeverSaw(proof);
    }

    [Fact]
    public async Task A_proof_is_good_once_on_each_replica_it_reaches()
    {
        var config = fx.Config(withRedis: true);
        await using var first = await GatewayInstance.StartAsync(config);
        await using var second = await GatewayInstance.StartAsync(config);
        var token = BoundToken(_key);
        var proof = Proof(_key, "GET", Url(second, "/crm/accounts"), token);

        using var once = await SendAsync(second, "/crm/accounts", "DPoP " + token, proof);
        using var again = await SendAsync(second, "/crm/accounts", "DPoP " + token, proof);
        var crossProof = Proof(_key, "GET", Url(first, "/crm/accounts"), token, jti: "shared-jti-" + Guid.NewGuid().ToString("N"));
        using var crossOnce = await SendAsync(first, "/crm/accounts", "DPoP " + token, crossProof);
        using var crossAgain = await SendAsync(first, "/crm/accounts", "DPoP " + token, crossProof);

        Assert.Equal(HttpStatusCode.OK, once.StatusCode);
        var problem = await ProblemAssert.IsProblemAsync(again, HttpStatusCode.Unauthorized, "unauthenticated");
        Assert.Contains("replay", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, crossOnce.StatusCode);
        await ProblemAssert.IsProblemAsync(crossAgain, HttpStatusCode.Unauthorized, "unauthenticated");
        Assert.Equal(2, fx.Crm.Received.Count);
    }

    [Fact]
    public async Task The_jti_store_is_shared_so_a_proof_used_on_one_replica_fails_on_the_other()
    {
        var config = fx.Config(withRedis: true);
        await using var first = await GatewayInstance.StartAsync(config);
        await using var second = await GatewayInstance.StartAsync(config);
        var token = BoundToken(_key);
        var jti = "jti-" + Guid.NewGuid().ToString("N");

        using var onFirst = await SendAsync(first, "/crm/accounts", "DPoP " + token, Proof(_key, "GET", Url(first, "/crm/accounts"), token, jti: jti));
        using var onSecond = await SendAsync(second, "/crm/accounts", "DPoP " + token, Proof(_key, "GET", Url(second, "/crm/accounts"), token, jti: jti));

        Assert.Equal(HttpStatusCode.OK, onFirst.StatusCode);
        var problem = await ProblemAssert.IsProblemAsync(onSecond, HttpStatusCode.Unauthorized, "unauthenticated");
        Assert.Contains("replay", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    public static TheoryData<string, string> Mismatches => new()
    {
        { "method", "htm" },
        { "url", "htu" },
        { "stale", "iat" },
        { "other token", "ath" },
        { "other key", "cnf.jkt" },
        { "typ", "typ" },
        { "private key in jwk", "private" },
        { "symmetric", "algorithm" },
        { "none", "algorithm" },
        { "no proof", "exactly one DPoP proof" },
        { "two proofs", "DPoP proof" },
        { "bearer downgrade", "DPoP scheme" },
    };

    [Theory]
    [MemberData(nameof(Mismatches))]
    public async Task Every_mismatch_is_refused_and_nothing_is_forwarded(string variant, string expected)
    {
        await using var gateway = await GatewayInstance.StartAsync(fx.Config(withRedis: false));
        var token = BoundToken(_key);
        var url = Url(gateway, "/crm/accounts");
        using var other = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var (scheme, proofs) = variant switch
        {
            "method" => ("DPoP", new[] { Proof(_key, "POST", url, token) }),
            "url" => ("DPoP", [Proof(_key, "GET", Url(gateway, "/crm/other"), token)]),
            "stale" => ("DPoP", [Proof(_key, "GET", url, token, iat: DateTimeOffset.UtcNow.AddMinutes(-3))]),
            "other token" => ("DPoP", [Proof(_key, "GET", url, BoundToken(_key))]),
            "other key" => ("DPoP", [Proof(other, "GET", url, token)]),
            "typ" => ("DPoP", [Proof(_key, "GET", url, token, typ: "JWT")]),
            "private key in jwk" => ("DPoP", [Proof(_key, "GET", url, token, leakPrivate: true)]),
            "symmetric" => ("DPoP", [SymmetricProof(url, token)]),
            "none" => ("DPoP", [UnsignedProof(url, token)]),
            "no proof" => ("DPoP", []),
            "two proofs" => ("DPoP", [Proof(_key, "GET", url, token), Proof(_key, "GET", url, token)]),
            "bearer downgrade" => ("Bearer", [Proof(_key, "GET", url, token)]),
            _ => throw new ArgumentOutOfRangeException(nameof(variant)),
        };

        using var response = await SendAsync(gateway, "/crm/accounts", $"{scheme} {token}", proofs);

        var problem = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.Unauthorized, "unauthenticated");
        Assert.Contains(expected, problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Empty(fx.Crm.Received);
    }

    [Fact]
    public async Task An_issuer_that_requires_dpop_refuses_unbound_tokens()
    {
        var config = fx.Config(withRedis: false);
        config["Gateway"]!["Inbound"]!["Issuers"]!["corp"]!["RequireDpop"] = true;
        await using var gateway = await GatewayInstance.StartAsync(config);

        using var unbound = await gateway.GetAsAgentAsync("/crm/accounts", await fx.AgentTokenAsync());
        var token = BoundToken(_key);
        using var bound = await SendAsync(gateway, "/crm/accounts", "DPoP " + token, Proof(_key, "GET", Url(gateway, "/crm/accounts"), token));

        var problem = await ProblemAssert.IsProblemAsync(unbound, HttpStatusCode.Unauthorized, "unauthenticated");
        Assert.Contains("requires DPoP", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, bound.StatusCode);
    }

    /// <summary>Nothing the agent writes into its request moves the origin its proof must name: not
    /// <c>Host</c>, not the forwarding headers proxies add (the gateway is the edge; it trusts none),
    /// not an absolute-form target. A proof made for another server is refused whichever of them
    /// names that server; a proof for this gateway is good whatever they say.</summary>
    [Theory]
    [InlineData("Host")]
    [InlineData("X-Forwarded-Host")]
    [InlineData("Forwarded")]
    [InlineData("absolute-form target")]
    public async Task A_proof_for_another_origin_is_refused_whatever_the_request_claims_its_origin_is(string how)
    {
        await using var gateway = await GatewayInstance.StartAsync(fx.Config(withRedis: false));
        var token = BoundToken(_key);
        const string Elsewhere = "https://api.elsewhere.example/crm/accounts";
        var (target, host, extra) = how switch
        {
            "Host" => ("/crm/accounts", "api.elsewhere.example", ""),
            "X-Forwarded-Host" => ("/crm/accounts", "gateway.test", "X-Forwarded-Host: api.elsewhere.example\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Port: 443\r\n"),
            "Forwarded" => ("/crm/accounts", "gateway.test", "Forwarded: host=api.elsewhere.example;proto=https\r\n"),
            "absolute-form target" => (Elsewhere, "api.elsewhere.example", ""),
            _ => throw new ArgumentOutOfRangeException(nameof(how)),
        };

        var forged = await RawHttp.SendAsync(gateway, RawGet(target, host, extra, token, Proof(_key, "GET", Elsewhere, token)));
        var genuine = await RawHttp.SendAsync(gateway, RawGet(target, host, extra, token, Proof(_key, "GET", Url(gateway, "/crm/accounts"), token)));

        Assert.StartsWith("HTTP/1.1 401", forged, StringComparison.Ordinal);
        Assert.Contains("its htu is not this request", forged, StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 200", genuine, StringComparison.Ordinal);
        Assert.Single(fx.Crm.Received);
        fx.Crm.AssertNeverSaw(token);
    }

    /// <summary>RFC 9449 §4.3: htu is compared as a URI, after RFC 3986 syntax- and scheme-based
    /// normalisation, without query and fragment; anything else names another resource.</summary>
    [Theory]
    [InlineData("{origin}/crm/accounts", true)]
    [InlineData("HTTP://{host}:{port}/crm/accounts", true)]
    [InlineData("http://localhost:{port}/crm/accounts", true)]
    [InlineData("{origin}/crm/%61ccounts", true)]
    [InlineData("{origin}/crm/./old/../accounts", true)]
    [InlineData("{origin}/crm/accounts?page=2#top", true)]
    [InlineData("{origin}/crm/Accounts", false)]
    [InlineData("{origin}/crm/accounts/", false)]
    [InlineData("{origin}/crm%2Faccounts", false)]
    [InlineData("https://{host}:{port}/crm/accounts", false)]
    [InlineData("http://{host}:{other}/crm/accounts", false)]
    [InlineData("http://agent@{host}:{port}/crm/accounts", false)]
    [InlineData("/crm/accounts", false)]
    [InlineData("{origin}/crm/acc%zzounts", false)]
    public async Task The_htu_is_compared_as_rfc_9449_says(string htu, bool accepted)
    {
        await using var gateway = await GatewayInstance.StartAsync(fx.Config(withRedis: false));
        var token = BoundToken(_key);
        var url = htu.Replace("{origin}", $"http://{gateway.Address.Host}:{gateway.Address.Port}", StringComparison.Ordinal)
            .Replace("{host}", gateway.Address.Host, StringComparison.Ordinal)
            .Replace("{port}", gateway.Address.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal)
            .Replace("{other}", (gateway.Address.Port == 65535 ? 1 : gateway.Address.Port + 1).ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);

        using var response = await SendAsync(gateway, "/crm/accounts", "DPoP " + token, Proof(_key, "GET", url, token));

        if (accepted)
        {
            Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        }
        else
        {
            var problem = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.Unauthorized, "unauthenticated");
            Assert.Contains("htu", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
            Assert.Empty(fx.Crm.Received);
        }
    }

    /// <summary>Behind a load balancer or TLS terminator, agents name the gateway's public origin;
    /// once configured, only those origins count — not the address the gateway listens on.</summary>
    [Fact]
    public async Task With_public_origins_the_htu_names_one_of_them()
    {
        var config = fx.Config(withRedis: false);
        config["Gateway"]!["Inbound"]!["PublicOrigins"] = new System.Text.Json.Nodes.JsonArray("https://gateway.example.com", "https://gw.internal.example:8443");
        await using var gateway = await GatewayInstance.StartAsync(config);
        var token = BoundToken(_key);

        async Task<HttpStatusCode> Send(string url)
        {
            using var response = await SendAsync(gateway, "/crm/accounts", "DPoP " + token, Proof(_key, "GET", url, token));
            return response.StatusCode;
        }

        Assert.Equal(HttpStatusCode.OK, await Send("https://gateway.example.com/crm/accounts"));
        Assert.Equal(HttpStatusCode.OK, await Send("https://Gateway.Example.com:443/crm/accounts"));
        Assert.Equal(HttpStatusCode.OK, await Send("https://gw.internal.example:8443/crm/accounts"));
        Assert.Equal(HttpStatusCode.Unauthorized, await Send(Url(gateway, "/crm/accounts")));
        Assert.Equal(HttpStatusCode.Unauthorized, await Send("http://gateway.example.com/crm/accounts"));
        Assert.Equal(HttpStatusCode.Unauthorized, await Send("https://gw.internal.example/crm/accounts"));
        Assert.Equal(3, fx.Crm.Received.Count);
        fx.Crm.AssertNeverSaw(token);
    }

    private string BoundToken(ECDsa key) => DpopProof.BoundToken(fx.Auth, Clients.Alpha, key);

    private static string Proof(ECDsa key, string method, string url, string accessToken, string? jti = null, DateTimeOffset? iat = null, string typ = "dpop+jwt", bool leakPrivate = false) =>
        DpopProof.Create(key, method, url, accessToken, jti, iat, typ, leakPrivate);

    private static string SymmetricProof(string url, string accessToken)
    {
        var secret = RandomNumberGenerator.GetBytes(32);
        return new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(new SecurityTokenDescriptor
        {
            TokenType = "dpop+jwt",
            AdditionalHeaderClaims = new Dictionary<string, object> { ["jwk"] = new Dictionary<string, string> { ["kty"] = "oct", ["k"] = Base64UrlEncoder.Encode(secret) } },
            Claims = DpopProof.Claims("GET", url, accessToken, null, null),
            SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(secret), SecurityAlgorithms.HmacSha256),
        });
    }

    private string UnsignedProof(string url, string accessToken)
    {
        var header = Base64UrlEncoder.Encode("{\"typ\":\"dpop+jwt\",\"alg\":\"none\",\"jwk\":" + System.Text.Json.JsonSerializer.Serialize(DpopProof.Jwk(_key)) + "}");
        var payload = Base64UrlEncoder.Encode(System.Text.Json.JsonSerializer.Serialize(DpopProof.Claims("GET", url, accessToken, null, null)));
        return header + "." + payload + ".";
    }

    private static string RawGet(string target, string host, string headers, string token, string proof) =>
        $"GET {target} HTTP/1.1\r\nHost: {host}\r\nAuthorization: DPoP {token}\r\nDPoP: {proof}\r\n{headers}Connection: close\r\n\r\n";

    private static string Url(GatewayInstance gateway, string path) => new Uri(gateway.Address, path).ToString();

    private static Task<HttpResponseMessage> SendAsync(GatewayInstance gateway, string path, string authorization, params string[] proofs) =>
        SendAsync(gateway, path, authorization, proofs, host: null);

    private static async Task<HttpResponseMessage> SendAsync(GatewayInstance gateway, string path, string authorization, string[] proofs, string? host)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.TryAddWithoutValidation("Authorization", authorization);
        if (host is not null)
        {
            request.Headers.Host = host;
        }

        foreach (var proof in proofs)
        {
            request.Headers.TryAddWithoutValidation("DPoP", proof);
        }

        return await gateway.Client.SendAsync(request);
    }
}
