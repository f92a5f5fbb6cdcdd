using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using AgentGateway.Proxy.Configuration;
using AgentGateway.Proxy.Identity;
using AgentGateway.Proxy.Sessions;

namespace AgentGateway.Proxy.Database;

/// <summary>
/// One agent's logged-in session: the byte-for-byte relay between the agent and the server, and
/// the one way the gateway ends it. The server-to-agent direction is followed message by message
/// (type and length only, never the content), so that when policy ends the session — revocation,
/// expiry, a grant removed by a reload — the agent gets a whole FATAL ErrorResponse (SQLSTATE
/// 28000; 57P01 when the gateway stops) between two messages, never inside one; then the server's
/// running query is cancelled and both sockets close. Registered in the replica's
/// <see cref="LiveSessionRegistry"/> like every other long-lived connection, which ends it.
/// </summary>
internal sealed class PostgresSession : ILiveSession
{
    private static readonly TimeSpan EndGrace = TimeSpan.FromSeconds(1);

    private readonly PipeReader _agentReader;
    private readonly PipeWriter _agentWriter;
    private readonly UpstreamConnection _upstream;
    private readonly TimeProvider _time;
    private readonly Action _abortAgent;
    private SessionEnd? _end;
    private ITimer? _grace;

    public PostgresSession(
        AuthenticatedAgent agent,
        DatabaseEntry entry,
        DatabaseGrant grant,
        PipeReader agentReader,
        PipeWriter agentWriter,
        UpstreamConnection upstream,
        TimeProvider time,
        Action abortAgent)
    {
        Agent = agent;
        Entry = entry;
        Grant = grant;
        _agentReader = agentReader;
        _agentWriter = agentWriter;
        _upstream = upstream;
        _time = time;
        _abortAgent = abortAgent;
    }

    public AuthenticatedAgent Agent { get; }

    public DatabaseEntry Entry { get; }

    public DatabaseGrant Grant { get; }

    public string AgentId => Agent.Agent.Id;

    public string? Instance => Agent.Instance;

    public long BytesToServer { get; private set; }

    public long BytesToAgent { get; private set; }

    /// <summary>Why it ended (set once it has).</summary>
    public SessionEnd? Ended => _end;

    /// <summary>The first end wins: what the agent or server did, or what policy decided.</summary>
    public void End(SessionEnd end)
    {
        if (Interlocked.CompareExchange(ref _end, end, null) is not null)
        {
            return;
        }

        if (end.ByGateway)
        {
            // The server would otherwise finish (or keep running) the agent's query: a revoked
            // agent's last statement must not complete on the gateway's credential.
            _ = CancelUpstreamQueryAsync();
        }

        // Wake both directions: each stops at the next point it safely can.
        _upstream.Reader.CancelPendingRead();
        _agentReader.CancelPendingRead();
        _grace = _time.CreateTimer(_ => Abort(), null, EndGrace, Timeout.InfiniteTimeSpan);
    }

    public SessionEnd? Recheck(GatewayRevision revision)
    {
        if (!revision.Databases.TryGet(Entry.Name, out var entry) || !SameServer(entry!.Upstream, Entry.Upstream))
        {
            return SessionEnd.GrantRemoved($"database '{Entry.Name}' was reconfigured by a configuration reload");
        }

        // Ephemeral agents live outside revisions: their grants are the ones they were registered with.
        var current = revision.Agents.TryGet(AgentId, out var configured) ? configured
            : revision.Agents.ClassOf(AgentId)?.Agent ?? (Ephemeral ? Agent.Agent : null);
        if (current is null)
        {
            return SessionEnd.GrantRemoved($"a configuration reload removed agent '{AgentId}' from the inventory");
        }

        return revision.Databases.Opens(current, Entry.Name, Grant.Role)
            ? null
            : SessionEnd.GrantRemoved($"a configuration reload removed the grant that opened database '{Entry.Name}' as role '{Grant.Role}' for agent '{AgentId}'");
    }

    /// <summary>What the agent's driver is told: admin_shutdown when the gateway stops (a retry
    /// elsewhere may work), invalid_authorization_specification for every policy end.</summary>
    private static string SqlStateOf(SessionEnd end) => end == SessionEnd.Shutdown ? "57P01" : "28000";

    private static bool SameServer(UpstreamDatabase a, UpstreamDatabase b) =>
        string.Equals(a.Host, b.Host, StringComparison.OrdinalIgnoreCase) && a.Port == b.Port
        && string.Equals(a.Database, b.Database, StringComparison.Ordinal) && a.Tls == b.Tls;

    /// <summary>Relays until one side closes or the session is ended; returns why it ended.</summary>
    public async Task<SessionEnd> RunAsync()
    {
        var toServer = Task.Run(RelayToServerAsync);
        var toAgent = Task.Run(RelayToAgentAsync);
        await Task.WhenAll(toServer, toAgent);
        _grace?.Dispose();
        return _end ?? SessionEnd.ServerClosed;
    }

    private async Task RelayToServerAsync()
    {
        try
        {
            while (true)
            {
                var result = await _agentReader.ReadAsync();
                if (_end is not null)
                {
                    break;
                }

                foreach (var segment in result.Buffer)
                {
                    await _upstream.Writer.WriteAsync(segment);
                }

                BytesToServer += result.Buffer.Length;
                _agentReader.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted)
                {
                    End(SessionEnd.ClientClosed);
                    break;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or OperationCanceledException or InvalidOperationException)
        {
            End(SessionEnd.ClientClosed);
        }
        finally
        {
            // The server sees the agent's end as the end of its client (its transaction rolls back).
            await _upstream.Writer.CompleteAsync();
        }
    }

    private async Task RelayToAgentAsync()
    {
        // Bytes still owed to the agent of the message being relayed (header included).
        long owed = 0;
        var header = new byte[5];
        try
        {
            while (true)
            {
                var result = await _upstream.Reader.ReadAsync();
                var buffer = result.Buffer;
                if (_end is { } ending && owed == 0)
                {
                    _upstream.Reader.AdvanceTo(buffer.Start);
                    if (ending.ByGateway)
                    {
                        PgWire.Error(_agentWriter, "FATAL", SqlStateOf(ending), ending.Message);
                        await _agentWriter.FlushAsync();
                    }

                    break;
                }

                var consumed = buffer.Start;
                var rest = buffer;
                while (rest.Length > 0)
                {
                    if (owed == 0)
                    {
                        if (_end is not null || rest.Length < 5)
                        {
                            break;
                        }

                        rest.Slice(0, 5).CopyTo(header);
                        var length = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(1));
                        if (length < 4)
                        {
                            throw new InvalidDataException("the server sent a message with an impossible length");
                        }

                        owed = 1L + length;
                    }

                    var take = Math.Min(owed, rest.Length);
                    foreach (var segment in rest.Slice(0, take))
                    {
                        _agentWriter.Write(segment.Span);
                    }

                    owed -= take;
                    BytesToAgent += take;
                    rest = rest.Slice(take);
                    consumed = rest.Start;
                }

                _upstream.Reader.AdvanceTo(consumed, buffer.End);
                var flushed = await _agentWriter.FlushAsync();
                if (flushed.IsCompleted)
                {
                    End(SessionEnd.ClientClosed);
                    break;
                }

                if (result.IsCompleted && !result.IsCanceled)
                {
                    End(SessionEnd.ServerClosed);
                    break;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or OperationCanceledException or InvalidOperationException or InvalidDataException)
        {
            End(SessionEnd.ServerClosed);
        }
        finally
        {
            await _agentWriter.CompleteAsync();
            _agentReader.CancelPendingRead();
        }
    }

    /// <summary>Cancels the query the server is running for this session (the agent's CancelRequest, or the session's end).</summary>
    public Task CancelQueryAsync(CancellationToken cancellationToken) =>
        UpstreamConnection.CancelAsync(Entry.Upstream, _upstream.ProcessId, _upstream.SecretKey, cancellationToken);

    public ValueTask DisposeUpstreamAsync() => _upstream.DisposeAsync();

    private async Task CancelUpstreamQueryAsync()
    {
        try
        {
            using var timeout = new CancellationTokenSource(EndGrace);
            await CancelQueryAsync(timeout.Token);
        }
        catch (Exception ex) when (ex is IOException or System.Net.Sockets.SocketException or OperationCanceledException or System.Security.Authentication.AuthenticationException)
        {
            // The sockets close anyway, and the server ends the backend when it notices.
        }
    }

    /// <summary>The grace is over: close both sockets, whatever was in flight.</summary>
    private void Abort()
    {
        _abortAgent();
        _upstream.Stream.Dispose();
    }

    /// <summary>The gateway's own key for this session, handed to the agent instead of the server's.</summary>
    public (int ProcessId, int Secret) AgentKey { get; init; }

    /// <summary>When the session must end: the agent's proof's expiry, the agent's, or the entry's
    /// maximum lifetime. The registry ends it then.</summary>
    public DateTimeOffset Deadline { get; init; }

    /// <summary>The agent is an ephemeral one (registered through the admin API), not in any revision.</summary>
    public bool Ephemeral { get; init; }
}
