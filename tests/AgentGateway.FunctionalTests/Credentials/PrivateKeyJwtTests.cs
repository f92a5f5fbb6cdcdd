using System.Net;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using AgentGateway.FunctionalTests.Infrastructure;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace AgentGateway.FunctionalTests.Credentials;

/// <summary>
/// <c>private_key_jwt</c> (RFC 7523) against OpenIddict, which knows only the client's public key:
/// the gateway signs a fresh assertion per token request and no shared secret exists anywhere.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class PrivateKeyJwtTests(GatewayFixture fx) : IAsyncLifetime, IDisposable
{
    private readonly List<string> _files = [];

    public Task InitializeAsync() => fx.ResetAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose()
    {
        foreach (var file in _files)
        {
            File.Delete(file);
        }
    }

    public static TheoryData<string> KeyTypes => ["RSA", "EC P-256"];

    [Theory]
    [MemberData(nameof(KeyTypes))]
    public async Task The_hop_token_is_obtained_with_a_signed_assertion_and_no_secret(string keyType)
    {
        var clientId = "crm-key-" + Guid.NewGuid().ToString("N")[..8];
        var (pem, publicKey) = NewKey(keyType);
        await fx.Auth.RegisterKeyClientAsync(clientId, publicKey, "crm.read");
        await using var gateway = await GatewayInstance.StartAsync(WithKeyHop(fx.Config(withRedis: false), clientId, WriteKey(pem)));
        var agentToken = await fx.AgentTokenAsync();

        using var first = await gateway.GetAsAgentAsync("/crm-key/accounts", agentToken);
        using var second = await gateway.GetAsAgentAsync("/crm-key/accounts", agentToken);

        Assert.True(first.StatusCode == HttpStatusCode.OK, await first.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        Assert.Equal(1, fx.Auth.TokenRequestsFor(clientId));
        var hopToken = fx.Crm.Header(0, "Authorization")!["Bearer ".Length..];
        var issued = await new JsonWebTokenHandler().ValidateTokenAsync(hopToken, new TokenValidationParameters
        {
            ValidIssuer = fx.Auth.Issuer,
            ValidAudience = AuthorizationServer.CrmAudience,
            IssuerSigningKeys = fx.Auth.SigningKeys,
            ValidTypes = ["at+jwt"],
        });
        Assert.True(issued.IsValid, issued.Exception?.Message);
        Assert.Equal(clientId, issued.Claims["sub"]);

        var request = fx.Auth.LastClientCredentialsRequest(clientId)!;
        Assert.Null(request.ClientSecret);
        Assert.Equal("urn:ietf:params:oauth:client-assertion-type:jwt-bearer", request.ClientAssertionType);
        var assertion = new JsonWebToken(request.ClientAssertion);
        Assert.Equal(clientId, assertion.Issuer);
        Assert.Equal(clientId, assertion.Subject);
        Assert.Equal([fx.Auth.Issuer], assertion.Audiences);
        Assert.Equal("client-authentication+jwt", assertion.Typ);
        Assert.False(string.IsNullOrEmpty(assertion.Id));
        Assert.True(assertion.ValidTo - assertion.IssuedAt <= TimeSpan.FromMinutes(1));
        Assert.Equal(keyType == "RSA" ? "RS256" : "ES256", assertion.Alg);
        fx.Crm.AssertNeverSaw(agentToken);
        fx.Crm.AssertNeverSaw(request.ClientAssertion!);
    }

    [Fact]
    public async Task A_key_the_issuer_does_not_know_gets_a_503_naming_invalid_client()
    {
        var clientId = "crm-key-" + Guid.NewGuid().ToString("N")[..8];
        var (_, registered) = NewKey("RSA");
        var (otherPem, _) = NewKey("RSA");
        await fx.Auth.RegisterKeyClientAsync(clientId, registered, "crm.read");
        await using var gateway = await GatewayInstance.StartAsync(WithKeyHop(fx.Config(withRedis: false), clientId, WriteKey(otherPem)));
        var agentToken = await fx.AgentTokenAsync();

        using var response = await gateway.GetAsAgentAsync("/crm-key/accounts", agentToken);

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.ServiceUnavailable, "credential-unavailable");
        var body = await response.Content.ReadAsStringAsync();
        Assert.Contains("invalid_client", body, StringComparison.Ordinal);
        Assert.DoesNotContain("PRIVATE KEY", body, StringComparison.Ordinal);
        Assert.Empty(fx.Crm.Received);
    }

    [Fact]
    public async Task A_rotated_key_file_takes_effect_on_reload_and_never_serves_the_old_keys_token()
    {
        var clientId = "crm-key-" + Guid.NewGuid().ToString("N")[..8];
        var (pem, publicKey) = NewKey("RSA");
        var (newPem, newPublicKey) = NewKey("RSA");
        await fx.Auth.RegisterKeyClientAsync(clientId, publicKey, "crm.read");
        var keyFile = WriteKey(pem);
        var config = WithKeyHop(fx.Config(withRedis: true), clientId, keyFile);
        await using var gateway = await GatewayInstance.StartAsync(config);
        var agentToken = await fx.AgentTokenAsync();
        using (var before = await gateway.GetAsAgentAsync("/crm-key/a", agentToken))
        {
            Assert.Equal(HttpStatusCode.OK, before.StatusCode);
        }

        // The operator rotates: the issuer learns the new public key under a new client, the key
        // file is replaced, and the credential is pointed at it.
        var rotatedClient = clientId + "-2";
        await fx.Auth.RegisterKeyClientAsync(rotatedClient, newPublicKey, "crm.read");
        await File.WriteAllTextAsync(keyFile, newPem);
        config["Gateway"]!["Credentials"]!["crm-key"]!["ClientId"] = rotatedClient;
        await gateway.RewriteConfigAsync(config);
        using var after = await gateway.GetAsAgentAsync("/crm-key/b", agentToken);

        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
        Assert.Equal(1, fx.Auth.TokenRequestsFor(rotatedClient));
        Assert.NotEqual(fx.Crm.Header(0, "Authorization"), fx.Crm.Header(1, "Authorization"));
        fx.Crm.AssertNeverSaw(agentToken);
    }

    private static (string Pem, SecurityKey PublicKey) NewKey(string type)
    {
        if (type == "RSA")
        {
            using var rsa = RSA.Create(2048);
            return (rsa.ExportPkcs8PrivateKeyPem(), new RsaSecurityKey(rsa.ExportParameters(includePrivateParameters: false)));
        }

        var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var pub = ECDsa.Create(ec.ExportParameters(includePrivateParameters: false));
        var pem = ec.ExportPkcs8PrivateKeyPem();
        ec.Dispose();
        return (pem, new ECDsaSecurityKey(pub));
    }

    private string WriteKey(string pem)
    {
        var file = Path.Combine(Path.GetTempPath(), $"agentgateway-test-key-{Guid.NewGuid():N}.pem");
        File.WriteAllText(file, pem);
        _files.Add(file);
        return file;
    }

    /// <summary>Hop <c>crm-key</c>: the CRM hop's shape, authenticated with <c>private_key_jwt</c>.</summary>
    private JsonObject WithKeyHop(JsonObject config, string clientId, string keyFile) => config.WithHop("crm-key", new JsonObject
    {
        ["Kind"] = "OAuthClientCredentials",
        ["TokenEndpoint"] = fx.Auth.TokenEndpoint,
        ["ClientId"] = clientId,
        ["ClientAuthentication"] = "PrivateKeyJwt",
        ["PrivateKey"] = "file:" + keyFile,
        // OpenIddict 7 follows draft-ietf-oauth-rfc7523bis: the assertion's audience is the issuer.
        ["AssertionAudience"] = fx.Auth.Issuer,
        ["Scopes"] = new JsonArray("crm.read"),
    });
}
