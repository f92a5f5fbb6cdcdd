using System.Security.Cryptography;
using AgentGateway.Credentials.Configuration;
using AgentGateway.Credentials.Secrets;
using Duende.IdentityModel;
using Duende.IdentityModel.Client;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace AgentGateway.Credentials.OAuth;

/// <summary>
/// A configured <see cref="ClientAuthentication"/> with its secret resolved: puts the client's
/// proof on each token request. Built at load, so a key that does not parse, or does not fit its
/// algorithm, is a configuration problem rather than a failing request.
/// </summary>
internal abstract class ClientAuthenticator
{
    /// <summary>What identifies the client's key material in cache keys (hashed there, never stored):
    /// a rotated secret or key never serves a token obtained with the old one.</summary>
    public abstract string KeyMaterial { get; }

    public abstract void Apply(ProtocolRequest request, OAuthClient client);

    /// <summary>Shared secrets an agent must never present; a private key never leaves the gateway as text.</summary>
    public virtual IReadOnlyList<SecretValue> Secrets => [];

    /// <summary>Null (with problems added under <paramref name="path"/>) when the material is unusable.</summary>
    public static ClientAuthenticator? Create(ClientAuthentication authentication, string path, TimeProvider time, ConfigProblems problems)
    {
        if (!SecretResolver.TryResolve(authentication.Secret, out var secret, out var error))
        {
            problems.Add(path + (authentication is PrivateKeyJwtAuthentication ? ":PrivateKey" : ":ClientSecret"), error!);
            return null;
        }

        return authentication switch
        {
            ClientSecretAuthentication s => new SharedSecret(secret!, s.Style),
            PrivateKeyJwtAuthentication k => PrivateKeyJwt.Create(k, secret!, path, time, problems),
            _ => throw new InvalidOperationException($"no authenticator for {authentication.GetType().Name}"),
        };
    }

    private sealed class SharedSecret(SecretValue secret, ClientSecretStyle style) : ClientAuthenticator
    {
        public override string KeyMaterial => secret.Reveal();

        public override IReadOnlyList<SecretValue> Secrets { get; } = [secret];

        public override void Apply(ProtocolRequest request, OAuthClient client)
        {
            request.ClientSecret = secret.Reveal();
            request.ClientCredentialStyle = style == ClientSecretStyle.BasicAuthentication
                ? ClientCredentialStyle.AuthorizationHeader
                : ClientCredentialStyle.PostBody;
        }
    }

    /// <summary>
    /// RFC 7523 §2.2 / §3: <c>iss</c> and <c>sub</c> are the client id, <c>aud</c> the token endpoint
    /// (or the configured audience), a fresh <c>jti</c> and a one-minute life per request, so an
    /// assertion captured in transit is worth little and cannot be replayed at an issuer that
    /// tracks <c>jti</c>.
    /// </summary>
    private sealed class PrivateKeyJwt(SigningCredentials signing, string keyMaterial, string? audience, TimeProvider time) : ClientAuthenticator
    {
        private const string AssertionType = "client-authentication+jwt";
        private static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(1);
        private static readonly JsonWebTokenHandler Handler = new() { SetDefaultTimesOnTokenCreation = false };

        public override string KeyMaterial => keyMaterial;

        public static PrivateKeyJwt? Create(PrivateKeyJwtAuthentication settings, SecretValue pem, string path, TimeProvider time, ConfigProblems problems)
        {
            var key = ImportKey(pem.Reveal());
            if (key is null)
            {
                problems.Add(path + ":PrivateKey", "does not hold a PEM-encoded RSA or EC private key");
                return null;
            }

            var algorithm = settings.Algorithm ?? NaturalAlgorithm(key);
            var fit = Fits(key, algorithm);
            if (fit is not null)
            {
                problems.Add(path + ":SigningAlgorithm", fit);
                return null;
            }

            key.KeyId = settings.KeyId ?? Base64UrlEncoder.Encode(JsonWebKeyConverter.ConvertFromSecurityKey(key).ComputeJwkThumbprint());
            return new PrivateKeyJwt(new SigningCredentials(key, algorithm), pem.Reveal(), settings.Audience, time);
        }

        public override void Apply(ProtocolRequest request, OAuthClient client)
        {
            var now = time.GetUtcNow().UtcDateTime;
            var assertion = Handler.CreateToken(new SecurityTokenDescriptor
            {
                Issuer = client.ClientId,
                Audience = audience ?? client.TokenEndpoint.AbsoluteUri,
                Claims = new Dictionary<string, object>
                {
                    [JwtClaimTypes.Subject] = client.ClientId,
                    [JwtClaimTypes.JwtId] = Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(16)),
                },
                IssuedAt = now,
                NotBefore = now,
                Expires = now + Lifetime,
                SigningCredentials = signing,
                // Explicit typing (draft-ietf-oauth-rfc7523bis §4) keeps the assertion from being
                // accepted as any other kind of JWT; RFC 7523 servers do not constrain typ.
                TokenType = AssertionType,
            });
            request.ClientSecret = null;
            request.ClientCredentialStyle = ClientCredentialStyle.PostBody;
            request.ClientAssertion = new ClientAssertion
            {
                Type = OidcConstants.ClientAssertionTypes.JwtBearer,
                Value = assertion,
            };
        }

        private static AsymmetricSecurityKey? ImportKey(string pem)
        {
            try
            {
                var rsa = RSA.Create();
                rsa.ImportFromPem(pem);
                return new RsaSecurityKey(rsa);
            }
            catch (Exception ex) when (ex is ArgumentException or CryptographicException)
            {
                // Not RSA; try EC below.
            }

            try
            {
                var ec = ECDsa.Create();
                ec.ImportFromPem(pem);
                return new ECDsaSecurityKey(ec);
            }
            catch (Exception ex) when (ex is ArgumentException or CryptographicException)
            {
                return null;
            }
        }

        private static string NaturalAlgorithm(AsymmetricSecurityKey key) => key switch
        {
            ECDsaSecurityKey { ECDsa.KeySize: 384 } => SecurityAlgorithms.EcdsaSha384,
            ECDsaSecurityKey { ECDsa.KeySize: 521 } => SecurityAlgorithms.EcdsaSha512,
            ECDsaSecurityKey => SecurityAlgorithms.EcdsaSha256,
            _ => SecurityAlgorithms.RsaSha256,
        };

        /// <summary>Null when <paramref name="algorithm"/> can be used with <paramref name="key"/>, else why not.</summary>
        private static string? Fits(AsymmetricSecurityKey key, string algorithm) => (key, algorithm) switch
        {
            (RsaSecurityKey { Rsa.KeySize: < 2048 }, _) => "RSA keys must have at least 2048 bits",
            (RsaSecurityKey, "RS256" or "RS384" or "RS512" or "PS256" or "PS384" or "PS512") => null,
            (ECDsaSecurityKey { ECDsa.KeySize: 256 }, "ES256") => null,
            (ECDsaSecurityKey { ECDsa.KeySize: 384 }, "ES384") => null,
            (ECDsaSecurityKey { ECDsa.KeySize: 521 }, "ES512") => null,
            (RsaSecurityKey, _) => $"'{algorithm}' cannot be used with an RSA key; use RS256, RS384, RS512, PS256, PS384 or PS512",
            _ => $"'{algorithm}' does not fit this EC key; use {NaturalAlgorithm(key)}",
        };
    }
}
