using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Collections.Frozen;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using AgentGateway.Credentials;
using AgentGateway.Proxy.Audit;
using AgentGateway.Proxy.Configuration;
using AgentGateway.Proxy.Identity;
using AgentGateway.Proxy.Inventory;
using AgentGateway.Proxy.Problems;
using AgentGateway.Proxy.Sessions;
using AgentGateway.Proxy.Telemetry;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace AgentGateway.Proxy.Database;

/// <summary>
/// The PostgreSQL front end: one agent connection from its first byte to its last. It negotiates
/// TLS (SSLRequest; GSSENCRequest is answered 'N'), reads the startup packet strictly, identifies
/// the agent by its own proof — its access token as the password (over TLS, or on loopback), or its
/// client certificate — through the same authenticator as HTTP, decides the grant (database, role,
/// hours, revocation, expiry), logs in to the server with the grant's hop credential, and hands the
/// agent its own backend key before relaying. Nothing reaches the server before all of that holds.
/// </summary>
public sealed partial class PostgresFrontEnd(
    GatewayConfigProvider config,
    AgentAuthenticator authenticator,
    RevocationStore revocations,
    AgentActivity activity,
    ILiveSessionRegistry sessions,
    CancelKeys cancelKeys,
    AuditLog audit,
    TimeProvider time,
    ILogger<PostgresFrontEnd> logger)
{
    /// <summary>Startup parameters passed on to the server. Each is a setting the agent could change
    /// with SET after the login anyway, so passing it gives the session nothing the role does not
    /// already allow. Everything else is refused, as PgBouncer does: <c>options</c> can set
    /// backend-only and superuser settings in an escaping of its own, <c>replication</c> opens a
    /// different protocol, and names the gateway does not know could be either.</summary>
    private static readonly FrozenSet<string> PassedParameters = FrozenSet.ToFrozenSet(
        [
            "application_name", "client_encoding", "DateStyle", "TimeZone", "IntervalStyle", "extra_float_digits",
            "search_path", "bytea_output", "standard_conforming_strings", "statement_timeout", "lock_timeout",
            "idle_in_transaction_session_timeout", "default_transaction_read_only", "default_transaction_isolation",
        ],
        StringComparer.OrdinalIgnoreCase);

    private static readonly SslApplicationProtocol PostgresAlpn = new("postgresql");

    /// <summary>Serves one agent connection on the listener of database <paramref name="databaseName"/>.</summary>
    public async Task HandleAsync(ConnectionContext connection, string databaseName)
    {
        var revision = config.Current;
        if (!revision.Databases.TryGet(databaseName, out var entry))
        {
            return;
        }

        using var login = CancellationTokenSource.CreateLinkedTokenSource(connection.ConnectionClosed);
        login.CancelAfter(entry!.AuthenticationTimeout);
        var remote = (connection.RemoteEndPoint as IPEndPoint)?.Address;
        var io = new AgentIo(connection.Transport.Input, connection.Transport.Output);
        SslStream? tls = null;
        PostgresSession? session = null;
        try
        {
            session = await LoginAsync(connection, entry, revision, io, remote, t => tls = t, login.Token);
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or AuthenticationException or InvalidOperationException or ObjectDisposedException)
        {
            // A client that never finishes, or drops, or fails the TLS handshake: the socket closes.
            Refused(entry.Name, login.IsCancellationRequested && !connection.ConnectionClosed.IsCancellationRequested ? "login-timeout" : "client-gone", null, null);
        }
        catch (Exception ex)
        {
            // Whatever went wrong, this connection ends here and the listener goes on.
            Log.Failed(logger, entry.Name, ex);
            Refused(entry.Name, "gateway-error", null, null);
        }

        if (session is not null)
        {
            await RunAsync(session);
        }

        try
        {
            await io.Writer.CompleteAsync();
            await io.Reader.CompleteAsync();
            if (tls is not null)
            {
                await tls.DisposeAsync();
            }
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException)
        {
        }
    }

    private async Task<PostgresSession?> LoginAsync(
        ConnectionContext connection, DatabaseEntry entry, GatewayRevision revision, AgentIo io, IPAddress? remote, Action<SslStream> onTls, CancellationToken cancellationToken)
    {
        SslStream? tls = null;
        byte[]? startup = null;
        for (var round = 0; round < 3 && startup is null; round++)
        {
            var (packet, leftover) = await ReadPacketAsync(io.Reader, PgWire.MaxStartupPacket, cancellationToken);
            if (packet is null)
            {
                await FatalAsync(io, entry, SqlState.ProtocolViolation, "invalid startup packet (a length outside 8..10000 bytes, or the connection closed)", "malformed-startup", null);
                return null;
            }

            var code = BinaryPrimitives.ReadInt32BigEndian(packet.AsSpan(4));
            switch (code)
            {
                case PgWire.SslRequest when packet.Length == 8 && tls is null:
                    if (leftover)
                    {
                        // Bytes sent after SSLRequest but before the handshake would be read as if
                        // they had come over TLS (CVE-2021-23214): never take them.
                        Refused(entry.Name, "data-before-tls", null, null);
                        return null;
                    }

                    if (revision.Databases.TryGet(entry.Name, out var current) && current!.Certificate is { } certificate)
                    {
                        await io.Writer.WriteAsync(new[] { (byte)'S' }, cancellationToken);
                        tls = new SslStream(new DuplexPipeStream(connection.Transport), leaveInnerStreamOpen: true);
                        onTls(tls);
                        await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
                        {
                            ServerCertificate = certificate,
                            ApplicationProtocols = [PostgresAlpn],
                            // Asked for, never required: without one the agent logs in with its token.
                            ClientCertificateRequired = revision.Inbound.Certificates.Enabled,
#pragma warning disable CA5359 // Any client certificate is taken here and judged afterwards by CertificateIdentity against the configured trust only.
                            RemoteCertificateValidationCallback = static (_, _, _, _) => true,
#pragma warning restore CA5359
                            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
                        }, cancellationToken);
                        io = AgentIo.Over(tls);
                    }
                    else
                    {
                        await io.Writer.WriteAsync(new[] { (byte)'N' }, cancellationToken);
                    }

                    break;
                case PgWire.GssEncRequest when packet.Length == 8 && tls is null:
                    // No GSSAPI here; 'N' lets the client go on with TLS or plaintext.
                    await io.Writer.WriteAsync(new[] { (byte)'N' }, cancellationToken);
                    break;
                case PgWire.CancelRequest when packet.Length == 16:
                    await cancelKeys.CancelAsync(BinaryPrimitives.ReadInt32BigEndian(packet.AsSpan(8)), BinaryPrimitives.ReadInt32BigEndian(packet.AsSpan(12)));
                    return null;
                case >= PgWire.ProtocolV3 and < (PgWire.ProtocolV3 + 0x10000):
                    startup = packet;
                    break;
                default:
                    await FatalAsync(io, entry, SqlState.FeatureNotSupported, $"unsupported frontend protocol {code >> 16}.{code & 0xFFFF}: the gateway speaks 3.0", "unsupported-protocol", null);
                    return null;
            }
        }

        if (startup is null)
        {
            await FatalAsync(io, entry, SqlState.ProtocolViolation, "expected a startup packet", "malformed-startup", null);
            return null;
        }

        var parameters = PgWire.ReadParameters(startup.AsSpan(8));
        if (parameters is null)
        {
            await FatalAsync(io, entry, SqlState.ProtocolViolation, "invalid startup packet layout: expected UTF-8 name/value pairs, each name once, then one terminator", "malformed-startup", null);
            return null;
        }

        var minor = BinaryPrimitives.ReadInt32BigEndian(startup.AsSpan(4)) & 0xFFFF;
        var extensions = parameters.Keys.Where(k => k.StartsWith("_pq_.", StringComparison.Ordinal)).ToList();
        if (minor > 0 || extensions.Count > 0)
        {
            // Protocol 3.x (x > 0) and _pq_ options: say which version and options the gateway
            // speaks (3.0, none), as a 3.0 server does, and go on in 3.0.
            var body = new ArrayBufferWriter<byte>();
            PgWire.Int32(body, 0);
            PgWire.Int32(body, extensions.Count);
            extensions.ForEach(e => PgWire.CString(body, e));
            PgWire.Message(io.Writer, (byte)'v', body.WrittenSpan);
        }

        if (!parameters.TryGetValue("user", out var role) || role.Length == 0)
        {
            await FatalAsync(io, entry, SqlState.InvalidAuthorization, "no PostgreSQL user name specified in startup packet: name the role a grant opens", "malformed-startup", null);
            return null;
        }

        var database = parameters.GetValueOrDefault("database") is { Length: > 0 } named ? named : role;
        if (!string.Equals(database, entry.Name, StringComparison.Ordinal))
        {
            await FatalAsync(io, entry, "3D000", $"database \"{Printable(database)}\" is not served on this listener (it serves \"{entry.Name}\")", "database-unknown", null);
            return null;
        }

        if (parameters.TryGetValue("replication", out var replication) && !IsFalse(replication))
        {
            await FatalAsync(io, entry, SqlState.InsufficientPrivilege, "replication connections are not allowed through the gateway", "replication-refused", null);
            return null;
        }

        var passed = new List<KeyValuePair<string, string>>();
        foreach (var (name, value) in parameters)
        {
            if (name is "user" or "database" or "replication" || name.StartsWith("_pq_.", StringComparison.Ordinal))
            {
                continue;
            }

            if (!PassedParameters.Contains(name))
            {
                await FatalAsync(io, entry, SqlState.ProtocolViolation, $"unsupported startup parameter: {Printable(name)}", "startup-parameter-refused", null);
                return null;
            }

            passed.Add(new(name, value));
        }

        using var span = GatewayTelemetry.Source.StartActivity("agentgateway.database.login", ActivityKind.Server);
        span?.SetTag(GatewayTelemetry.Tags.DatabaseSystem, "postgresql");
        span?.SetTag(GatewayTelemetry.Tags.DatabaseName, entry.Name);
        span?.SetTag(GatewayTelemetry.Tags.DatabaseRole, Printable(role));

        // The agent's proof: a client certificate (mTLS, X509-SVID) when it sent one and the gateway
        // trusts client certificates; else its access token as the password — never in clear
        // across a network. What it proves goes on the login span, as an HTTP request's on its request span.
        AuthenticationOutcome outcome;
        if (tls?.RemoteCertificate is { } presented && revision.Inbound.Certificates.Enabled)
        {
            using var certificate = new X509Certificate2(presented);
            outcome = authenticator.AuthenticateCertificate(certificate, revision);
        }
        else if (tls is null && (remote is null || !IPAddress.IsLoopback(remote)))
        {
            await FatalAsync(io, entry, SqlState.InvalidAuthorization, "the gateway takes an access token only over TLS: connect with sslmode=require (or verify-full)", "tls-required", null);
            return null;
        }
        else
        {
            PgWire.Authentication(io.Writer, 3);
            await io.Writer.FlushAsync(cancellationToken);
            var token = await ReadPasswordAsync(io.Reader, revision.Inbound.MaxTokenBytes, cancellationToken);
            outcome = token is null
                ? AuthenticationOutcome.Fail(Refusal.Unauthenticated("the password message is malformed or larger than Gateway:Inbound:MaxTokenBytes"))
                : await authenticator.AuthenticateTokenAsync(token, revision, cancellationToken);
        }

        if (outcome.Agent is not { } agent)
        {
            span?.SetStatus(ActivityStatusCode.Error, outcome.Refusal.Reason);
            span?.SetTag(GatewayTelemetry.Tags.ErrorType, outcome.Refusal.Reason);
            var state = outcome.Refusal.Status == 503 ? SqlState.ConnectionFailure
                : outcome.Refusal.Reason == "unauthenticated" ? SqlState.InvalidPassword : SqlState.InvalidAuthorization;
            await FatalAsync(io, entry, state, $"{outcome.Refusal.Reason}: {outcome.Refusal.Detail}", outcome.Refusal.Reason, null, role);
            return null;
        }

        GatewayTelemetry.Stamp(span, agent.Agent.Id, user: null);
        span?.SetTag(GatewayTelemetry.Tags.AgentIssuer, agent.Kind);
        if (revocations.Refuse(agent.Agent.Id, agent.Instance) is { } revoked)
        {
            var state = revoked.Status == 503 ? SqlState.ConnectionFailure : SqlState.InvalidAuthorization;
            await FatalAsync(io, entry, state, $"{revoked.Reason}: {revoked.Detail}", revoked.Reason, agent.Agent.Id, role);
            return null;
        }

        activity.Seen(agent.Agent.Id, agent.Instance);
        var now = time.GetUtcNow();
        if (revision.Databases.Decide(agent.Agent, entry.Name, role, now) is not { } grant)
        {
            var (reason, why) = revision.Databases.Opens(agent.Agent, entry.Name, role)
                ? ("outside-hours", $"no grant of agent '{agent.Agent.Id}' opens database '{entry.Name}' as role '{Printable(role)}' at this time")
                : ("grant-missing", $"no grant of agent '{agent.Agent.Id}' opens database '{entry.Name}' as role '{Printable(role)}'");
            await FatalAsync(io, entry, SqlState.InvalidAuthorization, $"{reason}: {why}", reason, agent.Agent.Id, role);
            return null;
        }

        span?.SetTag(GatewayTelemetry.Tags.Grant, grant.Grant.Name);
        var deadline = now + entry.MaxSessionLifetime;
        foreach (var bound in new[] { agent.ExpiresAt, agent.Agent.ExpiresAt })
        {
            if (bound is { } end && end < deadline)
            {
                deadline = end;
            }
        }

        if (deadline <= now)
        {
            await FatalAsync(io, entry, SqlState.InvalidAuthorization, "agent-expired: the agent's credential has expired", "agent-expired", agent.Agent.Id, role);
            return null;
        }

        // The agent has done its part within AuthenticationTimeout; what follows is bounded by the
        // credential's own timeout and the upstream's ConnectTimeout.
        cancellationToken = connection.ConnectionClosed;
        var (secret, used) = await AcquireAsync(grant, agent, cancellationToken);
        if (secret is null)
        {
            await FatalAsync(io, entry, SqlState.ConnectionFailure, $"credential-unavailable: {used.Detail}", "credential-unavailable", agent.Agent.Id, role);
            return null;
        }

        UpstreamConnection? upstream;
        UpstreamFailure? failure;
        using (var upstreamLogin = GatewayTelemetry.Source.StartActivity("agentgateway.database.upstream_login", ActivityKind.Client))
        {
            upstreamLogin?.SetTag(GatewayTelemetry.Tags.ServerAddress, entry.Upstream.Host);
            upstreamLogin?.SetTag(GatewayTelemetry.Tags.ServerPort, entry.Upstream.Port);
            upstreamLogin?.SetTag(GatewayTelemetry.Tags.DatabaseNamespace, entry.Upstream.Database);
            (upstream, failure) = await UpstreamConnection.ConnectAsync(entry.Upstream, grant.Role, secret, passed, cancellationToken);
            if (failure is not null)
            {
                upstreamLogin?.SetStatus(ActivityStatusCode.Error, failure.Reason);
                upstreamLogin?.SetTag(GatewayTelemetry.Tags.ErrorType, failure.Reason);
            }
        }

        if (upstream is null)
        {
            Log.UpstreamLoginFailed(logger, entry.Name, grant.Role, failure!.Reason);
            await FatalAsync(io, entry, failure.SqlState, failure.Message, failure.Reason, agent.Agent.Id, role);
            return null;
        }

        var key = cancelKeys.NewKey();
        var session = new PostgresSession(agent, entry, grant, io.Reader, io.Writer, upstream, time, connection.Abort)
        {
            AgentKey = key,
            Deadline = deadline,
            Ephemeral = !revision.Agents.TryGet(agent.Agent.Id, out _) && revision.Agents.ClassOf(agent.Agent.Id) is null,
        };
        cancelKeys.Add(session);
        PgWire.Authentication(io.Writer, 0);
        io.Writer.Write(upstream.Greeting);
        PgWire.BackendKeyData(io.Writer, key.ProcessId, key.Secret);
        PgWire.Message(io.Writer, (byte)'Z', "I"u8);
        await io.Writer.FlushAsync(cancellationToken);

        span?.SetTag(GatewayTelemetry.Tags.CredentialName, grant.Login.CredentialName);
        span?.SetTag(GatewayTelemetry.Tags.CredentialKind, used.Kind);
        span?.SetTag(GatewayTelemetry.Tags.CredentialSource, used.Source);
        span?.SetTag(GatewayTelemetry.Tags.CredentialFingerprint, used.Fingerprint);
        span?.SetTag(GatewayTelemetry.Tags.Decision, "opened");
        GatewayTelemetry.DatabaseDecisions.Add(1, new(GatewayTelemetry.Tags.Decision, "opened"), new(GatewayTelemetry.Tags.DatabaseName, entry.Name));
        GatewayTelemetry.CredentialUses.Add(1, new(GatewayTelemetry.Tags.CredentialKind, used.Kind), new(GatewayTelemetry.Tags.CredentialSource, used.Source));
        // A password login is no broker credential; a token login names its broker kind.
        if (used.Kind != PasswordLogin.Kind && CredentialKind.IsValidName(used.Kind))
        {
            activity.Used(agent.Agent.Id, agent.Instance, new CredentialKind(used.Kind));
        }

        await audit.DatabaseSessionAsync("database-session-start", new DatabaseAuditFacts(agent.Agent.Id, entry.Name, grant.Role, grant.Grant.Name)
        {
            Credential = grant.Login.CredentialName,
            Kind = used.Kind,
            Source = used.Source,
            Fingerprint = used.Fingerprint,
            ExpiresAt = used.ExpiresAt,
            Destination = $"{entry.Upstream.Host}:{entry.Upstream.Port}/{entry.Upstream.Database}",
        });
        Log.SessionOpened(logger, agent.Agent.Id, entry.Name, grant.Role, used.Fingerprint);
        return session;
    }

    private async Task RunAsync(PostgresSession session)
    {
        var started = time.GetTimestamp();
        var tags = new TagList { { GatewayTelemetry.Tags.DatabaseName, session.Entry.Name } };
        GatewayTelemetry.DatabaseSessions.Add(1, tags);
        SessionEnd end;
        using (var registration = sessions.Register(session))
        {
            registration.EndNoLaterThan(session.Deadline, SessionEnd.Expired);
            // A revocation (or the loss of revocations) that landed between the check and the
            // registration is not missed.
            if (revocations.Refuse(session.AgentId, session.Instance) is { } revoked)
            {
                registration.End(revoked.Status == 503 ? SessionEnd.RevocationsUnconfirmed : SessionEnd.Revoked(session.AgentId));
            }

            end = await session.RunAsync();
        }

        cancelKeys.Remove(session);
        GatewayTelemetry.DatabaseSessions.Add(-1, tags);
        GatewayTelemetry.DatabaseSessionEnds.Add(1, new(GatewayTelemetry.Tags.DatabaseEndReason, end.Reason), new(GatewayTelemetry.Tags.DatabaseName, session.Entry.Name));
        var duration = time.GetElapsedTime(started);
        await audit.DatabaseSessionAsync("database-session-end", new DatabaseAuditFacts(session.AgentId, session.Entry.Name, session.Grant.Role, session.Grant.Grant.Name)
        {
            Reason = end.Reason,
            BytesToServer = session.BytesToServer,
            BytesToAgent = session.BytesToAgent,
            Duration = duration,
        });
        Log.SessionEnded(logger, session.AgentId, session.Entry.Name, end.Reason, session.BytesToServer, session.BytesToAgent, duration.TotalMilliseconds);
        await session.DisposeUpstreamAsync();
    }

    /// <summary>The hop credential for the grant's login: the password, or a token from the broker.</summary>
    private static async Task<(string? Secret, UsedCredential Used)> AcquireAsync(DatabaseGrant grant, AuthenticatedAgent agent, CancellationToken cancellationToken)
    {
        // The session's one credential use: acquired here, given to the upstream login (its sibling span).
        using var acquire = GatewayTelemetry.Source.StartActivity(GatewayTelemetry.CredentialSpan);
        acquire?.SetTag(GatewayTelemetry.Tags.CredentialName, grant.Login.CredentialName);
        GatewayTelemetry.Stamp(acquire, agent.Agent.Id, user: null);
        switch (grant.Login)
        {
            case PasswordLogin password:
                acquire?.SetTag(GatewayTelemetry.Tags.CredentialKind, PasswordLogin.Kind);
                acquire?.SetTag(GatewayTelemetry.Tags.CredentialSource, nameof(CredentialSource.Static));
                acquire?.SetTag(GatewayTelemetry.Tags.CredentialFingerprint, password.Fingerprint);
                return (password.Password.Reveal(), new UsedCredential(PasswordLogin.Kind, nameof(CredentialSource.Static), password.Fingerprint, null, ""));
            case TokenLogin token:
                var result = await token.Source.GetAsync(new CredentialRequest(agent.Agent.Id, agent.Token.Length == 0 ? null : agent.Token, null), cancellationToken);
                if (result.Credential is not { Secret: { } value } credential)
                {
                    acquire?.SetStatus(ActivityStatusCode.Error, "credential-unavailable");
                    return (null, new UsedCredential(token.Source.Kind.ToString(), "", "", null, result.Error?.Detail ?? $"credential '{token.Source.Name}' gave no token"));
                }

                acquire?.SetTag(GatewayTelemetry.Tags.CredentialKind, credential.Kind.ToString());
                acquire?.SetTag(GatewayTelemetry.Tags.CredentialSource, credential.Source.ToString());
                acquire?.SetTag(GatewayTelemetry.Tags.CredentialFingerprint, credential.Fingerprint);
                return (value, new UsedCredential(credential.Kind.ToString(), credential.Source.ToString(), credential.Fingerprint, credential.ExpiresAt, ""));
            default:
                return (null, new UsedCredential("", "", "", null, "no login configured"));
        }
    }

    private async Task FatalAsync(AgentIo io, DatabaseEntry entry, string sqlState, string message, string reason, string? agentId, string? role = null)
    {
        try
        {
            PgWire.Error(io.Writer, "FATAL", sqlState, message);
            await io.Writer.FlushAsync();
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException or OperationCanceledException)
        {
        }

        Refused(entry.Name, reason, agentId, role);
        await audit.DatabaseSessionAsync("database-refusal", new DatabaseAuditFacts(agentId, entry.Name, role is null ? null : Printable(role), null)
        {
            Reason = reason,
            Detail = message,
        });
    }

    private void Refused(string database, string reason, string? agentId, string? role)
    {
        GatewayTelemetry.DatabaseDecisions.Add(1, new(GatewayTelemetry.Tags.Decision, reason), new(GatewayTelemetry.Tags.DatabaseName, database));
        Activity.Current?.SetTag(GatewayTelemetry.Tags.Decision, reason);
        Log.Refused(logger, database, reason, agentId ?? "(unidentified)", role is null ? "" : Printable(role));
    }

    /// <summary>One packet before the startup is complete, and whether more bytes already followed it.</summary>
    private static async Task<(byte[]? Packet, bool Leftover)> ReadPacketAsync(PipeReader reader, int max, CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await reader.ReadAsync(cancellationToken);
            var buffer = result.Buffer;
            if (PgWire.TryReadPacket(ref buffer, max, out var packet, out var malformed))
            {
                var leftover = buffer.Length > 0;
                reader.AdvanceTo(buffer.Start);
                return (packet, leftover);
            }

            if (malformed || result.IsCompleted)
            {
                reader.AdvanceTo(buffer.End);
                return (null, false);
            }

            reader.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    /// <summary>The agent's PasswordMessage: one UTF-8 string, terminated once, no longer than a token may be.</summary>
    private static async Task<string?> ReadPasswordAsync(PipeReader reader, int maxTokenBytes, CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await reader.ReadAsync(cancellationToken);
            var buffer = result.Buffer;
            if (PgWire.TryReadMessage(ref buffer, maxTokenBytes + 5, out var type, out var body, out var malformed))
            {
                reader.AdvanceTo(buffer.Start);
                if (type != (byte)'p' || body.Length < 2 || body[^1] != 0 || Array.IndexOf(body, (byte)0) != body.Length - 1)
                {
                    return null;
                }

                try
                {
                    return PgWire.StrictUtf8.GetString(body, 0, body.Length - 1);
                }
                catch (System.Text.DecoderFallbackException)
                {
                    return null;
                }
            }

            if (malformed || result.IsCompleted)
            {
                reader.AdvanceTo(buffer.End);
                return null;
            }

            reader.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    private static bool IsFalse(string value) =>
        value.Equals("false", StringComparison.OrdinalIgnoreCase) || value.Equals("off", StringComparison.OrdinalIgnoreCase)
        || value.Equals("no", StringComparison.OrdinalIgnoreCase) || value == "0";

    /// <summary>Names the agent chose, in errors and logs: short, printable ASCII only.</summary>
    private static string Printable(string text) =>
        Policy.PolicyEngine.Printable(text);

    private sealed record UsedCredential(string Kind, string Source, string Fingerprint, DateTimeOffset? ExpiresAt, string Detail);

    /// <summary>The agent side's reader and writer: Kestrel's pipes, or pipes over the TLS stream.</summary>
    private sealed record AgentIo(PipeReader Reader, PipeWriter Writer)
    {
        public static AgentIo Over(SslStream tls) => new(
            PipeReader.Create(tls, new StreamPipeReaderOptions(leaveOpen: true)),
            PipeWriter.Create(tls, new StreamPipeWriterOptions(leaveOpen: true)));
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 3001, Level = LogLevel.Information, Message = "Database session opened: agent {AgentId} on {DatabaseName} as {DatabaseRole} with credential {CredentialFingerprint}")]
        public static partial void SessionOpened(ILogger logger, string agentId, string databaseName, string databaseRole, string credentialFingerprint);

        [LoggerMessage(EventId = 3002, Level = LogLevel.Information, Message = "Database session ended: agent {AgentId} on {DatabaseName} ({EndReason}), {BytesToServer} bytes to the server, {BytesToAgent} to the agent, {DurationMs:0} ms")]
        public static partial void SessionEnded(ILogger logger, string agentId, string databaseName, string endReason, long bytesToServer, long bytesToAgent, double durationMs);

        [LoggerMessage(EventId = 3003, Level = LogLevel.Warning, Message = "Database connection refused on {DatabaseName}: {Reason} (agent {AgentId}, role {DatabaseRole})")]
        public static partial void Refused(ILogger logger, string databaseName, string reason, string agentId, string databaseRole);

        [LoggerMessage(EventId = 3004, Level = LogLevel.Warning, Message = "The gateway's login to database {DatabaseName} as {DatabaseRole} failed: {Reason}")]
        public static partial void UpstreamLoginFailed(ILogger logger, string databaseName, string databaseRole, string reason);

        [LoggerMessage(EventId = 3007, Level = LogLevel.Error, Message = "A connection to database {DatabaseName} failed unexpectedly")]
        public static partial void Failed(ILogger logger, string databaseName, Exception exception);
    }
}
