using AgentGateway.Configuration;
using AgentGateway.Credentials.Secrets;

namespace AgentGateway.Credentials.OAuth;

/// <summary>What every OAuth kind shares: the gateway's client identity and authentication, the
/// token's scopes, and how the token is injected and cached.</summary>
[Setting(Rule = """{"allOf": [{"description": "A client secret, or with PrivateKeyJwt a private key: never both.", "if": {"properties": {"ClientAuthentication": {"const": "PrivateKeyJwt"}}, "required": ["ClientAuthentication"]}, "then": {"required": ["PrivateKey"], "not": {"required": ["ClientSecret"]}}, "else": {"required": ["ClientSecret"], "not": {"anyOf": [{"required": ["PrivateKey"]}, {"required": ["PrivateKeyId"]}, {"required": ["SigningAlgorithm"]}, {"required": ["AssertionAudience"]}]}}}]}""")]
public abstract record OAuthCommonSettings
{
    public string? Kind { get; init; }

    [Setting(Required = true, MinLength = 1)]
    public string? ClientId { get; init; }

    /// <summary>Secret reference to the client secret (<c>PostBody</c>, <c>BasicAuthentication</c>).</summary>
    [Setting("With PostBody or BasicAuthentication.", Format = SettingFormat.SecretReference)]
    public string? ClientSecret { get; init; }

    /// <summary><c>PostBody</c> (client_secret_post, the default), <c>BasicAuthentication</c>
    /// (client_secret_basic) or <c>PrivateKeyJwt</c> (RFC 7523 assertions signed with <see cref="PrivateKey"/>).</summary>
    [Setting(AllowedValues = ["PostBody", "BasicAuthentication", "PrivateKeyJwt"])]
    public string ClientAuthentication { get; init; } = "PostBody";

    /// <summary>Secret reference to the PEM private key (RSA or EC) that signs <c>PrivateKeyJwt</c> assertions.</summary>
    [Setting("PrivateKeyJwt: the PEM private key (RSA of 2048 bits or more, or EC) that signs RFC 7523 assertions.", Format = SettingFormat.SecretReference)]
    public string? PrivateKey { get; init; }

    /// <summary>The assertions' <c>kid</c>; by default the key's RFC 7638 thumbprint.</summary>
    [Setting("PrivateKeyJwt: the assertions' kid. Default: the key's RFC 7638 thumbprint.", MinLength = 1)]
    public string? PrivateKeyId { get; init; }

    /// <summary>The assertions' algorithm; by default RS256 for RSA keys, ES256/384/512 by curve for EC keys.</summary>
    [Setting("PrivateKeyJwt. Default: RS256 for RSA keys, ES256/ES384/ES512 by curve for EC keys.", AllowedValues = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"])]
    public string? SigningAlgorithm { get; init; }

    /// <summary>The assertions' <c>aud</c>; by default the token endpoint URL (some issuers want their issuer URL).</summary>
    [Setting("PrivateKeyJwt: the assertions' aud. Default: the token endpoint URL (McpOAuth: the discovered one); servers following draft-ietf-oauth-rfc7523bis (e.g. OpenIddict 7) want their issuer URL.", Format = SettingFormat.Uri)]
    public string? AssertionAudience { get; init; }

    [Setting(Pattern = @"^\S+$")]
    public string[] Scopes { get; init; } = [];

    /// <summary>The header the token goes into, as <c>Bearer {token}</c>.</summary>
    [Setting(Format = SettingFormat.HeaderName)]
    public string Header { get; init; } = "Authorization";

    /// <summary>How long before the token's expiry it stops being served from cache.</summary>
    public TimeSpan RefreshBeforeExpiry { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>How long the token endpoint may take before the request fails with 503.</summary>
    [Setting("Bounds the token request (McpOAuth: the metadata lookup and the token request, each).")]
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(10);
}

/// <summary>The OAuth kinds with a configured token endpoint.</summary>
public abstract record OAuthClientSettings : OAuthCommonSettings
{
    [Setting("https, except loopback.", Required = true, Format = SettingFormat.Uri)]
    public string? TokenEndpoint { get; init; }

    /// <summary>RFC 8707 resource indicators: the audience the token is for.</summary>
    [Setting(Format = SettingFormat.Uri)]
    public string[] Resources { get; init; } = [];
}

/// <summary>The gateway as an OAuth client of one token endpoint.</summary>
public sealed record OAuthClient(
    Uri TokenEndpoint,
    string ClientId,
    ClientAuthentication Authentication,
    TimeSpan Timeout);

/// <summary>How the gateway proves to the token endpoint that it is the client. Either way the
/// material is a secret reference, resolved at load.</summary>
public abstract record ClientAuthentication(SecretReference Secret)
{
    /// <summary>The method's name in cache keys: a token obtained one way is not served for another.</summary>
    public abstract string Method { get; }
}

/// <summary>A shared client secret (RFC 6749 §2.3.1), in the body (<c>client_secret_post</c>) or
/// in a Basic authorization header (<c>client_secret_basic</c>).</summary>
public sealed record ClientSecretAuthentication(SecretReference Secret, ClientSecretStyle Style)
    : ClientAuthentication(Secret)
{
    public override string Method => Style == ClientSecretStyle.BasicAuthentication ? "client_secret_basic" : "client_secret_post";
}

/// <summary><c>private_key_jwt</c> (RFC 7523 §2.2): a short-lived assertion signed with the
/// client's private key, so no shared secret crosses the network or sits at the issuer.</summary>
/// <param name="Secret">Reference to the PEM-encoded private key (PKCS#8, RSA or EC).</param>
/// <param name="KeyId">The <c>kid</c> header; null means the key's RFC 7638 thumbprint.</param>
/// <param name="Algorithm">The JWS algorithm; null means the key's natural one (RS256, or ES256/384/512 by curve).</param>
/// <param name="Audience">The assertion's <c>aud</c>; null means the token endpoint URL.</param>
public sealed record PrivateKeyJwtAuthentication(SecretReference Secret, string? KeyId, string? Algorithm, string? Audience)
    : ClientAuthentication(Secret)
{
    public override string Method => "private_key_jwt";
}

public enum ClientSecretStyle
{
    PostBody,
    BasicAuthentication,
}
