using System.Security.Cryptography;
using AgentGateway.Proxy.Pipeline;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace AgentGateway.Proxy.Provenance;

/// <summary>
/// Signs the provenance assertion a route can carry to its upstream: a short-lived JWT, signed
/// with the gateway's own key, naming who acted (agent, instance, the human it acts for, task,
/// grant, hop, trace id). An upstream that receives a shared OAuth token still learns who acted,
/// and can verify it against the keys published at <c>/.well-known/jwks.json</c>. The current key
/// signs; previous keys stay published so assertions signed just before a rotation still verify.
/// </summary>
public sealed class ProvenanceSigner
{
    private static readonly JsonWebTokenHandler Handler = new() { SetDefaultTimesOnTokenCreation = false };
    private readonly SigningCredentials _signing;
    private readonly TimeProvider _time;

    public ProvenanceSigner(ProvenanceOptions options, SecurityKey current, IReadOnlyList<SecurityKey> previous, TimeProvider time)
    {
        Options = options;
        _time = time;
        _signing = new SigningCredentials(current, current is RsaSecurityKey ? SecurityAlgorithms.RsaSsaPssSha256 : SecurityAlgorithms.EcdsaSha256);
        var keys = new JsonWebKeySet();
        foreach (var key in previous.Prepend(current))
        {
            var jwk = JsonWebKeyConverter.ConvertFromSecurityKey(key);
            // Publish the public half only.
            jwk.D = jwk.P = jwk.Q = jwk.DP = jwk.DQ = jwk.QI = null;
            jwk.Use = "sig";
            jwk.Alg = key is RsaSecurityKey ? SecurityAlgorithms.RsaSsaPssSha256 : SecurityAlgorithms.EcdsaSha256;
            keys.Keys.Add(jwk);
        }

        // Encoded once per revision: the endpoint sends these bytes with their length as they are.
        Jwks = System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(new { keys = keys.Keys.Select(k => Public(k)) });
    }

    public ProvenanceOptions Options { get; }

    /// <summary>The JWKS document (public keys only), in UTF-8.</summary>
    public ReadOnlyMemory<byte> Jwks { get; }

    /// <summary>The assertion for one forwarded request.</summary>
    public string Sign(GatewayRequestFeature feature, string? credentialName, string? traceId)
    {
        var now = _time.GetUtcNow();
        var claims = new Dictionary<string, object>
        {
            ["sub"] = feature.Agent.Agent.Id,
            ["jti"] = Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(16)),
            ["hop"] = feature.Route.RouteId,
            ["grant"] = feature.Grant ?? "",
        };
        if (feature.Agent.Instance is { } instance)
        {
            claims["agent_instance"] = instance;
        }

        if (feature.Delegation is { } delegation)
        {
            claims["act_for"] = delegation.Subject;
        }

        if (feature.Task is { } task)
        {
            claims["task"] = task;
        }

        if (credentialName is not null)
        {
            claims["credential"] = credentialName;
        }

        if (traceId is not null)
        {
            claims["trace_id"] = traceId;
        }

        return Handler.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = Options.Issuer,
            Audience = feature.Route.RouteId,
            IssuedAt = now.UtcDateTime,
            NotBefore = now.UtcDateTime,
            Expires = (now + Options.Lifetime).UtcDateTime,
            Claims = claims,
            SigningCredentials = _signing,
            TokenType = "agentgateway-provenance+jwt",
        });
    }

    /// <summary>A fresh key for a gateway that has none configured (one replica, or keys differ per replica).</summary>
    public static SecurityKey Ephemeral()
    {
        var key = new ECDsaSecurityKey(ECDsa.Create(ECCurve.NamedCurves.nistP256));
        key.KeyId = Base64UrlEncoder.Encode(JsonWebKeyConverter.ConvertFromSecurityKey(key).ComputeJwkThumbprint());
        return key;
    }

    private static Dictionary<string, string> Public(JsonWebKey key)
    {
        var result = new Dictionary<string, string> { ["kty"] = key.Kty, ["kid"] = key.Kid, ["use"] = key.Use, ["alg"] = key.Alg };
        void Add(string name, string? value)
        {
            if (!string.IsNullOrEmpty(value))
            {
                result[name] = value;
            }
        }

        Add("crv", key.Crv);
        Add("x", key.X);
        Add("y", key.Y);
        Add("n", key.N);
        Add("e", key.E);
        return result;
    }
}

/// <summary><c>Gateway:Provenance</c>, compiled.</summary>
public sealed record ProvenanceOptions(string Header, string Issuer, TimeSpan Lifetime);
