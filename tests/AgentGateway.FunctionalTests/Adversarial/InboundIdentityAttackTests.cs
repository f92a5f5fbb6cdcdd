using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using AgentGateway.FunctionalTests.Infrastructure;
using Microsoft.Extensions.Time.Testing;
using Microsoft.IdentityModel.JsonWebTokens;
using WireMock.RequestBuilders;
using WireMock.ResponseBuilders;
using WireMock.Server;

namespace AgentGateway.FunctionalTests.Adversarial;

/// <summary>
/// The README's threat model, inbound identity: every way an agent could get a token past the gateway that the
/// gateway must not believe. Two issuers are trusted — the real OpenIddict server ("corp") and a
/// partner whose JWKS a WireMock server publishes — so key sets can be checked per issuer. Each
/// refusal is a 401 problem, nothing reaches the upstream, and every test also shows the genuine
/// token being accepted, so a refusal cannot come from a broken set-up.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class InboundIdentityAttackTests(GatewayFixture fx) : IAsyncLifetime, IDisposable
{
    private const string PartnerIssuer = "https://partner.example/";
    private const string PartnerAgent = "partner-bot";
    private const string PartnerKid = "partner-1";
    private const string Models = "/llm/openai/v1/models";

    private readonly RSA _partnerKey = RSA.Create(2048);
    private readonly WireMockServer _partnerJwks = WireMockServer.Start();
    private readonly WireMockServer _rogue = WireMockServer.Start();

    public Task InitializeAsync()
    {
        ServeJwks(RawJwt.Jwks((_partnerKey, PartnerKid)));
        _rogue.Given(Request.Create().UsingAnyMethod()).RespondWith(Response.Create().WithStatusCode(200).WithBody(RawJwt.Jwks((_partnerKey, "rogue"))));
        return fx.ResetAsync();
    }

    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose()
    {
        _partnerJwks.Dispose();
        _rogue.Dispose();
        _partnerKey.Dispose();
    }

    [Theory]
    // Unsigned, in any casing, with and without a signature part.
    [InlineData("alg-none-lower")]
    [InlineData("alg-NONE-upper")]
    [InlineData("alg-nOnE-mixed")]
    [InlineData("alg-none-with-signature")]
    // Algorithm confusion: HMAC keyed with the issuer's public key, in the forms a library might use.
    [InlineData("hs256-public-key-der")]
    [InlineData("hs256-public-key-pem")]
    [InlineData("hs256-public-modulus")]
    // A real signature by the real key, with an algorithm outside the allow-list.
    [InlineData("rs512-not-allowed")]
    // Malformed signatures.
    [InlineData("signature-truncated")]
    [InlineData("signature-empty")]
    [InlineData("signature-of-other-payload")]
    [InlineData("four-segments")]
    [InlineData("padded-base64")]
    // Lifetime.
    [InlineData("no-exp")]
    [InlineData("expired-beyond-skew")]
    [InlineData("not-yet-valid")]
    [InlineData("iat-in-the-future")]
    // Audience and issuer.
    [InlineData("audience-array-with-foreign-value")]
    [InlineData("audience-trailing-slash")]
    [InlineData("audience-other-case")]
    [InlineData("no-audience")]
    [InlineData("issuer-unknown")]
    [InlineData("issuer-trailing-slash")]
    [InlineData("issuer-other-case")]
    [InlineData("partner-key-claiming-corp-issuer")]
    [InlineData("corp-key-claiming-partner-issuer")]
    // Token-type confusion.
    [InlineData("typ-id-token")]
    [InlineData("typ-dpop-proof")]
    [InlineData("typ-refresh-token")]
    [InlineData("typ-missing")]
    // Key handling: hostile kids, and headers that point at keys elsewhere.
    [InlineData("kid-path-traversal")]
    [InlineData("kid-huge")]
    [InlineData("jku-to-rogue")]
    [InlineData("x5u-to-rogue")]
    [InlineData("embedded-jwk")]
    // Size and compression.
    [InlineData("oversized")]
    [InlineData("zip-deflate-bomb")]
    [InlineData("crit-unknown")]
    public async Task A_hostile_token_is_refused_401_and_nothing_is_forwarded(string variant)
    {
        await using var gateway = await GatewayInstance.StartAsync(Config());
        var token = Hostile(variant);

        using var request = new HttpRequestMessage(HttpMethod.Get, Models);
        request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + token);
        using var refused = await gateway.Client.SendAsync(request);
        using var control = await gateway.GetAsAgentAsync(Models, await fx.AgentTokenAsync());

        var problem = await ProblemAssert.IsProblemAsync(refused, HttpStatusCode.Unauthorized, "unauthenticated");
        Assert.DoesNotContain(token, problem.ToString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, control.StatusCode);
        Assert.Single(fx.Llm.Received);
        fx.Llm.AssertNeverSaw(token);
        Assert.Empty(_rogue.LogEntries);
    }

    [Fact]
    public async Task A_hostile_kid_with_a_line_break_never_becomes_a_header_or_a_log_line()
    {
        await using var gateway = await GatewayInstance.StartAsync(Config());
        var payload = RawJwt.ValidPayload(fx.Auth.Issuer, Clients.Alpha, AuthorizationServer.GatewayAudience);
        var token = RawJwt.Create(RawJwt.Header("RS256", "k\r\nX-Injected: 1"), payload, RawJwt.With(fx.Auth.SigningKeys[0], "RS256"));

        using var refused = await gateway.GetAsAgentAsync(Models, token);

        await ProblemAssert.IsProblemAsync(refused, HttpStatusCode.Unauthorized, "unauthenticated");
        Assert.False(refused.Headers.Contains("X-Injected"));
        Assert.DoesNotContain(gateway.Logs.Lines, line => line.Contains("\nX-Injected", StringComparison.Ordinal));
        Assert.Empty(fx.Llm.Received);
    }

    [Fact]
    public async Task Both_issuers_genuine_tokens_are_accepted_each_with_its_own_keys()
    {
        await using var gateway = await GatewayInstance.StartAsync(Config());

        using var corp = await gateway.GetAsAgentAsync(Models, await fx.AgentTokenAsync());
        using var partner = await gateway.GetAsAgentAsync(Models, PartnerToken(PartnerKid));

        Assert.Equal(HttpStatusCode.OK, corp.StatusCode);
        Assert.Equal(HttpStatusCode.OK, partner.StatusCode);
        Assert.Equal(2, fx.Llm.Received.Count);
    }

    [Fact]
    public async Task A_token_naming_no_kid_is_checked_against_every_key_of_its_issuer_only()
    {
        await using var gateway = await GatewayInstance.StartAsync(Config());
        using var stranger = RSA.Create(2048);
        var payload = RawJwt.ValidPayload(PartnerIssuer, PartnerAgent, AuthorizationServer.GatewayAudience);

        using var genuine = await gateway.GetAsAgentAsync(Models, RawJwt.Create(RawJwt.Header("RS256", kid: null), payload, RawJwt.Rs256(_partnerKey)));
        using var forged = await gateway.GetAsAgentAsync(Models, RawJwt.Create(RawJwt.Header("RS256", kid: null), payload, RawJwt.Rs256(stranger)));

        Assert.Equal(HttpStatusCode.OK, genuine.StatusCode);
        await ProblemAssert.IsProblemAsync(forged, HttpStatusCode.Unauthorized, "unauthenticated");
        Assert.Single(fx.Llm.Received);
    }

    [Fact]
    public async Task A_flood_of_unknown_kids_is_refused_even_when_signed_by_a_known_key_and_costs_at_most_one_key_refresh()
    {
        await using var gateway = await GatewayInstance.StartAsync(Config());
        using var first = await gateway.GetAsAgentAsync(Models, PartnerToken(PartnerKid));
        var fetchesBefore = _partnerJwks.LogEntries.Count;

        var flood = await Task.WhenAll(Enumerable.Range(0, 40).Select(async i =>
        {
            using var response = await gateway.GetAsAgentAsync(Models, PartnerToken($"made-up-{i}"));
            return response.StatusCode;
        }));

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.All(flood, status => Assert.Equal(HttpStatusCode.Unauthorized, status));
        Assert.InRange(_partnerJwks.LogEntries.Count - fetchesBefore, 0, 1);
        Assert.Single(fx.Llm.Received);
    }

    [Fact]
    public async Task A_jwks_answering_garbage_keeps_the_last_good_keys_and_a_rotation_is_picked_up()
    {
        var config = Config();
        config["Gateway"]!["Inbound"]!["Issuers"]!["partner"]!["KeyRefreshInterval"] = "00:00:01";
        // The refresh interval passes on the gateway's clock when the test moves it.
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var gateway = await GatewayInstance.StartAsync(config, time);
        using var before = await gateway.GetAsAgentAsync(Models, PartnerToken(PartnerKid));

        // The JWKS endpoint breaks; an unknown kid makes the gateway look again.
        _partnerJwks.Reset();
        _partnerJwks.Given(Request.Create().UsingGet()).RespondWith(Response.Create().WithStatusCode(200).WithHeader("Content-Type", "text/html").WithBody("<html>maintenance</html>"));
        time.Advance(TimeSpan.FromSeconds(1.2));
        using var unknown = await gateway.GetAsAgentAsync(Models, PartnerToken("rotated-2"));
        using var stillGood = await gateway.GetAsAgentAsync(Models, PartnerToken(PartnerKid));

        // It comes back with a rotated key.
        using var rotated = RSA.Create(2048);
        ServeJwks(RawJwt.Jwks((_partnerKey, PartnerKid), (rotated, "rotated-2")));
        time.Advance(TimeSpan.FromSeconds(1.2));
        using var afterRotation = await gateway.GetAsAgentAsync(Models, PartnerToken("rotated-2", rotated));

        Assert.Equal(HttpStatusCode.OK, before.StatusCode);
        await ProblemAssert.IsProblemAsync(unknown, HttpStatusCode.Unauthorized, "unauthenticated");
        Assert.Equal(HttpStatusCode.OK, stillGood.StatusCode);
        Assert.Equal(HttpStatusCode.OK, afterRotation.StatusCode);
        Assert.Equal(3, fx.Llm.Received.Count);
    }

    [Fact]
    public async Task A_jwks_down_at_start_refuses_its_tokens_and_recovers_without_a_restart()
    {
        _partnerJwks.Reset();
        _partnerJwks.Given(Request.Create().UsingGet()).RespondWith(Response.Create().WithStatusCode(503));
        var config = Config();
        config["Gateway"]!["Inbound"]!["Issuers"]!["partner"]!["KeyRefreshInterval"] = "00:00:01";
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var gateway = await GatewayInstance.StartAsync(config, time);

        using var whileDown = await gateway.GetAsAgentAsync(Models, PartnerToken(PartnerKid));
        using var otherIssuer = await gateway.GetAsAgentAsync(Models, await fx.AgentTokenAsync());
        ServeJwks(RawJwt.Jwks((_partnerKey, PartnerKid)));
        time.Advance(TimeSpan.FromSeconds(1.2));
        using var recovered = await gateway.GetAsAgentAsync(Models, PartnerToken(PartnerKid));

        Assert.True(whileDown.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.ServiceUnavailable, $"got {(int)whileDown.StatusCode}");
        Assert.Equal("application/problem+json", whileDown.Content.Headers.ContentType?.MediaType);
        Assert.Equal(HttpStatusCode.OK, otherIssuer.StatusCode);
        Assert.Equal(HttpStatusCode.OK, recovered.StatusCode);
        Assert.Equal(2, fx.Llm.Received.Count);
    }

    [Theory]
    [InlineData("query")]
    [InlineData("cookie")]
    [InlineData("x-access-token")]
    [InlineData("form-body")]
    public async Task A_valid_token_offered_anywhere_but_authorization_does_not_authenticate_and_is_not_forwarded(string place)
    {
        await using var gateway = await GatewayInstance.StartAsync(Config());
        var token = await fx.AgentTokenAsync();
        using var request = place switch
        {
            "query" => new HttpRequestMessage(HttpMethod.Get, Models + "?access_token=" + token),
            "form-body" => new HttpRequestMessage(HttpMethod.Post, "/llm/openai/v1/chat/completions") { Content = new FormUrlEncodedContent([new("access_token", token)]) },
            _ => new HttpRequestMessage(HttpMethod.Get, Models),
        };
        if (place == "cookie")
        {
            request.Headers.Add("Cookie", "access_token=" + token);
        }
        else if (place == "x-access-token")
        {
            request.Headers.Add("X-Access-Token", token);
        }

        using var response = await gateway.Client.SendAsync(request);

        Assert.Contains(response.StatusCode, new[] { HttpStatusCode.Unauthorized, HttpStatusCode.Forbidden });
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Empty(fx.Llm.Received);
    }

    private JsonObject Config()
    {
        var config = fx.Config(withRedis: false);
        var inbound = config["Gateway"]!["Inbound"]!;
        inbound["Issuers"]!["partner"] = new JsonObject
        {
            ["Issuer"] = PartnerIssuer,
            ["JwksUri"] = _partnerJwks.Url + "/jwks",
            ["Audiences"] = new JsonArray(AuthorizationServer.GatewayAudience),
        };
        config["Gateway"]!["Agents"]![PartnerAgent] = new JsonObject
        {
            ["Owner"] = "partner@example.test",
            ["Identities"] = new JsonArray(new JsonObject { ["Issuer"] = "partner", ["Subject"] = PartnerAgent }),
            ["Grants"] = new JsonArray("llm"),
        };
        return config;
    }

    private void ServeJwks(string jwks)
    {
        _partnerJwks.Reset();
        _partnerJwks.Given(Request.Create().WithPath("/jwks").UsingGet()).RespondWith(Response.Create().WithStatusCode(200).WithHeader("Content-Type", "application/json").WithBody(jwks));
    }

    private string PartnerToken(string kid, RSA? key = null) =>
        RawJwt.Create(RawJwt.Header("RS256", kid), RawJwt.ValidPayload(PartnerIssuer, PartnerAgent, AuthorizationServer.GatewayAudience), RawJwt.Rs256(key ?? _partnerKey));

    /// <summary>The token of each variant: corp-issued unless the variant is about issuers.</summary>
    private string Hostile(string variant)
    {
        var corpKey = fx.Auth.SigningKeys[0];
        var corpKid = new JsonWebToken(fx.Auth.Mint(Clients.Alpha, AuthorizationServer.GatewayAudience, DateTime.UtcNow.AddMinutes(-1), DateTime.UtcNow.AddMinutes(5))).Kid;
        var payload = RawJwt.ValidPayload(fx.Auth.Issuer, Clients.Alpha, AuthorizationServer.GatewayAudience);
        var header = RawJwt.Header("RS256", corpKid);
        var rs256 = RawJwt.With(corpKey, "RS256");
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var publicKey = ((Microsoft.IdentityModel.Tokens.RsaSecurityKey)corpKey).Rsa?.ExportParameters(false)
            ?? ((Microsoft.IdentityModel.Tokens.RsaSecurityKey)corpKey).Parameters;
        using var publicRsa = RSA.Create(new RSAParameters { Modulus = publicKey.Modulus, Exponent = publicKey.Exponent });

        string Signed(Dictionary<string, object?> h, Dictionary<string, object?> p) => RawJwt.Create(h, p, rs256);

        switch (variant)
        {
            case "alg-none-lower": return RawJwt.Create(RawJwt.Header("none", corpKid), payload, null);
            case "alg-NONE-upper": return RawJwt.Create(RawJwt.Header("NONE", corpKid), payload, null);
            case "alg-nOnE-mixed": return RawJwt.Create(RawJwt.Header("nOnE", corpKid), payload, null);
            case "alg-none-with-signature": return RawJwt.Create(RawJwt.Header("none", corpKid), payload, rs256);
            case "hs256-public-key-der": return RawJwt.Create(RawJwt.Header("HS256", corpKid), payload, RawJwt.Hs256(publicRsa.ExportSubjectPublicKeyInfo()));
            case "hs256-public-key-pem": return RawJwt.Create(RawJwt.Header("HS256", corpKid), payload, RawJwt.Hs256(Encoding.ASCII.GetBytes(publicRsa.ExportSubjectPublicKeyInfoPem())));
            case "hs256-public-modulus": return RawJwt.Create(RawJwt.Header("HS256", corpKid), payload, RawJwt.Hs256(publicKey.Modulus!));
            case "rs512-not-allowed": return RawJwt.Create(RawJwt.Header("RS512", corpKid), payload, RawJwt.With(corpKey, "RS512"));
            case "signature-truncated": return Signed(header, payload)[..^10];
            case "signature-empty": return RawJwt.Create(header, payload, _ => []);
            case "signature-of-other-payload":
                var genuine = Signed(header, payload).Split('.');
                var other = RawJwt.ValidPayload(fx.Auth.Issuer, Clients.Stranger, AuthorizationServer.GatewayAudience);
                return RawJwt.Create(header, other, null)[..^1] + "." + genuine[2];
            case "four-segments": return Signed(header, payload) + ".AAAA";
            case "padded-base64": return Signed(header, payload) + "==";
            case "no-exp": payload.Remove("exp"); return Signed(header, payload);
            case "expired-beyond-skew": payload["exp"] = now - 120; return Signed(header, payload);
            case "not-yet-valid": payload["nbf"] = now + 600; payload["exp"] = now + 1200; return Signed(header, payload);
            case "iat-in-the-future": payload["iat"] = now + 3600; return Signed(header, payload);
            case "audience-array-with-foreign-value": payload["aud"] = new[] { AuthorizationServer.GatewayAudience, AuthorizationServer.OtherAudience }; return Signed(header, payload);
            case "audience-trailing-slash": payload["aud"] = AuthorizationServer.GatewayAudience + "/"; return Signed(header, payload);
            case "audience-other-case": payload["aud"] = AuthorizationServer.GatewayAudience.ToUpperInvariant(); return Signed(header, payload);
            case "no-audience": payload.Remove("aud"); return Signed(header, payload);
            case "issuer-unknown": payload["iss"] = "https://evil.example/"; return Signed(header, payload);
            case "issuer-trailing-slash": payload["iss"] = fx.Auth.Issuer.TrimEnd('/') + "//"; return Signed(header, payload);
            case "issuer-other-case": payload["iss"] = fx.Auth.Issuer.ToUpperInvariant(); return Signed(header, payload);
            case "partner-key-claiming-corp-issuer": return RawJwt.Create(RawJwt.Header("RS256", PartnerKid), payload, RawJwt.Rs256(_partnerKey));
            case "corp-key-claiming-partner-issuer":
                return Signed(header, RawJwt.ValidPayload(PartnerIssuer, PartnerAgent, AuthorizationServer.GatewayAudience));
            case "typ-id-token": return Signed(RawJwt.Header("RS256", corpKid, "JWT"), payload);
            case "typ-dpop-proof": return Signed(RawJwt.Header("RS256", corpKid, "dpop+jwt"), payload);
            case "typ-refresh-token": return Signed(RawJwt.Header("RS256", corpKid, "rt+jwt"), payload);
            case "typ-missing": header.Remove("typ"); return Signed(header, payload);
            case "kid-path-traversal": return Signed(RawJwt.Header("RS256", "../../../../etc/passwd"), payload);
            case "kid-huge": return Signed(RawJwt.Header("RS256", new string('k', 8 * 1024)), payload);
            case "jku-to-rogue":
                // Signed by a key only the rogue JWKS publishes: believed only if the gateway fetched it.
                var jku = RawJwt.Header("RS256", "rogue");
                jku["jku"] = _rogue.Url + "/jwks";
                return RawJwt.Create(jku, payload, RawJwt.Rs256(_partnerKey));
            case "x5u-to-rogue":
                var x5u = RawJwt.Header("RS256", "rogue");
                x5u["x5u"] = _rogue.Url + "/cert.pem";
                return RawJwt.Create(x5u, payload, RawJwt.Rs256(_partnerKey));
            case "embedded-jwk":
                var jwk = RawJwt.Header("RS256", "embedded");
                jwk["jwk"] = RawJwt.Jwk(_partnerKey, "embedded");
                return RawJwt.Create(jwk, payload, RawJwt.Rs256(_partnerKey));
            case "oversized": payload["padding"] = new string('p', 20 * 1024); return Signed(header, payload);
            case "zip-deflate-bomb":
                // "zip" belongs to JWE; a JWS payload is never inflated, so a compressed claims set
                // (here a megabyte of padding around genuine claims) must not become one.
                header["zip"] = "DEF";
                payload["padding"] = new string(' ', 1024 * 1024);
                using (var deflated = new MemoryStream())
                {
                    using (var deflate = new System.IO.Compression.DeflateStream(deflated, System.IO.Compression.CompressionLevel.SmallestSize, leaveOpen: true))
                    {
                        deflate.Write(System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(payload));
                    }

                    return RawJwt.CreateRaw(header, deflated.ToArray(), rs256);
                }

            case "crit-unknown": header["crit"] = new[] { "urn:example:must-understand" }; header["urn:example:must-understand"] = true; return Signed(header, payload);
            default: throw new ArgumentOutOfRangeException(nameof(variant));
        }
    }
}
