using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Security.Authentication;
using System.Security.Cryptography;
using AgentGateway.Proxy.Telemetry;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using AgentGateway.Proxy.Replicas;

namespace AgentGateway.Proxy.Database;

/// <summary>
/// The backend keys the gateway hands its agents instead of the server's, and the CancelRequests
/// that name them. A driver sends a CancelRequest on a new connection, which a load balancer may
/// give to any replica. A key this replica does not hold is passed to the others over Redis (when
/// the gateway has one); the replica holding the session compares the secret in constant time and
/// only then sends the server its real key. A key is honoured by exactly the replica that issued
/// it, so an agent can still cancel only its own sessions' queries.
/// </summary>
/// <remarks>
/// The key crosses Redis as the revocations and ephemeral agents do: Redis is trusted not to
/// forge messages (a forged revocation does more harm than a forged cancel), and the key is worth
/// nothing once its session ends. Nothing else about the session is published.
/// </remarks>
public sealed partial class CancelKeys : IHostedService
{
    private const string Channel = "agw:pg-cancel";

    private readonly ConcurrentDictionary<int, PostgresSession> _byKey = new();
    private readonly IReplicaBus? _redis;
    private readonly ILogger<CancelKeys> _logger;

    public CancelKeys(IServiceProvider services, ILogger<CancelKeys> logger)
    {
        _redis = services.GetService<IReplicaBus>();
        _logger = logger;
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (_redis is not null)
        {
            await _redis.SubscribeAsync(Channel, message => _ = OnRelayedAsync(message));
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>A fresh key: random, positive like a process id, unused on this replica. Another
    /// replica may hold the same process id (one in 2^31); its secret still has to match.</summary>
    public (int ProcessId, int Secret) NewKey()
    {
        while (true)
        {
            var processId = RandomNumberGenerator.GetInt32(1, int.MaxValue);
            if (!_byKey.ContainsKey(processId))
            {
                return (processId, BinaryPrimitives.ReadInt32BigEndian(RandomNumberGenerator.GetBytes(4)));
            }
        }
    }

    internal void Add(PostgresSession session) => _byKey[session.AgentKey.ProcessId] = session;

    internal void Remove(PostgresSession session) => _byKey.TryRemove(new KeyValuePair<int, PostgresSession>(session.AgentKey.ProcessId, session));

    /// <summary>A CancelRequest an agent sent to this replica.</summary>
    public async Task CancelAsync(int processId, int secret)
    {
        if (_byKey.ContainsKey(processId))
        {
            await CancelHereAsync(processId, secret);
            return;
        }

        if (_redis is null)
        {
            Refused();
            return;
        }

        var message = new byte[8];
        BinaryPrimitives.WriteInt32BigEndian(message, processId);
        BinaryPrimitives.WriteInt32BigEndian(message.AsSpan(4), secret);
        try
        {
            await _redis.PublishAsync(Channel, message);
            GatewayTelemetry.DatabaseDecisions.Add(1, new KeyValuePair<string, object?>(GatewayTelemetry.Tags.Decision, "cancel-relayed"));
            Log.Relayed(_logger);
        }
        catch (Exception ex) when (_redis.IsUnavailable(ex))
        {
            Log.RelayFailed(_logger, ex.GetType().Name);
        }
    }

    private async Task OnRelayedAsync(byte[]? message)
    {
        // Every replica hears every relayed request, this one included: only the holder answers.
        if (message is not { Length: 8 } bytes)
        {
            return;
        }

        var processId = BinaryPrimitives.ReadInt32BigEndian(bytes);
        if (_byKey.ContainsKey(processId))
        {
            await CancelHereAsync(processId, BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(4)));
        }
    }

    private async Task CancelHereAsync(int processId, int secret)
    {
        Span<byte> expected = stackalloc byte[4];
        Span<byte> presented = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(presented, secret);
        if (_byKey.TryGetValue(processId, out var session))
        {
            BinaryPrimitives.WriteInt32BigEndian(expected, session.AgentKey.Secret);
        }

        if (session is null || !CryptographicOperations.FixedTimeEquals(expected, presented))
        {
            Refused();
            return;
        }

        GatewayTelemetry.DatabaseDecisions.Add(1, new(GatewayTelemetry.Tags.Decision, "cancel"), new(GatewayTelemetry.Tags.DatabaseName, session.Entry.Name));
        try
        {
            using var timeout = new CancellationTokenSource(session.Entry.Upstream.ConnectTimeout);
            await session.CancelQueryAsync(timeout.Token);
        }
        catch (Exception ex) when (ex is IOException or System.Net.Sockets.SocketException or OperationCanceledException or AuthenticationException)
        {
            Log.CancelFailed(_logger, session.Entry.Name, ex.GetType().Name);
        }
    }

    private void Refused()
    {
        GatewayTelemetry.DatabaseDecisions.Add(1, new KeyValuePair<string, object?>(GatewayTelemetry.Tags.Decision, "cancel-refused"));
        Log.CancelRefused(_logger);
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 3005, Level = LogLevel.Information, Message = "A CancelRequest named no session of this replica; ignored")]
        public static partial void CancelRefused(ILogger logger);

        [LoggerMessage(EventId = 3006, Level = LogLevel.Warning, Message = "Passing a CancelRequest to database {DatabaseName} failed: {Reason}")]
        public static partial void CancelFailed(ILogger logger, string databaseName, string reason);

        [LoggerMessage(EventId = 3008, Level = LogLevel.Information, Message = "A CancelRequest named no session of this replica; passed to the other replicas")]
        public static partial void Relayed(ILogger logger);

        [LoggerMessage(EventId = 3009, Level = LogLevel.Warning, Message = "A CancelRequest could not be passed to the other replicas: {Reason}")]
        public static partial void RelayFailed(ILogger logger, string reason);
    }
}
