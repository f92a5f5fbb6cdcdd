using System.Security.Cryptography;
using System.Text;
using AgentGateway.Credentials.Caching;
using Azure.Core;
using Azure.Identity;
using Google.Apis.Auth.OAuth2;
using Microsoft.Extensions.Logging;

namespace AgentGateway.Credentials.ManagedIdentity;

/// <summary>
/// The gateway's own cloud identity as a hop credential: Azure managed identity through
/// Azure.Identity, or a GCP service account through Google.Apis.Auth's compute credential. The
/// cloud SDKs find and talk to the platform's metadata endpoint; the broker adds what it adds to
/// every token — the shared, sealed cache with single flight and refresh ahead, a bounded wait,
/// and failures reported as safe results.
/// </summary>
internal sealed partial class ManagedIdentitySource : ICredentialSource
{
    private readonly ManagedIdentityOptions _definition;
    private readonly TokenCache _cache;
    private readonly CredentialFingerprint _fingerprint;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Func<CancellationToken, Task<(string Token, DateTimeOffset ExpiresAt)>> _acquire;

    public ManagedIdentitySource(ManagedIdentityOptions definition, TokenCache cache, CredentialFingerprint fingerprint, TimeProvider time, ILogger logger)
    {
        _definition = definition;
        _cache = cache;
        _fingerprint = fingerprint;
        _time = time;
        _logger = logger;
        CacheKey = CacheKeyFor(definition);
        _acquire = definition.Provider == ManagedIdentityProvider.Azure ? AzureAcquirer(definition) : GcpAcquirer(definition, time);
    }

    public string Name => _definition.Name;

    public CredentialKind Kind => CredentialKind.ManagedIdentity;

    public string HeaderName => _definition.Header;

    internal string CacheKey { get; }

    public async ValueTask<CredentialResult> GetAsync(CredentialRequest request, CancellationToken cancellationToken)
    {
        try
        {
            var (token, source) = await _cache.GetOrFetchAsync(CacheKey, agentId: null, _definition.Timeout, this, static (s, ct) => s.FetchAsync(ct), cancellationToken);
            return CredentialResult.Success(new HopCredential(Name, Kind, HeaderName, token.BearerHeaderValue, token.Fingerprint, source, token.ExpiresAt) { Secret = token.AccessToken });
        }
        catch (CredentialFetchException ex)
        {
            return CredentialResult.Failure(new CredentialError(Name, ex.Message));
        }
    }

    public ValueTask<bool> InvalidateAsync(CredentialRequest request, HopCredential used, CancellationToken cancellationToken) =>
        _cache.InvalidateAsync(CacheKey, used.Fingerprint, cancellationToken);

    /// <summary>Everything that shapes the token: provider, identity, scopes (in any order).</summary>
    internal static string CacheKeyFor(ManagedIdentityOptions d)
    {
        var material = string.Join('\n', [d.Provider.ToString(), d.ClientId ?? "(system)", .. d.Scopes.Order(StringComparer.Ordinal)]);
        return "agw:token:v1:mi:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(material)));
    }

    private async ValueTask<CachedToken> FetchAsync(CancellationToken cancellationToken)
    {
        var started = _time.GetTimestamp();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_definition.Timeout);
        (string Token, DateTimeOffset ExpiresAt) issued;
        try
        {
            issued = await _acquire(timeout.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            CredentialTelemetry.RecordTokenRequest(Name, _time.GetElapsedTime(started), succeeded: false);
            Log.TokenRequestFailed(_logger, Name, _definition.Provider, "timed out");
            throw new CredentialFetchException($"the {_definition.Provider} identity endpoint for credential '{Name}' did not answer within {_definition.Timeout.TotalSeconds:0.#} s");
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            CredentialTelemetry.RecordTokenRequest(Name, _time.GetElapsedTime(started), succeeded: false);
            // SDK messages can quote endpoint responses; the agent and the log get the class only.
            Log.TokenRequestFailed(_logger, Name, _definition.Provider, ex.GetType().Name);
            throw new CredentialFetchException($"the {_definition.Provider} managed identity for credential '{Name}' is unavailable ({ex.GetType().Name})", ex);
        }

        var now = _time.GetUtcNow();
        var lifetime = issued.ExpiresAt - now;
        if (string.IsNullOrEmpty(issued.Token) || lifetime <= TimeSpan.Zero)
        {
            Log.TokenRequestFailed(_logger, Name, _definition.Provider, "expired or empty token");
            throw new CredentialFetchException($"the {_definition.Provider} identity endpoint for credential '{Name}' returned an expired or empty token");
        }

        var token = CachedToken.Create(issued.Token, now, lifetime, _definition.RefreshBeforeExpiry, _fingerprint.Of(issued.Token));
        var elapsed = _time.GetElapsedTime(started);
        CredentialTelemetry.RecordTokenRequest(Name, elapsed, succeeded: true);
        Log.TokenFetched(_logger, Name, _definition.Provider, token.Fingerprint, token.ExpiresAt, elapsed.TotalMilliseconds);
        return token;
    }

    private static Func<CancellationToken, Task<(string, DateTimeOffset)>> AzureAcquirer(ManagedIdentityOptions d)
    {
        var options = new ManagedIdentityCredentialOptions(d.ClientId is { } id ? ManagedIdentityId.FromUserAssignedClientId(id) : ManagedIdentityId.SystemAssigned);
        // The broker bounds the wait and retries on the next request; SDK retries would only
        // stretch a failing request past its timeout.
        options.Retry.MaxRetries = 0;
        var credential = new ManagedIdentityCredential(options);
        var context = new TokenRequestContext([.. d.Scopes]);
        return async ct =>
        {
            var token = await credential.GetTokenAsync(context, ct);
            return (token.Token, token.ExpiresOn);
        };
    }

    private static Func<CancellationToken, Task<(string, DateTimeOffset)>> GcpAcquirer(ManagedIdentityOptions d, TimeProvider time)
    {
        var credential = new ComputeCredential(new ComputeCredential.Initializer { Scopes = d.Scopes });
        return async ct =>
        {
            // The compute credential caches its token; asking explicitly gets a fresh one, and
            // the broker's cache decides when that is needed.
            await credential.RequestAccessTokenAsync(ct);
            var token = credential.Token ?? throw new InvalidOperationException("no token");
            var issued = token.IssuedUtc == default ? time.GetUtcNow() : new DateTimeOffset(token.IssuedUtc, TimeSpan.Zero);
            return (token.AccessToken, issued + TimeSpan.FromSeconds(token.ExpiresInSeconds ?? 60));
        };
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1401, Level = LogLevel.Information, Message = "Fetched a {Provider} managed-identity token for credential {CredentialName}: {CredentialFingerprint}, expires {CredentialExpiresAt:O}, in {DurationMs:0.0} ms")]
        public static partial void TokenFetched(ILogger logger, string credentialName, ManagedIdentityProvider provider, string credentialFingerprint, DateTimeOffset credentialExpiresAt, double durationMs);

        [LoggerMessage(EventId = 1402, Level = LogLevel.Warning, Message = "The {Provider} managed-identity token request for credential {CredentialName} failed: {Reason}")]
        public static partial void TokenRequestFailed(ILogger logger, string credentialName, ManagedIdentityProvider provider, string reason);
    }
}
