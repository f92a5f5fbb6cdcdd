using System.Collections.Concurrent;
using System.Collections.Frozen;
using System.Text.Json;
using System.Text.Json.Serialization;
using AgentGateway.Credentials.Caching;
using AgentGateway.Proxy.Configuration;
using AgentGateway.Proxy.Identity;
using AgentGateway.Proxy.Policy;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using AgentGateway.Proxy.Replicas;

namespace AgentGateway.Proxy.Inventory;

/// <summary>An identity of an ephemeral agent: an issuer's name and the agent claim's value.</summary>
public sealed record EphemeralIdentity(string Issuer, string Subject);

/// <summary>An agent registered just in time through the admin API, from a template, for a time to live.</summary>
public sealed record EphemeralAgent(
    string Id,
    string Owner,
    string? Description,
    string Template,
    IReadOnlyList<string> Grants,
    IReadOnlyList<EphemeralIdentity> Identities,
    DateTimeOffset CreatedAt,
    DateTimeOffset ExpiresAt,
    string CreatedBy);

/// <summary>
/// Ephemeral agents, on every replica: registered in a Redis hash and announced on a channel (and
/// re-read every few seconds), or kept in process without Redis. An agent is refused the moment
/// its time to live ends (its expiry is checked on every request), and at that moment each
/// replica purges the tokens it cached for it and forgets it.
/// </summary>
public sealed partial class EphemeralAgentStore : IHostedService, IDisposable
{
    private const string HashKey = "agw:ephemeral";
    private const string Channel = "agw:ephemeral";
    private static readonly TimeSpan ReconcileInterval = TimeSpan.FromSeconds(3);

    private readonly ConcurrentDictionary<string, Registered> _byId = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentDictionary<AgentIdentityKey, string> _byIdentity = new();
    private readonly IReplicaBus? _redis;
    private readonly GatewayConfigProvider _config;
    private readonly AgentTokenIndex _agentTokens;
    private readonly TimeProvider _time;
    private readonly ILogger<EphemeralAgentStore> _logger;
    private ITimer? _reconcile;

    public EphemeralAgentStore(IServiceProvider services, GatewayConfigProvider config, AgentTokenIndex agentTokens, TimeProvider time, ILogger<EphemeralAgentStore> logger)
    {
        _redis = services.GetService<IReplicaBus>();
        _config = config;
        _agentTokens = agentTokens;
        _time = time;
        _logger = logger;
    }

    public IReadOnlyCollection<EphemeralAgent> All => [.. _byId.Values.Select(r => r.Agent).Where(a => a.ExpiresAt > _time.GetUtcNow())];

    public bool TryGet(string id, out EphemeralAgent? agent)
    {
        agent = _byId.TryGetValue(id, out var registered) ? registered.Agent : null;
        return agent is not null;
    }

    /// <summary>The ephemeral agent an identity belongs to, compiled against <paramref name="revision"/>'s grants.</summary>
    public bool TryResolve(GatewayRevision revision, AgentIdentityKey identity, out Agent? agent)
    {
        agent = null;
        if (!_byIdentity.TryGetValue(identity, out var id) || !_byId.TryGetValue(id, out var registered))
        {
            return false;
        }

        agent = registered.For(revision);
        return true;
    }

    /// <summary>The ephemeral agent <paramref name="id"/>, compiled against <paramref name="revision"/>'s grants.</summary>
    public bool TryResolve(GatewayRevision revision, string id, out Agent? agent)
    {
        agent = _byId.TryGetValue(id, out var registered) ? registered.For(revision) : null;
        return agent is not null;
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (_redis is null)
        {
            return;
        }

        await _redis.SubscribeAsync(Channel, id => _ = LoadAsync(id));
        await ReconcileAsync();
        _reconcile = _time.CreateTimer(_ => _ = ReconcileAsync(), null, ReconcileInterval, ReconcileInterval);
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _reconcile?.Dispose();
        return Task.CompletedTask;
    }

    public void Dispose()
    {
        _reconcile?.Dispose();
        foreach (var registered in _byId.Values)
        {
            registered.Expiry?.Dispose();
        }
    }

    /// <summary>Registers <paramref name="agent"/> on every replica.</summary>
    public async Task RegisterAsync(EphemeralAgent agent)
    {
        if (_redis is not null)
        {
            await _redis.SetAsync(HashKey, agent.Id, JsonSerializer.Serialize(agent, EphemeralJsonContext.Default.EphemeralAgent));
            await _redis.PublishAsync(Channel, agent.Id);
        }

        Apply(agent);
    }

    /// <summary>Whether an identity is already taken by an ephemeral agent.</summary>
    public bool Owns(AgentIdentityKey identity) => _byIdentity.ContainsKey(identity);

    private async Task LoadAsync(string id)
    {
        try
        {
            if (await _redis!.GetAsync(HashKey, id) is { } json && Parse(json) is { } agent)
            {
                Apply(agent);
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
            foreach (var (_, json) in await _redis!.GetAllAsync(HashKey))
            {
                if (Parse(json) is not { } agent)
                {
                    continue;
                }

                if (agent.ExpiresAt <= _time.GetUtcNow() - TimeSpan.FromMinutes(5))
                {
                    // Long expired: nobody needs the record any more.
                    await _redis.DeleteAsync(HashKey, agent.Id);
                }
                else if (!_byId.ContainsKey(agent.Id))
                {
                    Apply(agent);
                }
            }
        }
        catch (Exception ex) when (_redis!.IsUnavailable(ex))
        {
            Log.ReadFailed(_logger, ex.GetType().Name);
        }
    }

    private void Apply(EphemeralAgent agent)
    {
        var remaining = agent.ExpiresAt - _time.GetUtcNow();
        if (remaining <= TimeSpan.Zero || _byId.ContainsKey(agent.Id))
        {
            return;
        }

        var registered = new Registered(agent);
        if (!_byId.TryAdd(agent.Id, registered))
        {
            return;
        }

        foreach (var identity in agent.Identities)
        {
            _byIdentity[new AgentIdentityKey(identity.Issuer, identity.Subject)] = agent.Id;
        }

        registered.Expiry = _time.CreateTimer(_ => _ = ExpireAsync(agent.Id), null, remaining, Timeout.InfiniteTimeSpan);
        Log.Registered(_logger, agent.Id, agent.Template, agent.ExpiresAt);
    }

    private async Task ExpireAsync(string id)
    {
        if (!_byId.TryRemove(id, out var registered))
        {
            return;
        }

        registered.Expiry?.Dispose();
        foreach (var identity in registered.Agent.Identities)
        {
            _byIdentity.TryRemove(new AgentIdentityKey(identity.Issuer, identity.Subject), out _);
        }

        // Its permissions end with it, and so do the tokens cached for it alone (under any revision).
        await _agentTokens.ForgetAgentAsync(id, CancellationToken.None);

        Log.Expired(_logger, id);
    }

    private static EphemeralAgent? Parse(string json)
    {
        try
        {
            return JsonSerializer.Deserialize(json, EphemeralJsonContext.Default.EphemeralAgent);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>An ephemeral agent and its compiled form for the serving revision.</summary>
    private sealed class Registered(EphemeralAgent agent)
    {
        private (long Revision, Agent Agent)? _compiled;

        public EphemeralAgent Agent { get; } = agent;

        public ITimer? Expiry { get; set; }

        public Agent For(GatewayRevision revision)
        {
            if (_compiled is { } compiled && compiled.Revision == revision.Number)
            {
                return compiled.Agent;
            }

            // A grant removed by a reload is simply gone.
            var grants = Agent.Grants.Select(name => revision.Grants.GetValueOrDefault(name)).OfType<Grant>();
            var result = Identity.Agent.Create(Agent.Id, Agent.Owner, Agent.Description, Agent.ExpiresAt, Agent.Grants, grants) with
            {
                Identities = [.. Agent.Identities.Select(i => new AgentIdentityKey(i.Issuer, i.Subject))],
            };
            _compiled = (revision.Number, result);
            return result;
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 2901, Level = LogLevel.Information, Message = "Ephemeral agent {AgentId} registered from template {Template}, until {ExpiresAt:O}")]
        public static partial void Registered(ILogger logger, string agentId, string template, DateTimeOffset expiresAt);

        [LoggerMessage(EventId = 2902, Level = LogLevel.Information, Message = "Ephemeral agent {AgentId} expired: refused from now on, its cached tokens purged")]
        public static partial void Expired(ILogger logger, string agentId);

        [LoggerMessage(EventId = 2903, Level = LogLevel.Warning, Message = "Ephemeral agents could not be read from Redis ({Reason})")]
        public static partial void ReadFailed(ILogger logger, string reason);
    }
}

/// <summary>Resolves a proven identity to an agent: configured agents, agent classes, then ephemeral agents.</summary>
public sealed class AgentResolver(EphemeralAgentStore ephemeral)
{
    public bool TryResolve(GatewayRevision revision, AgentIdentityKey identity, out Agent? agent, out string? instance)
    {
        if (revision.Agents.TryResolve(identity, out agent, out instance))
        {
            return true;
        }

        instance = null;
        return ephemeral.TryResolve(revision, identity, out agent);
    }

    /// <summary>The agent <paramref name="id"/> as <paramref name="revision"/> has it (configured,
    /// a class, or ephemeral), e.g. to decide an open session again after a reload.</summary>
    public bool TryGet(GatewayRevision revision, string id, out Agent? agent) =>
        revision.Agents.TryGet(id, out agent) || ephemeral.TryResolve(revision, id, out agent);
}

[JsonSerializable(typeof(EphemeralAgent))]
internal sealed partial class EphemeralJsonContext : JsonSerializerContext;
