using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json.Nodes;
using AgentGateway.FunctionalTests.Adversarial;
using AgentGateway.FunctionalTests.Infrastructure;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace AgentGateway.FunctionalTests.Identity;

/// <summary>
/// Agent identity beyond bearer tokens, with certificates made in the test: plain mTLS (by
/// thumbprint and by SAN), SPIFFE X509-SVIDs (valid, and bad of each kind), JWT-SVIDs against the
/// trust domain's JWT bundle, and static keys behind their development switch.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class CertificateIdentityTests(GatewayFixture fx) : IAsyncLifetime
{
    private const string TrustDomain = "example.org";
    private const string SpiffeId = "spiffe://example.org/agents/support";
    private readonly TestPki _serverCa = TestPki.Create("gateway server CA");
    private readonly TestPki _agentCa = TestPki.Create("agent CA");
    private readonly TestPki _spiffeCa = TestPki.Create("example.org SPIFFE CA");
    private readonly TestPki _strangerCa = TestPki.Create("someone else's CA");
    private readonly ECDsa _jwtKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);

    public Task InitializeAsync() => fx.ResetAsync();

    public Task DisposeAsync()
    {
        _serverCa.Dispose();
        _agentCa.Dispose();
        _spiffeCa.Dispose();
        _strangerCa.Dispose();
        _jwtKey.Dispose();
        return Task.CompletedTask;
    }

    [Fact]
    public async Task An_mtls_agent_is_known_by_its_thumbprint_or_its_san_and_a_foreign_ca_is_refused()
    {
        var byThumbprint = _agentCa.IssueClient("bot-one.agents.example");
        var bySan = _agentCa.IssueClient("bot-two.agents.example");
        var foreign = _strangerCa.IssueClient("bot-two.agents.example");
        var config = fx.Config(withRedis: false).WithHttps(_serverCa);
        config["Gateway"]!["Inbound"]!["ClientCertificates"] = new JsonObject { ["TrustBundle"] = "file:" + _agentCa.WriteAuthorityPem() };
        var identities = config["Gateway"]!["Agents"]!["support-bot"]!["Identities"]!.AsArray();
        identities.Add(new JsonObject { ["CertificateThumbprint"] = Convert.ToHexString(byThumbprint.GetCertHash(HashAlgorithmName.SHA256)) });
        identities.Add(new JsonObject { ["CertificateSan"] = "dns:bot-two.agents.example" });
        await using var gateway = await GatewayInstance.StartAsync(config);

        using var first = await SendAsync(gateway, byThumbprint, "/crm/accounts");
        using var second = await SendAsync(gateway, bySan, "/crm/accounts");
        using var stranger = await SendAsync(gateway, foreign, "/crm/accounts");
        using var forged = await SendAsync(gateway, null, "/crm/accounts", ("X-Client-Cert", Convert.ToBase64String(byThumbprint.RawData)));

        Assert.True(first.StatusCode == HttpStatusCode.OK, await first.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        await ProblemAssert.IsProblemAsync(stranger, HttpStatusCode.Unauthorized, "unauthenticated");
        await ProblemAssert.IsProblemAsync(forged, HttpStatusCode.Unauthorized, "unauthenticated");
        Assert.Equal(2, fx.Crm.Received.Count);
        Assert.Null(fx.Crm.Header(0, "X-Client-Cert"));
    }

    /// <summary>A SAN that does not parse (an iPAddress of five octets, which no address is)
    /// proves nothing — not the DNS name beside it, which names an agent — and is judged like any
    /// other certificate, from any client, before or after its chain: a clean 401, never a 500.</summary>
    [Fact]
    public async Task A_certificate_whose_san_does_not_parse_proves_nothing_and_is_refused_cleanly()
    {
        var config = fx.Config(withRedis: false).WithHttps(_serverCa);
        config["Gateway"]!["Inbound"]!["ClientCertificates"] = new JsonObject { ["TrustBundle"] = "file:" + _agentCa.WriteAuthorityPem() };
        config["Gateway"]!["Agents"]!["support-bot"]!["Identities"]!.AsArray().Add(new JsonObject { ["CertificateSan"] = "dns:bot-two.agents.example" });
        await using var gateway = await GatewayInstance.StartAsync(config);
        using var selfSigned = WithUnparsableSan(issuer: null);
        using var issued = WithUnparsableSan(_agentCa.Authority);

        using var stranger = await SendAsync(gateway, selfSigned, "/crm/accounts");
        using var unparsed = await SendAsync(gateway, issued, "/crm/accounts");

        await ProblemAssert.IsProblemAsync(stranger, HttpStatusCode.Unauthorized, "unauthenticated");
        await ProblemAssert.IsProblemAsync(unparsed, HttpStatusCode.Unauthorized, "agent-unknown");
        Assert.Empty(fx.Crm.Received);
        Assert.DoesNotContain(gateway.Logs.Lines, line => line.Contains("Exception", StringComparison.Ordinal));
    }

    private static X509Certificate2 WithUnparsableSan(X509Certificate2? issuer)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=bot-two.agents.example", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.2")], false));
        var names = new System.Formats.Asn1.AsnWriter(System.Formats.Asn1.AsnEncodingRules.DER);
        using (names.PushSequence())
        {
            names.WriteOctetString([127, 0, 0, 1, 1], new System.Formats.Asn1.Asn1Tag(System.Formats.Asn1.TagClass.ContextSpecific, 7));
            names.WriteCharacterString(System.Formats.Asn1.UniversalTagNumber.IA5String, "bot-two.agents.example", new System.Formats.Asn1.Asn1Tag(System.Formats.Asn1.TagClass.ContextSpecific, 2));
        }

        request.CertificateExtensions.Add(new X509Extension("2.5.29.17", names.Encode(), false));
        var now = DateTimeOffset.UtcNow;
        if (issuer is null)
        {
            return request.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(1));
        }

        using var certificate = request.Create(issuer, now.AddMinutes(-5), now.AddDays(1), RandomNumberGenerator.GetBytes(16));
        return certificate.CopyWithPrivateKey(key);
    }

    [Fact]
    public async Task A_valid_x509_svid_maps_to_its_agent()
    {
        await using var gateway = await GatewayInstance.StartAsync(WithSpiffe(fx.Config(withRedis: false)));

        using var response = await SendAsync(gateway, _spiffeCa.IssueSvid([SpiffeId]), "/crm/accounts");

        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        Assert.Single(fx.Crm.Received);
    }

    public static TheoryData<string, string> BadSvids => new()
    {
        { "two URI SANs", "exactly one URI SAN" },
        { "CA leaf", "must not be a CA" },
        { "certifies", "never certifies" },
        { "other trust domain", "trust domain" },
        { "port in the trust domain", "SPIFFE ID is invalid" },
        { "query in the path", "SPIFFE ID is invalid" },
        { "foreign CA", "does not chain" },
    };

    [Theory]
    [MemberData(nameof(BadSvids))]
    public async Task Bad_x509_svids_are_refused(string variant, string expected)
    {
        await using var gateway = await GatewayInstance.StartAsync(WithSpiffe(fx.Config(withRedis: false)));
        var certificate = variant switch
        {
            "two URI SANs" => _spiffeCa.IssueSvid([SpiffeId, "spiffe://example.org/agents/other"]),
            "CA leaf" => _spiffeCa.IssueSvid([SpiffeId], certificateAuthority: true),
            "certifies" => _spiffeCa.IssueSvid([SpiffeId], usage: X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyCertSign),
            "other trust domain" => _spiffeCa.IssueSvid(["spiffe://evil.example/agents/support"]),
            "port in the trust domain" => _spiffeCa.IssueSvid(["spiffe://example.org:8443/agents/support"]),
            "query in the path" => _spiffeCa.IssueSvid(["spiffe://example.org/agents/support?admin=1"]),
            "foreign CA" => _strangerCa.IssueSvid([SpiffeId]),
            _ => throw new ArgumentOutOfRangeException(nameof(variant)),
        };

        using var response = await SendAsync(gateway, certificate, "/crm/accounts");

        var problem = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.Unauthorized, "unauthenticated");
        Assert.Contains(expected, problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Empty(fx.Crm.Received);
    }

    [Fact]
    public async Task A_jwt_svid_is_checked_against_the_trust_domains_jwt_bundle()
    {
        await using var gateway = await GatewayInstance.StartAsync(WithSpiffe(fx.Config(withRedis: false)));
        using var otherKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);

        using var valid = await gateway.GetAsAgentAsync("/crm/accounts", JwtSvid(_jwtKey, SpiffeId, "agentgateway"));
        using var wrongAudience = await gateway.GetAsAgentAsync("/crm/accounts", JwtSvid(_jwtKey, SpiffeId, "somebody-else"));
        using var wrongKey = await gateway.GetAsAgentAsync("/crm/accounts", JwtSvid(otherKey, SpiffeId, "agentgateway"));
        using var wrongDomain = await gateway.GetAsAgentAsync("/crm/accounts", JwtSvid(_jwtKey, "spiffe://evil.example/agents/support", "agentgateway"));

        Assert.True(valid.StatusCode == HttpStatusCode.OK, await valid.Content.ReadAsStringAsync());
        await ProblemAssert.IsProblemAsync(wrongAudience, HttpStatusCode.Unauthorized, "unauthenticated");
        await ProblemAssert.IsProblemAsync(wrongKey, HttpStatusCode.Unauthorized, "unauthenticated");
        await ProblemAssert.IsProblemAsync(wrongDomain, HttpStatusCode.Unauthorized, "unauthenticated");
        Assert.Single(fx.Crm.Received);
    }

    [Fact]
    public async Task A_jwt_svid_living_longer_than_MaxTokenLifetime_is_refused_like_an_issuers_token()
    {
        await using var gateway = await GatewayInstance.StartAsync(WithSpiffe(fx.Config(withRedis: false)));
        var now = DateTime.UtcNow;

        using var longLived = await gateway.GetAsAgentAsync("/crm/accounts", JwtSvid(_jwtKey, SpiffeId, "agentgateway", d => (d.IssuedAt, d.NotBefore, d.Expires) = (now, now, now.AddHours(2))));
        using var shortLived = await gateway.GetAsAgentAsync("/crm/accounts", JwtSvid(_jwtKey, SpiffeId, "agentgateway", d => (d.IssuedAt, d.NotBefore, d.Expires) = (now, now, now.AddMinutes(50))));

        await ProblemAssert.IsProblemAsync(longLived, HttpStatusCode.Unauthorized, "token-lifetime-too-long");
        Assert.True(shortLived.StatusCode == HttpStatusCode.OK, await shortLived.Content.ReadAsStringAsync());
        Assert.Single(fx.Crm.Received);
    }

    [Fact]
    public async Task A_jwt_svid_saying_neither_iat_nor_nbf_is_refused_like_an_issuers_token()
    {
        await using var gateway = await GatewayInstance.StartAsync(WithSpiffe(fx.Config(withRedis: false)));

        using var undated = await gateway.GetAsAgentAsync("/crm/accounts", JwtSvid(_jwtKey, SpiffeId, "agentgateway", defaultTimes: false));

        var problem = await ProblemAssert.IsProblemAsync(undated, HttpStatusCode.Unauthorized, "unauthenticated");
        Assert.Contains("neither when it was issued (iat)", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Empty(fx.Crm.Received);
    }

    [Fact]
    public async Task A_jwt_svids_expiry_is_judged_with_Inbound_ClockSkew()
    {
        var now = DateTime.UtcNow;
        string ExpiredAgo(int seconds) =>
            JwtSvid(_jwtKey, SpiffeId, "agentgateway", d => (d.IssuedAt, d.NotBefore, d.Expires) = (now.AddMinutes(-5), now.AddMinutes(-5), now.AddSeconds(-seconds)));

        var strict = WithSpiffe(fx.Config(withRedis: false));
        strict["Gateway"]!["Inbound"]!["ClockSkew"] = "00:00:00";
        await using (var gateway = await GatewayInstance.StartAsync(strict))
        {
            using var expired = await gateway.GetAsAgentAsync("/crm/accounts", ExpiredAgo(10));
            var problem = await ProblemAssert.IsProblemAsync(expired, HttpStatusCode.Unauthorized, "unauthenticated");
            Assert.Contains("expired", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        }

        var lenient = WithSpiffe(fx.Config(withRedis: false));
        lenient["Gateway"]!["Inbound"]!["ClockSkew"] = "00:03:00";
        await using (var gateway = await GatewayInstance.StartAsync(lenient))
        {
            using var withinSkew = await gateway.GetAsAgentAsync("/crm/accounts", ExpiredAgo(90));
            Assert.True(withinSkew.StatusCode == HttpStatusCode.OK, await withinSkew.Content.ReadAsStringAsync());
        }

        Assert.Single(fx.Crm.Received);
    }

    [Fact]
    public async Task A_repeated_jwt_svid_is_served_from_the_validation_cache()
    {
        await using var gateway = await GatewayInstance.StartAsync(WithSpiffe(fx.Config(withRedis: false)));
        var svid = JwtSvid(_jwtKey, SpiffeId, "agentgateway");
        using var first = await gateway.GetAsAgentAsync("/crm/accounts", svid);
        Assert.True(first.StatusCode == HttpStatusCode.OK, await first.Content.ReadAsStringAsync());

        // The revision's bundle loses its keys in place: only a token whose validation was kept can
        // still pass, and only until the cache lets it go.
        gateway.Config.Current.Inbound.Certificates.Spiffe!.JwtKeys!.Keys.Clear();
        using var repeated = await gateway.GetAsAgentAsync("/crm/accounts", svid);
        using var fresh = await gateway.GetAsAgentAsync("/crm/accounts", JwtSvid(_jwtKey, SpiffeId, "agentgateway"));

        Assert.True(repeated.StatusCode == HttpStatusCode.OK, await repeated.Content.ReadAsStringAsync());
        await ProblemAssert.IsProblemAsync(fresh, HttpStatusCode.Unauthorized, "unauthenticated");
        Assert.Equal(2, fx.Crm.Received.Count);
        fx.Crm.AssertNeverSaw(svid);
    }

    [Fact]
    public async Task A_jwt_svid_naming_any_audience_but_the_gateways_is_refused()
    {
        await using var gateway = await GatewayInstance.StartAsync(WithSpiffe(fx.Config(withRedis: false)));
        var alsoForAnother = RawSvid(typ: null, new[] { "agentgateway", "somebody-else" });
        var ours = RawSvid(typ: null, new[] { "agentgateway" });

        using var refused = await gateway.GetAsAgentAsync("/crm/accounts", alsoForAnother);
        using var accepted = await gateway.GetAsAgentAsync("/crm/accounts", ours);

        var problem = await ProblemAssert.IsProblemAsync(refused, HttpStatusCode.Unauthorized, "unauthenticated");
        Assert.Contains("audience", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.True(accepted.StatusCode == HttpStatusCode.OK, await accepted.Content.ReadAsStringAsync());
        Assert.Single(fx.Crm.Received);
        fx.Crm.AssertNeverSaw(alsoForAnother);
        fx.Crm.AssertNeverSaw(ours);
    }

    [Theory]
    [InlineData(null, true)]
    [InlineData("JWT", true)]
    [InlineData("JOSE", true)]
    [InlineData("application/jwt", true)]
    [InlineData("at+jwt", false)]
    [InlineData("dpop+jwt", false)]
    [InlineData("JWT+evil", false)]
    public async Task A_jwt_svids_typ_is_absent_JWT_or_JOSE_and_a_token_of_another_kind_is_no_svid(string? typ, bool accepted)
    {
        await using var gateway = await GatewayInstance.StartAsync(WithSpiffe(fx.Config(withRedis: false)));
        var svid = RawSvid(typ, new[] { "agentgateway" });

        using var response = await gateway.GetAsAgentAsync("/crm/accounts", svid);

        if (accepted)
        {
            Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
            Assert.Single(fx.Crm.Received);
        }
        else
        {
            var problem = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.Unauthorized, "unauthenticated");
            Assert.Contains("typ", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
            Assert.Empty(fx.Crm.Received);
        }

        fx.Crm.AssertNeverSaw(svid);
    }

    public static TheoryData<string, string> TwoProofs => new()
    {
        { "bearer", "static key" },
        { "jwt-svid", "static key" },
        { "client certificate", "bearer" },
        { "client certificate", "jwt-svid" },
        { "client certificate", "static key" },
        { "x509-svid", "bearer" },
    };

    /// <summary>Each proof alone is accepted (so the refusal cannot come from a broken set-up); both
    /// on one request are refused, whichever scheme would be asked first, and nothing is forwarded.
    /// The certificate names another agent than the tokens and the key, so a gateway deciding by
    /// either would forward as someone.</summary>
    [Theory]
    [MemberData(nameof(TwoProofs))]
    public async Task A_request_carrying_two_proofs_of_different_kinds_is_refused(string first, string second)
    {
        const string key = "dev-static-key-canary-two-proofs";
        var certificate = _agentCa.IssueClient("cert-bot.agents.example");
        var config = WithSpiffe(fx.Config(withRedis: false));
        config["Gateway"]!["Inbound"]!["ClientCertificates"] = new JsonObject { ["TrustBundle"] = "file:" + _agentCa.WriteAuthorityPem() };
        config["Gateway"]!["Inbound"]!["StaticKeys"] = new JsonObject { ["Enabled"] = true };
        config["Gateway"]!["Agents"]!["support-bot"]!["Identities"]!.AsArray().Add(
            new JsonObject { ["StaticKeySha256"] = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key))) });
        config["Gateway"]!["Agents"]!["cert-bot"] = new JsonObject
        {
            ["Owner"] = "support-team@example.test",
            ["Identities"] = new JsonArray(
                new JsonObject { ["CertificateThumbprint"] = Convert.ToHexString(certificate.GetCertHash(HashAlgorithmName.SHA256)) },
                new JsonObject { ["Spiffe"] = "spiffe://example.org/agents/cert-bot" }),
            ["Grants"] = new JsonArray("crm-read"),
        };
        await using var gateway = await GatewayInstance.StartAsync(config);
        var bearer = await fx.AgentTokenAsync();
        var svid = JwtSvid(_jwtKey, SpiffeId, "agentgateway");
        (X509Certificate2? Certificate, (string, string)[] Headers) Proof(string kind) => kind switch
        {
            "bearer" => (null, [("Authorization", "Bearer " + bearer)]),
            "jwt-svid" => (null, [("Authorization", "Bearer " + svid)]),
            "static key" => (null, [("X-Agent-Key", key)]),
            "client certificate" => (certificate, []),
            "x509-svid" => (_spiffeCa.IssueSvid(["spiffe://example.org/agents/cert-bot"]), []),
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
        var (firstCertificate, firstHeaders) = Proof(first);
        var (secondCertificate, secondHeaders) = Proof(second);

        using var firstAlone = await SendAsync(gateway, firstCertificate, "/crm/accounts", firstHeaders);
        using var secondAlone = await SendAsync(gateway, secondCertificate, "/crm/accounts", secondHeaders);
        Assert.True(firstAlone.StatusCode == HttpStatusCode.OK, first + ": " + await firstAlone.Content.ReadAsStringAsync());
        Assert.True(secondAlone.StatusCode == HttpStatusCode.OK, second + ": " + await secondAlone.Content.ReadAsStringAsync());
        fx.Crm.AssertNeverSaw(bearer);
        fx.Crm.AssertNeverSaw(svid);
        fx.Crm.AssertNeverSaw(key);
        fx.Crm.Server.ResetLogEntries();

        using var both = await SendAsync(gateway, firstCertificate ?? secondCertificate, "/crm/accounts", [.. firstHeaders, .. secondHeaders]);

        var problem = await ProblemAssert.IsProblemAsync(both, HttpStatusCode.Unauthorized, "identity-ambiguous");
        Assert.DoesNotContain(bearer, problem.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain(key, problem.ToString(), StringComparison.Ordinal);
        Assert.Empty(fx.Crm.Received);
    }

    [Fact]
    public async Task A_client_certificate_naming_no_agent_is_no_second_proof_beside_a_token()
    {
        var config = fx.Config(withRedis: false).WithHttps(_serverCa);
        config["Gateway"]!["Inbound"]!["ClientCertificates"] = new JsonObject { ["TrustBundle"] = "file:" + _agentCa.WriteAuthorityPem() };
        await using var gateway = await GatewayInstance.StartAsync(config);
        var bearer = await fx.AgentTokenAsync();
        var unmapped = _agentCa.IssueClient("device.example");
        var foreign = _strangerCa.IssueClient("device.example");

        using var unmappedAlone = await SendAsync(gateway, unmapped, "/crm/accounts");
        using var withUnmapped = await SendAsync(gateway, unmapped, "/crm/accounts", ("Authorization", "Bearer " + bearer));
        using var withForeign = await SendAsync(gateway, foreign, "/crm/accounts", ("Authorization", "Bearer " + bearer));

        await ProblemAssert.IsProblemAsync(unmappedAlone, HttpStatusCode.Unauthorized, "agent-unknown");
        Assert.True(withUnmapped.StatusCode == HttpStatusCode.OK, await withUnmapped.Content.ReadAsStringAsync());
        Assert.True(withForeign.StatusCode == HttpStatusCode.OK, await withForeign.Content.ReadAsStringAsync());
        Assert.Equal(2, fx.Crm.Received.Count);
        fx.Crm.AssertNeverSaw(bearer);
    }

    [Fact]
    public async Task Static_keys_work_only_behind_their_switch_warn_loudly_and_never_reach_the_upstream()
    {
        const string key = "dev-static-key-canary-0123456789";
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));
        var config = fx.Config(withRedis: false);
        config["Gateway"]!["Agents"]!["support-bot"]!["Identities"]!.AsArray().Add(new JsonObject { ["StaticKeySha256"] = hash });

        await using (var off = await GatewayInstance.StartAsync(config))
        {
            using var refused = await SendAsync(off, null, "/crm/accounts", ("X-Agent-Key", key));
            await ProblemAssert.IsProblemAsync(refused, HttpStatusCode.Unauthorized, "unauthenticated");
        }

        config["Gateway"]!["Inbound"]!["StaticKeys"] = new JsonObject { ["Enabled"] = true };
        await using var on = await GatewayInstance.StartAsync(config);
        using var accepted = await SendAsync(on, null, "/crm/accounts", ("X-Agent-Key", key));
        using var wrong = await SendAsync(on, null, "/crm/accounts", ("X-Agent-Key", key + "x"));

        Assert.Equal(HttpStatusCode.OK, accepted.StatusCode);
        await ProblemAssert.IsProblemAsync(wrong, HttpStatusCode.Unauthorized, "agent-unknown");
        Assert.Contains(on.Logs.Lines, l => l.Contains("STATIC API KEYS ARE ENABLED", StringComparison.Ordinal) && l.Contains("support-bot", StringComparison.Ordinal));
        Assert.Single(fx.Crm.Received);
        fx.Crm.AssertNeverSaw(key);
    }

    private JsonObject WithSpiffe(JsonObject config)
    {
        var jwks = Path.Combine(Path.GetTempPath(), $"agentgateway-jwks-{Guid.NewGuid():N}.json");
        var p = _jwtKey.ExportParameters(false);
        File.WriteAllText(jwks, $$"""{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","use":"sig","x":"{{Base64UrlEncoder.Encode(p.Q.X!)}}","y":"{{Base64UrlEncoder.Encode(p.Q.Y!)}}"}]}""");
        config = config.WithHttps(_serverCa);
        config["Gateway"]!["Inbound"]!["Spiffe"] = new JsonObject
        {
            ["TrustDomain"] = TrustDomain,
            ["X509Bundle"] = "file:" + _spiffeCa.WriteAuthorityPem(),
            ["JwtBundle"] = "file:" + jwks,
            ["Audiences"] = new JsonArray("agentgateway"),
        };
        config["Gateway"]!["Agents"]!["support-bot"]!["Identities"]!.AsArray().Add(new JsonObject { ["Spiffe"] = SpiffeId });
        return config;
    }

    /// <param name="shape">Changes the token's times (or anything else) before it is signed.</param>
    /// <param name="defaultTimes">False: no <c>iat</c> or <c>nbf</c> unless <paramref name="shape"/> sets them.</param>
    private static string JwtSvid(ECDsa key, string subject, string audience, Action<SecurityTokenDescriptor>? shape = null, bool defaultTimes = true)
    {
        var descriptor = new SecurityTokenDescriptor
        {
            Subject = new System.Security.Claims.ClaimsIdentity([new System.Security.Claims.Claim("sub", subject)]),
            Audience = audience,
            Expires = DateTime.UtcNow.AddMinutes(5),
            SigningCredentials = new SigningCredentials(new ECDsaSecurityKey(key) { KeyId = "k1" }, SecurityAlgorithms.EcdsaSha256),
        };
        shape?.Invoke(descriptor);
        return new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = defaultTimes }.CreateToken(descriptor);
    }

    /// <summary>A JWT-SVID for <see cref="SpiffeId"/> written byte by byte, so its <c>typ</c> can
    /// be absent or anything and its <c>aud</c> an array.</summary>
    private string RawSvid(string? typ, string[] audiences)
    {
        var header = new Dictionary<string, object?> { ["alg"] = "ES256", ["kid"] = "k1" };
        if (typ is not null)
        {
            header["typ"] = typ;
        }

        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var payload = new Dictionary<string, object?> { ["sub"] = SpiffeId, ["aud"] = audiences, ["iat"] = now - 5, ["exp"] = now + 300 };
        return RawJwt.Create(header, payload, input => _jwtKey.SignData(input, HashAlgorithmName.SHA256));
    }

    /// <summary>A request over the gateway's https endpoint, presenting <paramref name="certificate"/>.</summary>
    private async Task<HttpResponseMessage> SendAsync(GatewayInstance gateway, X509Certificate2? certificate, string path, params (string Name, string Value)[] headers)
    {
        var https = gateway.Addresses.FirstOrDefault(a => a.Scheme == Uri.UriSchemeHttps);
        var handler = new SocketsHttpHandler();
        // The gateway's own certificate is from the test's server CA, and only that CA is trusted.
        handler.SslOptions.RemoteCertificateValidationCallback = (_, server, _, _) => server is X509Certificate2 c && _serverCa.Issued(c);
        if (certificate is not null)
        {
            handler.SslOptions.ClientCertificates = [certificate];
        }

        using var http = new HttpClient(handler) { BaseAddress = https ?? gateway.Address };
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        foreach (var (name, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        return await http.SendAsync(request);
    }
}
