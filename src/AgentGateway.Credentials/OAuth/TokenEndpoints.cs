using Microsoft.Extensions.Logging;

namespace AgentGateway.Credentials.OAuth;

/// <summary>What the OAuth kinds share to talk to token endpoints: client authentication, request
/// customisation, cache keys, the token-endpoint HTTP client. Each is a replaceable service.</summary>
internal sealed class TokenEndpoints(
    IClientAuthenticatorFactory authenticators,
    ITokenRequestCustomizer customizer,
    ITokenCacheKeyGenerator keys,
    IHttpClientFactory httpClients,
    CredentialFingerprint fingerprint,
    TimeProvider time,
    ILoggerFactory loggers)
{
    public IClientAuthenticatorFactory Authenticators => authenticators;

    public ITokenCacheKeyGenerator Keys => keys;

    public IHttpClientFactory HttpClients => httpClients;

    public TimeProvider Time => time;

    public ILoggerFactory Loggers => loggers;

    public TokenEndpointClient Create(string credentialName, OAuthClient client, IClientAuthenticator authenticator, TimeSpan refreshBeforeExpiry) =>
        new(credentialName, client, authenticator, customizer, refreshBeforeExpiry, httpClients, fingerprint, time, loggers.CreateLogger<TokenEndpointClient>());
}
