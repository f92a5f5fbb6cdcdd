using System.Security.Cryptography;
using AgentGateway.Configuration;
using AgentGateway.Credentials.Secrets;
using Duende.IdentityModel;
using Duende.IdentityModel.Client;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace AgentGateway.Credentials.OAuth;

/// <summary>
/// Turns a configured <see cref="ClientAuthentication"/> into the authenticator that puts the
/// client's proof on each token request. Replace it (register your own before
/// <c>AddCredentialBroker</c>) to sign client assertions elsewhere, e.g. with a key in an HSM or a
/// cloud KMS.
/// </summary>
public interface IClientAuthenticatorFactory
{
    /// <summary>Resolves the material at load, so a key that does not parse, or does not fit its
    /// algorithm, is a configuration problem rather than a failing request.</summary>
    /// <param name="authentication">The validated method and the reference to its secret.</param>
    /// <param name="path">The credential entry's path: problems name the setting under it.</param>
    /// <param name="problems">Where every problem goes.</param>
    /// <returns>Null, with problems added, when the material is unusable.</returns>
    IClientAuthenticator? Create(ClientAuthentication authentication, string path, ConfigProblems problems);
}

/// <summary>Puts the gateway's client authentication on a token request (a secret, or a signed
/// client assertion).</summary>
public interface IClientAuthenticator
{
    /// <summary>What identifies the client's key material in cache keys (hashed there, never stored):
    /// a rotated secret or key never serves a token obtained with the old one.</summary>
    string KeyMaterial { get; }

    /// <summary>Shared secrets an agent must never present; a private key never leaves the gateway as text.</summary>
    IReadOnlyList<SecretValue> Secrets { get; }

    ValueTask ApplyAsync(ProtocolRequest request, OAuthClient client, CancellationToken cancellationToken);
}

/// <summary>The default: client secrets (post or basic) and <c>private_key_jwt</c> assertions
/// signed in process.</summary>
internal sealed class ClientAuthenticatorFactory(TimeProvider time) : IClientAuthenticatorFactory
{
    public IClientAuthenticator? Create(ClientAuthentication authentication, string path, ConfigProblems problems)
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

    private sealed class SharedSecret(SecretValue secret, ClientSecretStyle style) : IClientAuthenticator
    {
        public string KeyMaterial => secret.Reveal();

        public IReadOnlyList<SecretValue> Secrets { get; } = [secret];

        public ValueTask ApplyAsync(ProtocolRequest request, OAuthClient client, CancellationToken cancellationToken)
        {
            request.ClientSecret = secret.Reveal();
            request.ClientCredentialStyle = style == ClientSecretStyle.BasicAuthentication
                ? ClientCredentialStyle.AuthorizationHeader
                : ClientCredentialStyle.PostBody;
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>
    /// RFC 7523 §2.2 / §3: <c>iss</c> and <c>sub</c> are the client id, <c>aud</c> the token endpoint
    /// (or the configured audience), a fresh <c>jti</c> and a one-minute life per request, so an
    /// assertion captured in transit is worth little and cannot be replayed at an issuer that
    /// tracks <c>jti</c>.
    /// </summary>
    private sealed class PrivateKeyJwt(SigningCredentials signing, string keyMaterial, string? audience, TimeProvider time) : IClientAuthenticator
    {
        private const string AssertionType = "client-authentication+jwt";
        private static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(1);
        private static readonly JsonWebTokenHandler Handler = new() { SetDefaultTimesOnTokenCreation = false };

        public string KeyMaterial => keyMaterial;

        public IReadOnlyList<SecretValue> Secrets => [];

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

        public ValueTask ApplyAsync(ProtocolRequest request, OAuthClient client, CancellationToken cancellationToken)
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
            return ValueTask.CompletedTask;
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
