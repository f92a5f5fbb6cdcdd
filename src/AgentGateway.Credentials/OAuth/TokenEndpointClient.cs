using AgentGateway.Credentials.Caching;
using Duende.IdentityModel.Client;
using Microsoft.Extensions.Logging;

namespace AgentGateway.Credentials.OAuth;

/// <summary>
/// One credential's conversation with its token endpoint, through Duende.IdentityModel: client
/// authentication, a bounded time, and turning the answer into a <see cref="CachedToken"/> or a
/// <see cref="CredentialFetchException"/> whose message is safe to show (a failure class and the
/// OAuth error code, never the issuer's text).
/// </summary>
internal sealed partial class TokenEndpointClient
{
    /// <summary>The named HttpClient for token endpoints: no redirects (a redirect would carry the
    /// client secret to wherever it points), no cookies, bounded time.</summary>
    public const string HttpClientName = "AgentGateway.Credentials.TokenEndpoint";

    private readonly string _credentialName;
    private readonly OAuthClient _client;
    private readonly IClientAuthenticator _authenticator;
    private readonly ITokenRequestCustomizer _customizer;
    private readonly TimeSpan _refreshBeforeExpiry;
    private readonly IHttpClientFactory _httpClients;
    private readonly CredentialFingerprint _fingerprint;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;

    public TokenEndpointClient(
        string credentialName,
        OAuthClient client,
        IClientAuthenticator authenticator,
        ITokenRequestCustomizer customizer,
        TimeSpan refreshBeforeExpiry,
        IHttpClientFactory httpClients,
        CredentialFingerprint fingerprint,
        TimeProvider time,
        ILogger logger)
    {
        _credentialName = credentialName;
        _client = client;
        _authenticator = authenticator;
        _customizer = customizer;
        _refreshBeforeExpiry = refreshBeforeExpiry;
        _httpClients = httpClients;
        _fingerprint = fingerprint;
        _time = time;
        _logger = logger;
    }

    public TimeSpan Timeout => _client.Timeout;

    /// <summary>Fills in the client's endpoint and authentication on a request of any grant, then
    /// lets the <see cref="ITokenRequestCustomizer"/> look at it.</summary>
    public async ValueTask<T> PrepareAsync<T>(T request, CancellationToken cancellationToken)
        where T : ProtocolRequest
    {
        request.Address = _client.TokenEndpoint.AbsoluteUri;
        request.ClientId = _client.ClientId;
        await _authenticator.ApplyAsync(request, _client, cancellationToken);
        await _customizer.CustomizeAsync(_credentialName, request, cancellationToken);
        return request;
    }

    /// <summary>Sends a token request and turns the answer into a cacheable token.</summary>
    /// <param name="state">Passed to <paramref name="send"/>.</param>
    /// <param name="send">Sends the grant-specific request.</param>
    /// <param name="notAfter">The token is never served past this (e.g. the user token it was exchanged for).</param>
    /// <param name="cancellationToken">The caller's cancellation.</param>
    public async ValueTask<CachedToken> RequestAsync<TState>(
        TState state,
        Func<HttpClient, TState, CancellationToken, Task<TokenResponse>> send,
        DateTimeOffset? notAfter,
        CancellationToken cancellationToken)
    {
        var started = _time.GetTimestamp();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_client.Timeout);
        TokenResponse response;
        try
        {
            response = await send(_httpClients.CreateClient(HttpClientName), state, timeout.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            CredentialTelemetry.RecordTokenRequest(_credentialName, _time.GetElapsedTime(started), succeeded: false);
            Log.TokenRequestFailed(_logger, _credentialName, "timed out");
            throw new CredentialFetchException($"the token endpoint of credential '{_credentialName}' did not answer within {_client.Timeout.TotalSeconds:0.#} s");
        }

        var elapsed = _time.GetElapsedTime(started);
        var failure = Classify(response);
        CredentialTelemetry.RecordTokenRequest(_credentialName, elapsed, succeeded: failure is null);
        if (failure is not null)
        {
            Log.TokenRequestFailed(_logger, _credentialName, failure);
            throw new CredentialFetchException($"the token endpoint of credential '{_credentialName}' failed: {failure}");
        }

        var now = _time.GetUtcNow();
        // An issuer that states no lifetime gets a short one: serving a token the issuer may
        // already consider expired is worse than asking again.
        var lifetime = response.ExpiresIn > 0 ? TimeSpan.FromSeconds(response.ExpiresIn) : TimeSpan.FromMinutes(1);
        var token = CachedToken.Create(response.AccessToken!, now, lifetime, _refreshBeforeExpiry, _fingerprint.Of(response.AccessToken!), notAfter);
        Log.TokenFetched(_logger, _credentialName, token.Fingerprint, token.ExpiresAt, elapsed.TotalMilliseconds);
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
            // A body that does not parse (an HTML sign-in page, a proxy's error page) is an answer, not a network failure.
            ResponseErrorType.Exception when response.Exception is System.Text.Json.JsonException =>
                $"an answer that is not an OAuth token response (HTTP {(int)response.HttpStatusCode}, not JSON)",
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
