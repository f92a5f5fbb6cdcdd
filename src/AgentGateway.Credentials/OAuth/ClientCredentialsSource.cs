using System.Security.Cryptography;
using System.Text;
using AgentGateway.Credentials.Caching;
using AgentGateway.Credentials.Secrets;
using Duende.IdentityModel.Client;
using Microsoft.Extensions.Logging;

namespace AgentGateway.Credentials.OAuth;

/// <summary>
/// OAuth 2.1 client-credentials tokens (RFC 6749 §4.4) with RFC 8707 resource indicators,
/// through Duende.IdentityModel's token client, cached in <see cref="TokenCache"/>.
/// </summary>
internal sealed partial class ClientCredentialsSource : ICredentialSource
{
    /// <summary>The named HttpClient for token endpoints: no redirects (a redirect would carry the
    /// client secret to wherever it points), no cookies, bounded time.</summary>
    public const string HttpClientName = "AgentGateway.Credentials.TokenEndpoint";

    private readonly OAuthClientCredentialsDefinition _definition;
    private readonly SecretValue _clientSecret;
    private readonly TokenCache _cache;
    private readonly IHttpClientFactory _httpClients;
    private readonly CredentialFingerprint _fingerprint;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly string _cacheKey;

    public ClientCredentialsSource(
        OAuthClientCredentialsDefinition definition,
        SecretValue clientSecret,
        TokenCache cache,
        IHttpClientFactory httpClients,
        CredentialFingerprint fingerprint,
        TimeProvider time,
        ILogger logger)
    {
        _definition = definition;
        _clientSecret = clientSecret;
        _cache = cache;
        _httpClients = httpClients;
        _fingerprint = fingerprint;
        _time = time;
        _logger = logger;
        _cacheKey = CacheKeyFor(definition, clientSecret);
    }

    public string Name => _definition.Name;

    public CredentialKind Kind => CredentialKind.OAuthClientCredentials;

    public string HeaderName => _definition.Header;

    internal string CacheKey => _cacheKey;

    public async ValueTask<CredentialResult> GetAsync(CancellationToken cancellationToken)
    {
        try
        {
            var (token, source) = await _cache.GetOrFetchAsync(_cacheKey, _definition.Timeout, this, static (s, ct) => s.FetchAsync(ct), cancellationToken);
            return CredentialResult.Success(new HopCredential(
                Name, Kind, HeaderName, token.BearerHeaderValue, token.Fingerprint, source, token.ExpiresAt));
        }
        catch (CredentialFetchException ex)
        {
            return CredentialResult.Failure(new CredentialError(Name, ex.Message));
        }
    }

    /// <summary>
    /// The cache key is a hash over every parameter that shapes the token — endpoint, client,
    /// authentication style, scopes, resources — and over the client secret, so a rotated secret
    /// never serves a token obtained with the old one. Scopes and resources are sorted: the same
    /// set in another order is the same token.
    /// </summary>
    internal static string CacheKeyFor(OAuthClientCredentialsDefinition d, SecretValue secret)
    {
        // JSON encoding keeps field boundaries unambiguous whatever the values contain.
        var material = System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(new[]
        {
            ["client_credentials", d.TokenEndpoint.AbsoluteUri, d.ClientId, d.ClientAuthentication.ToString()],
            d.Scopes.Order(StringComparer.Ordinal).ToArray(),
            d.Resources.Order(StringComparer.Ordinal).ToArray(),
            [Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret.Reveal())))],
        });
        return "agw:token:v1:" + Convert.ToHexStringLower(SHA256.HashData(material));
    }

    private async ValueTask<CachedToken> FetchAsync(CancellationToken cancellationToken)
    {
        var started = _time.GetTimestamp();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_definition.Timeout);
        var client = _httpClients.CreateClient(HttpClientName);
        var request = new ClientCredentialsTokenRequest
        {
            Address = _definition.TokenEndpoint.AbsoluteUri,
            ClientId = _definition.ClientId,
            ClientSecret = _clientSecret.Reveal(),
            ClientCredentialStyle = _definition.ClientAuthentication == ClientAuthenticationStyle.BasicAuthentication
                ? ClientCredentialStyle.AuthorizationHeader
                : ClientCredentialStyle.PostBody,
            Scope = _definition.Scopes.Count > 0 ? string.Join(' ', _definition.Scopes) : null,
        };
        foreach (var resource in _definition.Resources)
        {
            request.Resource.Add(resource);
        }

        TokenResponse response;
        try
        {
            response = await client.RequestClientCredentialsTokenAsync(request, timeout.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            Log.TokenRequestFailed(_logger, Name, "timed out");
            throw new CredentialFetchException($"the token endpoint of credential '{Name}' did not answer within {_definition.Timeout.TotalSeconds:0.#} s");
        }

        var elapsed = _time.GetElapsedTime(started);
        var failure = Classify(response);
        if (failure is not null)
        {
            Log.TokenRequestFailed(_logger, Name, failure);
            throw new CredentialFetchException($"the token endpoint of credential '{Name}' failed: {failure}");
        }

        var now = _time.GetUtcNow();
        // An issuer that states no lifetime gets a short one: serving a token the issuer may
        // already consider expired is worse than asking again.
        var lifetime = response.ExpiresIn > 0 ? TimeSpan.FromSeconds(response.ExpiresIn) : TimeSpan.FromMinutes(1);
        var token = CachedToken.Create(response.AccessToken!, now, lifetime, _definition.RefreshBeforeExpiry, _fingerprint.Of(response.AccessToken!));
        Log.TokenFetched(_logger, Name, token.Fingerprint, token.ExpiresAt, elapsed.TotalMilliseconds);
        return token;
    }

    /// <summary>Turns an unusable answer into a short, safe reason; null when the answer is usable.</summary>
    private static string? Classify(TokenResponse response)
    {
        return response.ErrorType switch
        {
            ResponseErrorType.None when string.IsNullOrEmpty(response.AccessToken) => "the answer carried no access_token",
            ResponseErrorType.None when !string.Equals(response.TokenType, "Bearer", StringComparison.OrdinalIgnoreCase) =>
                $"token_type '{Printable(response.TokenType)}' is not Bearer",
            ResponseErrorType.None => null,
            ResponseErrorType.Protocol => $"{Printable(response.Error)} (HTTP {(int)response.HttpStatusCode})",
            // Issuers answer client-authentication failures with 401 and an OAuth error body
            // (RFC 6749 §5.2), which the library leaves unparsed for non-400 statuses.
            ResponseErrorType.Http when OAuthErrorCode(response.Raw) is { } code => $"{code} (HTTP {(int)response.HttpStatusCode})",
            ResponseErrorType.Http => $"HTTP {(int)response.HttpStatusCode}",
            ResponseErrorType.Exception => $"{response.Exception?.GetType().Name ?? "exception"} reaching the endpoint",
            _ => "an answer that is not an OAuth token response",
        };
    }

    /// <summary>The <c>error</c> member of an OAuth error body, if the body is a small JSON object with one.</summary>
    private static string? OAuthErrorCode(string? body)
    {
        if (string.IsNullOrEmpty(body) || body.Length > 8 * 1024 || body[0] != '{')
        {
            return null;
        }

        try
        {
            using var json = System.Text.Json.JsonDocument.Parse(body);
            return json.RootElement.TryGetProperty("error", out var error) && error.ValueKind == System.Text.Json.JsonValueKind.String
                ? Printable(error.GetString())
                : null;
        }
        catch (System.Text.Json.JsonException)
        {
            return null;
        }
    }

    /// <summary>Issuer-supplied strings go into problem bodies and logs; keep them short and plain.</summary>
    private static string Printable(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return "(none)";
        }

        var plain = new string([.. text.Take(64).Where(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.')]);
        return plain.Length == 0 ? "(unprintable)" : plain;
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1101, Level = LogLevel.Information, Message = "Fetched a token for credential {CredentialName}: {CredentialFingerprint}, expires {CredentialExpiresAt:O}, in {DurationMs:0.0} ms")]
        public static partial void TokenFetched(ILogger logger, string credentialName, string credentialFingerprint, DateTimeOffset credentialExpiresAt, double durationMs);

        [LoggerMessage(EventId = 1102, Level = LogLevel.Warning, Message = "The token request for credential {CredentialName} failed: {Reason}")]
        public static partial void TokenRequestFailed(ILogger logger, string credentialName, string reason);
    }
}
