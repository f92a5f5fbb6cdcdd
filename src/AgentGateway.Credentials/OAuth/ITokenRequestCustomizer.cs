using Duende.IdentityModel.Client;

namespace AgentGateway.Credentials.OAuth;

/// <summary>
/// A last look at every token request the OAuth kinds send, after the broker has filled it in
/// (endpoint, grant, client authentication, scopes, resources): for parameters an issuer wants
/// that configuration has no setting for. The default does nothing; register your own before
/// <c>AddCredentialBroker</c>.
/// </summary>
/// <remarks>
/// Whatever it adds must be the same for every request that shares a cache key (see
/// <see cref="ITokenCacheKeyGenerator"/>), or one request's token would be served to another.
/// </remarks>
public interface ITokenRequestCustomizer
{
    /// <param name="credentialName">The configured credential the request is for.</param>
    /// <param name="request">The request about to be sent.</param>
    /// <param name="cancellationToken">Bounded by the credential's timeout.</param>
    ValueTask CustomizeAsync(string credentialName, ProtocolRequest request, CancellationToken cancellationToken);
}

/// <summary>The default: requests go out as the broker built them.</summary>
internal sealed class NoTokenRequestCustomization : ITokenRequestCustomizer
{
    public ValueTask CustomizeAsync(string credentialName, ProtocolRequest request, CancellationToken cancellationToken) => ValueTask.CompletedTask;
}
