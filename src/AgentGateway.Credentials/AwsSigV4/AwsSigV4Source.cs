using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using AgentGateway.Credentials.Caching;
using AgentGateway.Credentials.Secrets;
using Amazon;
using Amazon.Runtime;
using Amazon.Runtime.Credentials;
using Amazon.SecurityToken;
using Amazon.SecurityToken.Model;
using Microsoft.Extensions.Logging;

namespace AgentGateway.Credentials.AwsSigV4;

/// <summary>
/// The gateway's AWS identity as a hop credential: credentials from the AWS SDK's default chain,
/// or a role assumed through STS (AssumeRoleWithWebIdentity with an OIDC token, or AssumeRole with
/// the chain's credentials). They are kept where every kind keeps what it fetches — the sealed,
/// shared cache, with single flight and refresh ahead of expiry — and each request gets a
/// <see cref="AwsSigV4Signer"/> that signs it as it leaves.
/// </summary>
internal sealed partial class AwsSigV4Source : ICredentialSource
{
    /// <summary>Credentials without an expiry (an access key in the environment) are read from the
    /// chain again after this long, so a rotated key is picked up without a restart.</summary>
    private static readonly TimeSpan UndatedLifetime = TimeSpan.FromHours(1);

    /// <summary>One chain for the process, as the SDK's own clients share one: it walks the chain
    /// once and keeps what it found (refreshing credentials refresh themselves).</summary>
    private static readonly DefaultAWSCredentialsIdentityResolver Chain = new();

    private readonly AwsSigV4Options _options;
    private readonly TokenCache _cache;
    private readonly CredentialFingerprint _fingerprint;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;

    /// <summary>The identity as logs name it (role or default chain), never a key.</summary>
    private readonly string _identity;
    private LastSigner? _last;

    public AwsSigV4Source(AwsSigV4Options options, TokenCache cache, CredentialFingerprint fingerprint, TimeProvider time, ILogger logger)
    {
        _options = options;
        _cache = cache;
        _fingerprint = fingerprint;
        _time = time;
        _logger = logger;
        CacheKey = CacheKeyFor(options.Identity);
        _identity = options.Identity.ToString();
    }

    public string Name => _options.Name;

    public CredentialKind Kind => AwsSigV4Kind.Name;

    /// <summary>The header the signer writes; the injection point strips every spelling of the agent's.</summary>
    public string HeaderName => "Authorization";

    internal string CacheKey { get; }

    public async ValueTask<CredentialResult> GetAsync(CredentialRequest request, CancellationToken cancellationToken)
    {
        try
        {
            var (token, source) = await _cache.GetOrFetchAsync(CacheKey, agentId: null, _options.Timeout, this, static (s, ct) => s.FetchAsync(ct), cancellationToken);
            return CredentialResult.Success(new HopCredential(Name, Kind, HeaderName, HeaderValue: null, token.Fingerprint, source, token.ExpiresAt)
            {
                Signer = SignerFor(token),
            });
        }
        catch (CredentialFetchException ex)
        {
            return CredentialResult.Failure(new CredentialError(Name, ex.Message));
        }
    }

    public ValueTask<bool> InvalidateAsync(CredentialRequest request, HopCredential used, CancellationToken cancellationToken) =>
        _cache.InvalidateAsync(CacheKey, used.Fingerprint, cancellationToken);

    /// <summary>Everything that decides which credentials are fetched — not the region or service
    /// they sign for, so entries for two regions with one role share them.</summary>
    internal static string CacheKeyFor(AwsIdentity identity)
    {
        var material = string.Join('\n', [
            identity.RoleArn ?? "(default chain)",
            identity.WebIdentityToken?.ToString() ?? "",
            identity.RoleSessionName,
            identity.ExternalId ?? "",
            identity.SessionDuration.TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture),
            identity.StsEndpoint?.ToString() ?? ""]);
        return "agw:token:v1:aws:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(material)));
    }

    /// <summary>A signer per cached credentials, made once: the cache hands out the same instance
    /// until the credentials change, so a request parses nothing.</summary>
    private AwsSigV4Signer SignerFor(CachedToken token)
    {
        var last = Volatile.Read(ref _last);
        if (last is not null && ReferenceEquals(last.Token, token))
        {
            return last.Signer;
        }

        var signer = new AwsSigV4Signer(AwsKeys.Parse(token.AccessToken), _options.Region, _options.Service, _options.Payload, _options.MaxBodyBytes, _time);
        Volatile.Write(ref _last, new LastSigner(token, signer));
        return signer;
    }

    private async ValueTask<CachedToken> FetchAsync(CancellationToken cancellationToken)
    {
        var started = _time.GetTimestamp();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.Timeout);
        (AwsKeys Keys, DateTimeOffset? ExpiresAt) issued;
        try
        {
            issued = _options.Identity switch
            {
                { RoleArn: null } => await FromChainAsync(timeout.Token),
                { WebIdentityToken: { } webIdentity } => await WithWebIdentityAsync(webIdentity, timeout.Token),
                _ => await AssumeRoleAsync(timeout.Token),
            };
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            CredentialTelemetry.RecordTokenRequest(Name, _time.GetElapsedTime(started), succeeded: false);
            Log.CredentialsFailed(_logger, Name, _identity, "timed out");
            throw new CredentialFetchException($"the AWS credentials for credential '{Name}' were not obtained within {_options.Timeout.TotalSeconds:0.#} s");
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            CredentialTelemetry.RecordTokenRequest(Name, _time.GetElapsedTime(started), succeeded: false);
            // SDK messages can quote responses and list what the chain found; the agent and the
            // log get the failure's class and AWS's error code only.
            var reason = Reason(ex);
            Log.CredentialsFailed(_logger, Name, _identity, reason);
            throw new CredentialFetchException($"the AWS credentials for credential '{Name}' are unavailable ({reason})", ex);
        }

        var now = _time.GetUtcNow();
        var lifetime = (issued.ExpiresAt ?? now + UndatedLifetime) - now;
        if (lifetime <= TimeSpan.Zero)
        {
            Log.CredentialsFailed(_logger, Name, _identity, "expired credentials");
            throw new CredentialFetchException($"the AWS credentials for credential '{Name}' had already expired");
        }

        var token = CachedToken.Create(issued.Keys.Format(), now, lifetime, _options.RefreshBeforeExpiry, _fingerprint.Of(issued.Keys.SecretKey));
        var elapsed = _time.GetElapsedTime(started);
        CredentialTelemetry.RecordTokenRequest(Name, elapsed, succeeded: true);
        Log.CredentialsFetched(_logger, Name, _identity, token.Fingerprint, token.ExpiresAt, elapsed.TotalMilliseconds);
        return token;
    }

    private async Task<(AwsKeys, DateTimeOffset?)> FromChainAsync(CancellationToken cancellationToken)
    {
        var credentials = await Chain.ResolveIdentityAsync(null, cancellationToken);
        // Refreshing credentials (web identity, container, instance profile) are asked for ones
        // that outlive the broker's own refresh margin, or the cache would refetch at once.
        var keys = credentials is RefreshingAWSCredentials refreshing
            ? await refreshing.GetCredentialsAsync(_options.RefreshBeforeExpiry + TimeSpan.FromMinutes(1))
            : await credentials.GetCredentialsAsync();
        return (AwsKeys.From(keys.AccessKey, keys.SecretKey, keys.Token), Dated(credentials.Expiration));
    }

    private async Task<(AwsKeys, DateTimeOffset?)> WithWebIdentityAsync(SecretReference tokenReference, CancellationToken cancellationToken)
    {
        if (!SecretResolver.TryResolve(tokenReference, out var token, out var error))
        {
            throw new InvalidOperationException(error);
        }

        // The call is authenticated by the token alone: no AWS credentials sign it.
        using var sts = new AmazonSecurityTokenServiceClient(new AnonymousAWSCredentials(), StsConfig());
        var response = await sts.AssumeRoleWithWebIdentityAsync(
            new AssumeRoleWithWebIdentityRequest
            {
                RoleArn = _options.Identity.RoleArn,
                RoleSessionName = _options.Identity.RoleSessionName,
                WebIdentityToken = token!.Reveal(),
                DurationSeconds = (int)_options.Identity.SessionDuration.TotalSeconds,
            },
            cancellationToken);
        return Issued(response.Credentials);
    }

    private async Task<(AwsKeys, DateTimeOffset?)> AssumeRoleAsync(CancellationToken cancellationToken)
    {
        var caller = await Chain.ResolveIdentityAsync(null, cancellationToken);
        using var sts = new AmazonSecurityTokenServiceClient(caller, StsConfig());
        var response = await sts.AssumeRoleAsync(
            new AssumeRoleRequest
            {
                RoleArn = _options.Identity.RoleArn,
                RoleSessionName = _options.Identity.RoleSessionName,
                ExternalId = _options.Identity.ExternalId,
                DurationSeconds = (int)_options.Identity.SessionDuration.TotalSeconds,
            },
            cancellationToken);
        return Issued(response.Credentials);
    }

    private AmazonSecurityTokenServiceConfig StsConfig()
    {
        // The broker bounds the wait and retries on the next request; SDK retries would only
        // stretch a failing request past its timeout.
        var config = new AmazonSecurityTokenServiceConfig { MaxErrorRetry = 0, Timeout = _options.Timeout };
        if (_options.Identity.StsEndpoint is { } endpoint)
        {
            config.ServiceURL = endpoint.ToString();
            config.AuthenticationRegion = _options.Region;
        }
        else
        {
            config.RegionEndpoint = RegionEndpoint.GetBySystemName(_options.Region);
        }

        return config;
    }

    private static (AwsKeys, DateTimeOffset?) Issued(Amazon.SecurityToken.Model.Credentials? credentials)
    {
        if (credentials is null || string.IsNullOrEmpty(credentials.AccessKeyId) || string.IsNullOrEmpty(credentials.SecretAccessKey))
        {
            throw new InvalidOperationException("STS answered without credentials");
        }

        return (AwsKeys.From(credentials.AccessKeyId, credentials.SecretAccessKey, credentials.SessionToken), Dated(credentials.Expiration));
    }

    private static DateTimeOffset? Dated(DateTime? expiration) => expiration switch
    {
        null => null,
        { Kind: DateTimeKind.Local } local => new DateTimeOffset(local.ToUniversalTime(), TimeSpan.Zero),
        { } utc => new DateTimeOffset(DateTime.SpecifyKind(utc, DateTimeKind.Utc), TimeSpan.Zero),
    };

    /// <summary>The failure's class, with AWS's error code when it gave one (a fixed word such as
    /// <c>AccessDenied</c> or <c>InvalidIdentityToken</c>, never a message).</summary>
    private static string Reason(Exception ex) =>
        ex is AmazonServiceException { ErrorCode: { } code } && ErrorCodePattern().IsMatch(code) ? $"{ex.GetType().Name}: {code}" : ex.GetType().Name;

    [GeneratedRegex(@"^[A-Za-z][A-Za-z0-9.]{0,63}\z", RegexOptions.CultureInvariant)]
    private static partial Regex ErrorCodePattern();

    private sealed record LastSigner(CachedToken Token, AwsSigV4Signer Signer);

    private static partial class Log
    {
        [LoggerMessage(EventId = 1601, Level = LogLevel.Information, Message = "Obtained AWS credentials for credential {CredentialName} from {AwsIdentity}: {CredentialFingerprint}, expire {CredentialExpiresAt:O}, in {DurationMs:0.0} ms")]
        public static partial void CredentialsFetched(ILogger logger, string credentialName, string awsIdentity, string credentialFingerprint, DateTimeOffset credentialExpiresAt, double durationMs);

        [LoggerMessage(EventId = 1602, Level = LogLevel.Warning, Message = "AWS credentials for credential {CredentialName} from {AwsIdentity} could not be obtained: {Reason}")]
        public static partial void CredentialsFailed(ILogger logger, string credentialName, string awsIdentity, string reason);
    }
}

/// <summary>One set of AWS credentials, as the cache keeps them (sealed when shared). Never printed.</summary>
internal sealed record AwsKeys(string AccessKeyId, string SecretKey, string? SessionToken)
{
    public static AwsKeys From(string accessKeyId, string secretKey, string? sessionToken)
    {
        // One per line in the cached form: none of them may hold a line break.
        if (accessKeyId.Contains('\n', StringComparison.Ordinal) || secretKey.Contains('\n', StringComparison.Ordinal) || sessionToken?.Contains('\n', StringComparison.Ordinal) == true)
        {
            throw new InvalidOperationException("AWS credentials with a line break");
        }

        return new AwsKeys(accessKeyId, secretKey, string.IsNullOrEmpty(sessionToken) ? null : sessionToken);
    }

    public static AwsKeys Parse(string text)
    {
        var parts = text.Split('\n');
        return parts.Length == 3 ? new AwsKeys(parts[0], parts[1], parts[2].Length == 0 ? null : parts[2]) : throw new FormatException("not cached AWS credentials");
    }

    public string Format() => $"{AccessKeyId}\n{SecretKey}\n{SessionToken}";

    public override string ToString() => "[AWS credentials]";
}
