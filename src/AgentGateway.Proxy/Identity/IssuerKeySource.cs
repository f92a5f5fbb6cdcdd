using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.Protocols;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;

namespace AgentGateway.Proxy.Identity;

/// <summary>
/// The keys of one issuer, fetched from its JWKS or discovery document. Written here rather than
/// taken from the identity library's <c>ConfigurationManager</c> because the gateway needs three
/// promises that one does not make:
/// <list type="bullet">
/// <item>A refresh asked for by a token naming an unknown <c>kid</c> is <em>awaited</em> by that
/// request, so the first token signed with a rotated key is accepted (the library refreshes in
/// the background and refuses it).</item>
/// <item>Such refreshes happen at most once per <c>KeyRefreshInterval</c>, and concurrent asks share
/// one fetch: a flood of made-up kids costs one request to the issuer.</item>
/// <item>A failed fetch never replaces good keys: an issuer whose endpoint answers garbage keeps
/// being validated with its last good key set, and the failure is logged.</item>
/// </list>
/// With no key set yet (endpoint down at start), fetches are retried at most once a second, and
/// every request in between fails fast rather than waiting on a dead endpoint.
/// </summary>
public sealed partial class IssuerKeySource : IConfigurationManager<OpenIdConnectConfiguration>
{
    /// <summary>Scheduled refresh, even with no unknown kid: keys removed by the issuer stop being trusted.</summary>
    public static readonly TimeSpan AutomaticRefreshInterval = TimeSpan.FromHours(1);

    private static readonly TimeSpan BootstrapRetry = TimeSpan.FromSeconds(1);

    private readonly string _address;
    private readonly IConfigurationRetriever<OpenIdConnectConfiguration> _retriever;
    private readonly IDocumentRetriever _documents;
    private readonly TimeSpan _refreshInterval;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();

    private OpenIdConnectConfiguration? _current;
    private DateTimeOffset _nextScheduled;
    private DateTimeOffset _nextBootstrap;
    private DateTimeOffset _nextDemandAllowed;
    private bool _demanded;
    private Task? _inFlight;

    public IssuerKeySource(
        string address,
        IConfigurationRetriever<OpenIdConnectConfiguration> retriever,
        IDocumentRetriever documents,
        TimeSpan refreshInterval,
        TimeProvider time,
        ILogger logger)
    {
        _address = address;
        _retriever = retriever;
        _documents = documents;
        _refreshInterval = refreshInterval;
        _time = time;
        _logger = logger;
    }

    public async Task<OpenIdConnectConfiguration> GetConfigurationAsync(CancellationToken cancel)
    {
        Task? wait = null;
        lock (_gate)
        {
            var now = _time.GetUtcNow();
            if (_current is null)
            {
                if (_inFlight is null && now < _nextBootstrap)
                {
                    throw new IssuerKeysUnavailableException(_address);
                }

                wait = StartFetch();
            }
            else if (_demanded)
            {
                _demanded = false;
                wait = StartFetch();
            }
            else if (now >= _nextScheduled)
            {
                // Good keys in hand: the scheduled refresh must not hold this request up.
                StartFetch();
            }
        }

        if (wait is not null)
        {
            await wait.WaitAsync(cancel);
        }

        return Volatile.Read(ref _current) ?? throw new IssuerKeysUnavailableException(_address);
    }

    /// <summary>A token named a key not in the set. Honoured at most once per refresh interval;
    /// the next <see cref="GetConfigurationAsync"/> then waits for the new set.</summary>
    public void RequestRefresh()
    {
        lock (_gate)
        {
            var now = _time.GetUtcNow();
            if (now >= _nextDemandAllowed)
            {
                _nextDemandAllowed = now + _refreshInterval;
                _demanded = true;
            }
        }
    }

    private Task StartFetch() => _inFlight ??= Task.Run(FetchAsync);

    private async Task FetchAsync()
    {
        try
        {
            var fetched = await _retriever.GetConfigurationAsync(_address, _documents, CancellationToken.None);
            lock (_gate)
            {
                Volatile.Write(ref _current, fetched);
                _nextScheduled = _time.GetUtcNow() + AutomaticRefreshInterval;
            }
        }
        catch (Exception ex)
        {
            lock (_gate)
            {
                var now = _time.GetUtcNow();
                _nextBootstrap = now + BootstrapRetry;
                // Keep the last good keys; look again at the next scheduled or demanded refresh.
                _nextScheduled = now + _refreshInterval;
            }

            Log.FetchFailed(_logger, _address, ex.GetType().Name, _current is not null);
        }
        finally
        {
            lock (_gate)
            {
                _inFlight = null;
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1210, Level = LogLevel.Warning, Message = "Fetching issuer keys from {Address} failed ({ErrorType}); still using the last good keys: {KeptLastGood}")]
        public static partial void FetchFailed(ILogger logger, string address, string errorType, bool keptLastGood);
    }
}

/// <summary>An issuer's keys have never been obtained; its tokens cannot be checked yet.</summary>
public sealed class IssuerKeysUnavailableException(string address)
    : InvalidOperationException($"The keys published at {address} have not been obtained yet.");
