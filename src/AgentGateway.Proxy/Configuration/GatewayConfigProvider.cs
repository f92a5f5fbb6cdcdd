using AgentGateway.Configuration;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Primitives;
using Yarp.ReverseProxy.Configuration;

namespace AgentGateway.Proxy.Configuration;

/// <summary>What an operator wants to know about the configuration right now.</summary>
/// <param name="Revision">The revision serving traffic.</param>
/// <param name="LoadedAt">When it was loaded.</param>
/// <param name="LastReloadFailedAt">When a reload was last refused, if ever since the serving revision loaded.</param>
/// <param name="LastReloadProblems">Why it was refused.</param>
public sealed record ConfigStatus(long Revision, DateTimeOffset LoadedAt, DateTimeOffset? LastReloadFailedAt, IReadOnlyList<ConfigProblem> LastReloadProblems);

/// <summary>
/// Serves the current <see cref="GatewayRevision"/> to the gateway and its routes and clusters to
/// YARP. The first load must succeed or the process does not start; a reload that fails is
/// refused, logged with every problem, and the last good revision keeps serving.
/// </summary>
public sealed partial class GatewayConfigProvider : IProxyConfigProvider, IDisposable
{
    private readonly PublishedRoutes _published;
    private readonly IConfiguration _configuration;
    private readonly GatewayConfigLoader _loader;
    private readonly ILogger<GatewayConfigProvider> _logger;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _reloadGate = new(1, 1);
    private IDisposable? _reloadSubscription;
    private State? _state;
    private ConfigStatus? _status;

    public GatewayConfigProvider(IConfiguration configuration, GatewayConfigLoader loader, ILogger<GatewayConfigProvider> logger, TimeProvider time, PublishedRoutes published)
    {
        _published = published;
        _configuration = configuration;
        _loader = loader;
        _logger = logger;
        _time = time;
    }

    public GatewayRevision Current => (_state ?? throw NotLoaded()).Revision;

    public ConfigStatus Status => _status ?? throw NotLoaded();

    /// <summary>Loads the first revision; throws <see cref="InvalidGatewayConfigurationException"/> listing every problem.</summary>
    public async Task InitializeAsync(CancellationToken cancellationToken)
    {
        var result = await _loader.LoadAsync(_configuration, 1, cancellationToken);
        if (!result.Succeeded)
        {
            throw new InvalidGatewayConfigurationException(result.Problems);
        }

        Publish(result.Revision!);
        _reloadSubscription = ChangeToken.OnChange(_configuration.GetReloadToken, () => _ = ReloadAsync());
    }

    public IProxyConfig GetConfig() => _state ?? throw NotLoaded();

    /// <summary>Loads the configuration again; returns whether the new revision now serves.</summary>
    public async Task<bool> ReloadAsync()
    {
        await _reloadGate.WaitAsync();
        try
        {
            var current = Current;
            var result = await _loader.LoadAsync(_configuration, current.Number + 1, CancellationToken.None);
            IReadOnlyList<ConfigProblem> problems = result.Succeeded ? NeedRestart(result.Revision!, current) : result.Problems;

            if (problems.Count > 0)
            {
                // Logged before the status says so: whoever sees the refusal there finds it in the log.
                Log.ReloadRefused(_logger, current.Number, problems.Count, string.Join("; ", problems));
                _status = Status with { LastReloadFailedAt = _time.GetUtcNow(), LastReloadProblems = problems };
                return false;
            }

            Publish(result.Revision!);
            return true;
        }
        catch (Exception ex)
        {
            // A reload must never take the gateway down: keep serving what works.
            Log.ReloadFailed(_logger, ex);
            return false;
        }
        finally
        {
            _reloadGate.Release();
        }
    }

    public void Dispose()
    {
        _reloadSubscription?.Dispose();
        _reloadGate.Dispose();
        _state?.Dispose();
    }

    private void Publish(GatewayRevision revision)
    {
        var previous = _state;
        _state = new State(revision, _published);
        // YARP reads the new routes from the state as it is told, and builds each of them again
        // from this revision (its transforms holding what the revision compiled) within this call.
        // Only then does the revision count as serving: from when the status says so, requests
        // are routed, and so decided, by it.
        previous?.SignalChange();
        _status = new ConfigStatus(revision.Number, revision.LoadedAt, null, []);
        Log.RevisionServing(_logger, revision.Number, revision.Routes.Count, revision.Agents.All.Count);
        if (revision.Inbound.StaticKeyHeader is not null)
        {
            var weak = string.Join(", ", revision.Agents.All.Where(a => a.Identities.Any(i => i.Issuer == Identity.StaticKeys.Issuer)).Select(a => a.Id));
            Log.StaticKeysEnabled(_logger, revision.Number, weak);
        }
    }

    /// <summary>What the process started with and a revision cannot change: each such setting the
    /// new revision changes, by path. The reload is then refused whole, as for any problem.</summary>
    private static List<ConfigProblem> NeedRestart(GatewayRevision next, GatewayRevision current)
    {
        var problems = next.Process.ChangesFrom(current.Process).ToList();
        if (!next.Databases.SameListeners(current.Databases))
        {
            problems.Add(new ConfigProblem("Gateway:Databases", "adding, removing or moving a database listener needs a restart; the running listeners are kept"));
        }

        return problems;
    }

    private static InvalidOperationException NotLoaded() => new("The gateway configuration has not been loaded; call InitializeAsync first.");

    private sealed class State : IProxyConfig, IDisposable
    {
        private readonly CancellationTokenSource _changed = new();

        public State(GatewayRevision revision, PublishedRoutes published)
        {
            Revision = revision;
            Routes = published.Publish(revision);
        }

        public GatewayRevision Revision { get; }

        public IReadOnlyList<RouteConfig> Routes { get; }

        public IReadOnlyList<ClusterConfig> Clusters => Revision.Clusters;

        public IChangeToken ChangeToken => new CancellationChangeToken(_changed.Token);

        public string RevisionId => Revision.Number.ToString(System.Globalization.CultureInfo.InvariantCulture);

        public void SignalChange() => _changed.Cancel();

        public void Dispose() => _changed.Dispose();
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "Configuration revision {ConfigRevision} is serving: {RouteCount} routes, {AgentCount} agents")]
        public static partial void RevisionServing(ILogger logger, long configRevision, int routeCount, int agentCount);

        [LoggerMessage(EventId = 1002, Level = LogLevel.Error, Message = "Configuration reload refused; revision {ConfigRevision} keeps serving. {ProblemCount} problem(s): {Problems}")]
        public static partial void ReloadRefused(ILogger logger, long configRevision, int problemCount, string problems);

        [LoggerMessage(EventId = 1003, Level = LogLevel.Error, Message = "Configuration reload failed unexpectedly; the current revision keeps serving")]
        public static partial void ReloadFailed(ILogger logger, Exception exception);

        [LoggerMessage(EventId = 2004, Level = LogLevel.Warning, Message = "STATIC API KEYS ARE ENABLED (revision {ConfigRevision}). They never expire and prove nothing about who holds them: use them for development only. Weak agents: {WeakAgents}")]
        public static partial void StaticKeysEnabled(ILogger logger, long configRevision, string weakAgents);
    }
}
