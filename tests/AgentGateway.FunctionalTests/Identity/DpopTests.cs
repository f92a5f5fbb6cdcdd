using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
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

    private string BoundToken(ECDsa key) => fx.Auth.Mint(
        Clients.Alpha,
        AuthorizationServer.GatewayAudience,
        DateTime.UtcNow.AddMinutes(-1),
        DateTime.UtcNow.AddMinutes(10),
        claims: new Dictionary<string, object>
        {
            ["cnf"] = new Dictionary<string, object> { ["jkt"] = Thumbprint(key) },
            ["jti"] = Guid.NewGuid().ToString("N"),
        });

    private static string Thumbprint(ECDsa key) => Base64UrlEncoder.Encode(new JsonWebKey { Kty = "EC", Crv = "P-256", X = Jwk(key)["x"], Y = Jwk(key)["y"] }.ComputeJwkThumbprint());

    private static Dictionary<string, string> Jwk(ECDsa key, bool leakPrivate = false)
    {
        var p = key.ExportParameters(includePrivateParameters: leakPrivate);
        var jwk = new Dictionary<string, string>
        {
            ["kty"] = "EC",
            ["crv"] = "P-256",
            ["x"] = Base64UrlEncoder.Encode(p.Q.X!),
            ["y"] = Base64UrlEncoder.Encode(p.Q.Y!),
        };
        if (leakPrivate)
        {
            jwk["d"] = Base64UrlEncoder.Encode(p.D!);
        }

        return jwk;
    }

    private static string Proof(ECDsa key, string method, string url, string accessToken, string? jti = null, DateTimeOffset? iat = null, string typ = "dpop+jwt", bool leakPrivate = false) =>
        new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(new SecurityTokenDescriptor
        {
            TokenType = typ,
            AdditionalHeaderClaims = new Dictionary<string, object> { ["jwk"] = Jwk(key, leakPrivate) },
            Claims = Claims(method, url, accessToken, jti, iat),
            SigningCredentials = new SigningCredentials(new ECDsaSecurityKey(key), SecurityAlgorithms.EcdsaSha256),
        });

    private static string SymmetricProof(string url, string accessToken)
    {
        var secret = RandomNumberGenerator.GetBytes(32);
        return new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(new SecurityTokenDescriptor
        {
            TokenType = "dpop+jwt",
            AdditionalHeaderClaims = new Dictionary<string, object> { ["jwk"] = new Dictionary<string, string> { ["kty"] = "oct", ["k"] = Base64UrlEncoder.Encode(secret) } },
            Claims = Claims("GET", url, accessToken, null, null),
            SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(secret), SecurityAlgorithms.HmacSha256),
        });
    }

    private string UnsignedProof(string url, string accessToken)
    {
        var header = Base64UrlEncoder.Encode("{\"typ\":\"dpop+jwt\",\"alg\":\"none\",\"jwk\":" + System.Text.Json.JsonSerializer.Serialize(Jwk(_key)) + "}");
        var payload = Base64UrlEncoder.Encode(System.Text.Json.JsonSerializer.Serialize(Claims("GET", url, accessToken, null, null)));
        return header + "." + payload + ".";
    }

    private static Dictionary<string, object> Claims(string method, string url, string accessToken, string? jti, DateTimeOffset? iat) => new()
    {
        ["htm"] = method,
        ["htu"] = url,
        ["iat"] = (iat ?? DateTimeOffset.UtcNow).ToUnixTimeSeconds(),
        ["jti"] = jti ?? Guid.NewGuid().ToString("N"),
        ["ath"] = Base64UrlEncoder.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(accessToken))),
    };

    private static string Url(GatewayInstance gateway, string path) => new Uri(gateway.Address, path).ToString();

    private static async Task<HttpResponseMessage> SendAsync(GatewayInstance gateway, string path, string authorization, params string[] proofs)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.TryAddWithoutValidation("Authorization", authorization);
        foreach (var proof in proofs)
        {
            request.Headers.TryAddWithoutValidation("DPoP", proof);
        }

        return await gateway.Client.SendAsync(request);
    }
}
