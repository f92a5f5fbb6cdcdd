using System.Collections.Concurrent;
using System.Text.Json;
using AgentGateway.Credentials.Caching;
using AgentGateway.Proxy.Configuration;
using AgentGateway.Proxy.Telemetry;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using AgentGateway.Proxy.Replicas;

namespace AgentGateway.Proxy.Inventory;

/// <summary>An agent's revocation: when, by whom, why.</summary>
public sealed record Revocation(string AgentId, DateTimeOffset At, string By, string? Reason);

/// <summary>
/// Which agents are revoked, on every replica. With Redis, a revocation is written to a hash
/// (durable across gateway restarts) and announced on a channel, so every replica applies it
/// at once; each replica also re-reads the whole hash every few seconds, so a missed message is
/// corrected quickly. Without Redis, revocations are kept in this process and, when
/// <c>Gateway:Admin:RevocationsFile</c> is set, appended to that file and read back at start.
/// Applying a revocation also purges the tokens cached for the agent alone.
/// </summary>
public sealed partial class RevocationStore : IHostedService, IDisposable
{
    private const string HashKey = "agw:revocations";
    private const string Channel = "agw:revocations";
    private static readonly TimeSpan ReconcileInterval = TimeSpan.FromSeconds(3);

    private readonly ConcurrentDictionary<string, Revocation> _revoked = new(StringComparer.OrdinalIgnoreCase);
    private readonly IReplicaBus? _redis;
    private readonly string? _file;
    private readonly AgentTokenIndex _agentTokens;
    private readonly TimeProvider _time;
    private readonly ILogger<RevocationStore> _logger;
    private ITimer? _reconcile;

    public RevocationStore(IServiceProvider services, ProcessSettings process, AgentTokenIndex agentTokens, TimeProvider time, ILogger<RevocationStore> logger)
    {
        _redis = services.GetService<IReplicaBus>();
        _file = process.RevocationsFile;
        _agentTokens = agentTokens;
        _time = time;
        _logger = logger;
    }

    public IReadOnlyCollection<Revocation> All => [.. _revoked.Values];

    /// <summary>Raised once per revocation on this replica, when it takes effect here (announced,
    /// reconciled or made here), so that open long-lived connections can be ended.</summary>
    public event Action<Revocation>? Applied;

    /// <summary>The revocation id of one instance of an agent class.</summary>
    public static string InstanceKey(string agentId, string instance) => agentId + "/" + instance;

    public bool TryGet(string agentId, out Revocation? revocation) => _revoked.TryGetValue(agentId, out revocation);

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (_redis is not null)
        {
            await _redis.SubscribeAsync(Channel, OnAnnounced);
            await ReconcileAsync();
            _reconcile = _time.CreateTimer(_ => _ = ReconcileAsync(), null, ReconcileInterval, ReconcileInterval);
        }
        else if (_file is not null && File.Exists(_file))
        {
            foreach (var line in await File.ReadAllLinesAsync(_file, cancellationToken))
            {
                if (Parse(line) is { } revocation)
                {
                    _revoked[revocation.AgentId] = revocation;
                }
            }
        }

        if (_redis is null && _file is null)
        {
            Log.NotDurable(_logger);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _reconcile?.Dispose();
        return Task.CompletedTask;
    }

    /// <summary>Revokes <paramref name="agentId"/> everywhere, from now on.</summary>
    public async Task<Revocation> RevokeAsync(string agentId, string by, string? reason, CancellationToken cancellationToken)
    {
        var revocation = new Revocation(agentId, _time.GetUtcNow(), by, reason);
        var json = JsonSerializer.Serialize(revocation, RevocationJsonContext.Default.Revocation);
        if (_redis is not null)
        {
            // Written before it is announced: a replica that hears of it can read it.
            await _redis.SetAsync(HashKey, agentId, json);
            await _redis.PublishAsync(Channel, agentId);
        }
        else if (_file is not null)
        {
            await File.AppendAllTextAsync(_file, json + "\n", cancellationToken);
        }

        await ApplyAsync(revocation);
        return revocation;
    }

    public void Dispose() => _reconcile?.Dispose();

    private void OnAnnounced(string agentId) => _ = OnAnnouncedAsync(agentId);

    private async Task OnAnnouncedAsync(string agentId)
    {
        try
        {
            if (await _redis!.GetAsync(HashKey, agentId) is { } json && Parse(json) is { } revocation)
            {
                await ApplyAsync(revocation);
            }
        }
        catch (Exception ex) when (_redis!.IsUnavailable(ex))
        {
            Log.ReadFailed(_logger, ex.GetType().Name);
        }
    }

    private async Task ReconcileAsync()
    {
        try
        {
            foreach (var (agentId, json) in await _redis!.GetAllAsync(HashKey))
            {
                if (!_revoked.ContainsKey(agentId) && Parse(json) is { } revocation)
                {
                    await ApplyAsync(revocation);
                }
            }
        }
        catch (Exception ex) when (_redis!.IsUnavailable(ex))
        {
            Log.ReadFailed(_logger, ex.GetType().Name);
        }
    }

    private async Task ApplyAsync(Revocation revocation)
    {
        if (!_revoked.TryAdd(revocation.AgentId, revocation))
        {
            return;
        }

        GatewayTelemetry.Revocations.Add(1);
        Log.Revoked(_logger, revocation.AgentId, revocation.By, revocation.Reason ?? "");
        Applied?.Invoke(revocation);
        // Every replica applies every revocation and purges what it cached itself, under any
        // revision: from its own memory, and the shared entries it wrote or read.
        await _agentTokens.ForgetAgentAsync(revocation.AgentId, CancellationToken.None);
    }

    private static Revocation? Parse(string json)
    {
        try
        {
            return JsonSerializer.Deserialize(json, RevocationJsonContext.Default.Revocation);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 2701, Level = LogLevel.Warning, Message = "Agent {AgentId} revoked by {RevokedBy} ({Reason}); every request from it is refused and its cached tokens are purged")]
        public static partial void Revoked(ILogger logger, string agentId, string revokedBy, string reason);

        [LoggerMessage(EventId = 2702, Level = LogLevel.Warning, Message = "Revocations could not be read from Redis ({Reason}); those already known stay in force")]
        public static partial void ReadFailed(ILogger logger, string reason);

        [LoggerMessage(EventId = 2703, Level = LogLevel.Warning, Message = "Revocations are kept in memory only: set Gateway:Redis or Gateway:Admin:RevocationsFile so they survive a restart")]
        public static partial void NotDurable(ILogger logger);
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(Revocation))]
internal sealed partial class RevocationJsonContext : System.Text.Json.Serialization.JsonSerializerContext;
