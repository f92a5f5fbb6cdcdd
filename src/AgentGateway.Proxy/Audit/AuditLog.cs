using System.Buffers;
using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Threading.Channels;
using AgentGateway.Credentials;
using AgentGateway.Proxy.Configuration;
using AgentGateway.Proxy.Pipeline;
using AgentGateway.Proxy.Problems;
using AgentGateway.Proxy.Telemetry;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace AgentGateway.Proxy.Audit;

/// <summary>
/// The audit trail: one hash-chained JSON line per credential use and per refusal, in the file at
/// <c>Gateway:Audit:Path</c> (fixed for the process; each replica writes its own file). Records
/// are queued and written in order by one writer; a full queue makes requests wait rather than
/// lose a record. After a restart the chain continues from the file's last record. Records carry
/// names, fingerprints and the gateway's own trace id (the agent's, when it sent one, apart as
/// <c>agentTraceId</c>) — never a secret.
/// </summary>
/// <remarks>
/// A request only fills in an <see cref="Entry"/> of values it already holds (strings, numbers,
/// times) and queues it; queuing completes at once unless the queue is full. Formatting, hashing,
/// writing happen on the writer, which takes whatever has queued up since its last pass (up to
/// <see cref="MaxBatch"/> records) as one batch, sealed into one reused buffer without allocating,
/// and hands it to the operating system in one write (the file is unbuffered). It does not force
/// the batch to the disk (no fsync): a gateway that crashes loses no record already written, a
/// machine that loses power can lose what was still in its page cache. A batch whose write fails
/// (the disk is full) is kept: the file is cut back to its last good record and the same batch
/// written again, after a wait that doubles up to <see cref="MaxRetryDelay"/>, until it succeeds —
/// so the chain never has a gap, and meanwhile the queue fills and requests wait for it, as they
/// do for a slow disk.
/// </remarks>
public sealed partial class AuditLog : IAsyncDisposable
{
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private readonly Channel<Entry>? _queue;
    private readonly Task _writer = Task.CompletedTask;
    private readonly TimeProvider _time;
    private readonly ILogger<AuditLog> _logger;
    private readonly byte[]? _key;
    private readonly Func<string, Stream> _open;
    private readonly CancellationTokenSource _stopping = new();

    public AuditLog(ProcessSettings process, TimeProvider time, ILogger<AuditLog> logger)
        : this(process, time, logger, OpenFile)
    {
    }

    /// <param name="open">Opens the file for writing (tests put a failing disk in between).</param>
    internal AuditLog(ProcessSettings process, TimeProvider time, ILogger<AuditLog> logger, Func<string, Stream> open)
    {
        _time = time;
        _logger = logger;
        _open = open;
        Path = process.AuditPath;
        if (Path is null)
        {
            return;
        }

        // The first revision has checked the key the same way (AuditCompiler) and refused to start
        // without it, so it resolves here.
        AuditKey.TryResolve(process.AuditKey, out _key, out _);

        _queue = Channel.CreateBounded<Entry>(new BoundedChannelOptions(Capacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
        _writer = Task.Run(WriteAsync);
    }

    /// <summary>How many records may wait for the writer before a request waits for it.</summary>
    public const int Capacity = 10_000;

    /// <summary>The most records written (and, after a failure, held and written again) as one batch.</summary>
    internal const int MaxBatch = 1_000;

    /// <summary>The first wait after a failed write; each next one doubles, up to <see cref="MaxRetryDelay"/>.</summary>
    internal static readonly TimeSpan FirstRetryDelay = TimeSpan.FromMilliseconds(100);

    internal static readonly TimeSpan MaxRetryDelay = TimeSpan.FromSeconds(5);

    /// <summary>The file written, or null when the audit log is off.</summary>
    public string? Path { get; }

    /// <summary>A hop credential was injected into a request about to be forwarded.</summary>
    public ValueTask CredentialUsedAsync(HttpContext context, GatewayRequestFeature feature, HopCredential credential, string? destination) =>
        EnqueueAsync(ForRequest("credential-use", context, feature) with
        {
            Credential = credential.CredentialName,
            Kind = credential.Kind.ToString(),
            Source = credential.Source.ToString(),
            Fingerprint = credential.Fingerprint,
            ExpiresAt = credential.ExpiresAt,
            Destination = destination,
            // What shadow policy would have refused of this request; it was not enforced. Joined on the writer.
            Shadow = feature.Decision?.ShadowDenials is { Count: > 0 } shadow ? shadow : null,
        });

    /// <summary>A request was refused.</summary>
    public ValueTask RefusedAsync(HttpContext context, Refusal refusal, string routeId, string? agentId)
    {
        var feature = context.Features.Get<GatewayRequestFeature>();
        return EnqueueAsync(new Entry("refusal", _time.GetUtcNow(), RequestTrace.Id(context))
        {
            AgentTraceId = RequestTrace.AgentTraceId(context.Request),
            Agent = agentId,
            User = feature?.Delegation?.Subject,
            Route = routeId,
            Grant = feature?.Grant,
            Task = feature?.Task,
            Method = context.Request.Method,
            Reason = refusal.Reason,
            Status = refusal.Status,
            Detail = refusal.Detail,
        });
    }

    /// <summary>An MCP server's request to the agent (sampling, elicitation, ...) was refused by policy and kept from the agent.</summary>
    public ValueTask ServerRequestRefusedAsync(HttpContext context, GatewayRequestFeature feature, string serverMethod) =>
        EnqueueAsync(ForRequest("server-request-refusal", context, feature) with
        {
            Reason = McpServerStreamTransform.Refused,
            Detail = $"the MCP server asked for '{serverMethod}', which grant '{feature.Grant}' does not allow",
        });

    /// <summary>An operator revoked an agent (or an instance of a class).</summary>
    public ValueTask RevokedAsync(HttpContext context, string agentId, string by, string? reason) =>
        EnqueueAsync(new Entry("revocation", _time.GetUtcNow(), RequestTrace.Id(context))
        {
            AgentTraceId = RequestTrace.AgentTraceId(context.Request),
            Agent = agentId,
            User = by,
            Method = context.Request.Method,
            Reason = "agent-revoked",
            Detail = reason,
        });

    /// <summary>A database session opened, ended, or a database connection refused.</summary>
    public ValueTask DatabaseSessionAsync(string kind, DatabaseAuditFacts facts) =>
        // A database session has no HTTP request an agent could name a trace in: its trace is the
        // session span the gateway started.
        EnqueueAsync(new Entry(kind, _time.GetUtcNow(), System.Diagnostics.Activity.Current?.TraceId.ToHexString() ?? "")
        {
            Agent = facts.Agent,
            Grant = facts.Grant,
            Session = facts,
            Reason = facts.Reason,
            Detail = facts.Detail,
            Credential = facts.Credential,
            Kind = facts.Kind,
            Source = facts.Source,
            Fingerprint = facts.Fingerprint,
            ExpiresAt = facts.ExpiresAt,
            Destination = facts.Destination,
        });

    /// <summary>The gateway ended a live session (a stream, a tunnel, a long request, a database
    /// session): revoked, expired, its grant removed, over its rate. Called off the request's own
    /// flow (a timer, the revocation channel), so the session's trace id is passed in.</summary>
    public ValueTask SessionEndedAsync(string traceId, string agentId, string? user, string resource, string? grant, string? method, string reason, string detail) =>
        EnqueueAsync(new Entry("session-end", _time.GetUtcNow(), traceId)
        {
            Agent = agentId,
            User = user,
            Route = resource,
            Grant = grant,
            Method = method,
            Reason = reason,
            Detail = detail,
        });

    /// <summary>An entry with what is known of a request that passed identification and policy.</summary>
    private Entry ForRequest(string kind, HttpContext context, GatewayRequestFeature feature) =>
        new(kind, _time.GetUtcNow(), RequestTrace.Id(context))
        {
            AgentTraceId = RequestTrace.AgentTraceId(context.Request),
            Agent = feature.Agent.Agent.Id,
            User = feature.Delegation?.Subject,
            Route = feature.Route.RouteId,
            Grant = feature.Grant,
            Task = feature.Task,
            Method = context.Request.Method,
        };

    /// <summary>Off: nothing. On: queued in order, completing at once while the queue has room; a
    /// full queue (the writer is <see cref="Capacity"/> records behind, say the disk stalls) makes
    /// the caller wait for room, so requests slow down to the writer's pace and no record is dropped.</summary>
    private ValueTask EnqueueAsync(Entry entry) => _queue is null ? ValueTask.CompletedTask : _queue.Writer.WriteAsync(entry);

    public async ValueTask DisposeAsync()
    {
        _queue?.Writer.TryComplete();
        // A writer waiting out a failure tries once more at once; if that fails too, it gives up.
        await _stopping.CancelAsync();
        await _writer;
        _stopping.Dispose();
    }

    /// <summary>Unbuffered: a batch is one write, and after a failure nothing is left in a buffer
    /// to be written again behind the file's back.</summary>
    private static FileStream OpenFile(string path) => new(path, FileMode.OpenOrCreate, FileAccess.Write, FileShare.Read, bufferSize: 0);

    private async Task WriteAsync()
    {
        var (seq, previous) = ReadTail(Path!);
        await using var file = _open(Path!);
        // Where the last good record ends: a failed write is cut back to here.
        var good = file.Seek(0, SeekOrigin.End);
        Log.Opened(_logger, Path!, seq);
        // One reader, so one record buffer, one batch buffer, one JSON writer and one sealer serve
        // every record: a record costs its formatting and its hash, and allocates nothing.
        var record = new ArrayBufferWriter<byte>(1024);
        using var json = new Utf8JsonWriter(record, WriterOptions);
        var batch = new ArrayBufferWriter<byte>(64 * 1024);
        using var sealer = new ChainSealer(_key, previous);
        var reader = _queue!.Reader;
        while (await reader.WaitToReadAsync())
        {
            batch.ResetWrittenCount();
            var count = 0;
            while (count < MaxBatch && reader.TryRead(out var entry))
            {
                seq++;
                count++;
                record.ResetWrittenCount();
                json.Reset(record);
                Format(json, entry, seq, sealer.Previous);
                sealer.Seal(record.WrittenSpan, batch);
            }

            // The sealer has moved on past this batch: if it cannot be written, the writer stops
            // (below), so the chain in the file never continues from a hash it does not hold.
            if (await WriteBatchAsync(file, batch.WrittenMemory, good, count) is not { } end)
            {
                // Stopping with the disk still failing: nothing more can be written.
                var lost = count;
                while (reader.TryRead(out _))
                {
                    lost++;
                }

                Log.RecordsLost(_logger, Path!, lost);
                return;
            }

            good = end;
        }
    }

    /// <summary>Writes <paramref name="batch"/> after the last good record (ending at
    /// <paramref name="good"/>) until the write succeeds: after a failure the file is cut back to
    /// <paramref name="good"/> — whatever part of the batch reached it goes — and the whole batch is
    /// written again after a wait. Returns where the batch ends, or null when the writer stopped
    /// while writes still failed.</summary>
    private async Task<long?> WriteBatchAsync(Stream file, ReadOnlyMemory<byte> batch, long good, int records)
    {
        var delay = FirstRetryDelay;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                // Only a failed write can have left bytes past the last good record; asking the
                // file's length before every batch would be one more system call per batch.
                if (attempt > 1 && file.Length != good)
                {
                    file.SetLength(good);
                }

                file.Position = good;
                await file.WriteAsync(batch);
                await file.FlushAsync();
                if (attempt > 1)
                {
                    Log.WriteRecovered(_logger, Path!, records, attempt);
                }

                return good + batch.Length;
            }
            catch (IOException ex)
            {
                if (_stopping.IsCancellationRequested && attempt > 1)
                {
                    Log.WriteFailed(_logger, Path!, records, TimeSpan.Zero, ex);
                    return null;
                }

                // Loud, and nothing is dropped: the batch waits (and the queue behind it fills).
                Log.WriteFailed(_logger, Path!, records, delay, ex);
                try
                {
                    await Task.Delay(delay, _time, _stopping.Token);
                }
                catch (OperationCanceledException)
                {
                    // Stopping: one more attempt at once.
                }

                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, MaxRetryDelay.Ticks));
            }
        }
    }

    private static (long Seq, string Hash) ReadTail(string path)
    {
        if (!File.Exists(path))
        {
            return (0, AuditChain.Genesis);
        }

        string? last = null;
        foreach (var line in File.ReadLines(path))
        {
            if (line.Length > 0)
            {
                last = line;
            }
        }

        return last is not null && AuditChain.TryReadTail(last, out var seq, out var hash) ? (seq, hash) : (0, AuditChain.Genesis);
    }

    private static void Format(Utf8JsonWriter json, Entry e, long seq, ReadOnlySpan<byte> previous)
    {
        Span<char> time = stackalloc char[40];
        json.WriteStartObject();
        json.WriteNumber(Names.Seq, seq);
        json.WriteString(Names.Prev, previous);
        json.WriteString(Names.Time, Round(e.Time, time));
        json.WriteString(Names.Event, e.Event);
        json.WriteString(Names.TraceId, e.TraceId);
        Optional(json, Names.AgentTraceId, e.AgentTraceId);
        Optional(json, Names.Agent, e.Agent);
        Optional(json, Names.User, e.User);
        Optional(json, Names.Route, e.Route);
        Optional(json, Names.Grant, e.Grant);
        Optional(json, Names.Task, e.Task);
        Optional(json, Names.Method, e.Method);
        Optional(json, Names.Reason, e.Reason);
        if (e.Status is { } status)
        {
            json.WriteNumber(Names.Status, status);
        }

        Optional(json, Names.Detail, e.Detail);
        Optional(json, Names.Credential, e.Credential);
        Optional(json, Names.Kind, e.Kind);
        Optional(json, Names.Source, e.Source);
        Optional(json, Names.Fingerprint, e.Fingerprint);
        if (e.ExpiresAt is { } expiresAt)
        {
            json.WriteString(Names.ExpiresAt, Round(expiresAt, time));
        }

        Optional(json, Names.Destination, e.Destination);
        if (e.Session is { } session)
        {
            json.WriteString(Names.Database, session.Database);
            Optional(json, Names.Role, session.Role);
            OptionalNumber(json, Names.BytesToServer, session.BytesToServer);
            OptionalNumber(json, Names.BytesToAgent, session.BytesToAgent);
            OptionalNumber(json, Names.DurationMs, session.Duration is { } duration ? (long)duration.TotalMilliseconds : null);
        }

        if (e.Shadow is { } shadow)
        {
            json.WriteString(Names.Shadow, string.Join("; ", shadow));
        }

        json.WriteEndObject();
        json.Flush();

        // ISO 8601 round-trip form, as "O" writes it.
        static ReadOnlySpan<char> Round(DateTimeOffset value, Span<char> destination) =>
            value.TryFormat(destination, out var written, "O", CultureInfo.InvariantCulture) ? destination[..written] : value.ToString("O", CultureInfo.InvariantCulture);
    }

    private static void OptionalNumber(Utf8JsonWriter json, JsonEncodedText name, long? value)
    {
        if (value is { } number)
        {
            json.WriteNumber(name, number);
        }
    }

    private static void Optional(Utf8JsonWriter json, JsonEncodedText name, string? value)
    {
        if (value is not null)
        {
            json.WriteString(name, value);
        }
    }

    /// <summary>The record's member names, encoded once rather than for every record.</summary>
    private static class Names
    {
        public static readonly JsonEncodedText Seq = JsonEncodedText.Encode("seq");
        public static readonly JsonEncodedText Prev = JsonEncodedText.Encode("prev");
        public static readonly JsonEncodedText Time = JsonEncodedText.Encode("time");
        public static readonly JsonEncodedText Event = JsonEncodedText.Encode("event");
        public static readonly JsonEncodedText TraceId = JsonEncodedText.Encode("traceId");
        public static readonly JsonEncodedText AgentTraceId = JsonEncodedText.Encode("agentTraceId");
        public static readonly JsonEncodedText Agent = JsonEncodedText.Encode("agent");
        public static readonly JsonEncodedText User = JsonEncodedText.Encode("user");
        public static readonly JsonEncodedText Route = JsonEncodedText.Encode("route");
        public static readonly JsonEncodedText Grant = JsonEncodedText.Encode("grant");
        public static readonly JsonEncodedText Task = JsonEncodedText.Encode("task");
        public static readonly JsonEncodedText Method = JsonEncodedText.Encode("method");
        public static readonly JsonEncodedText Reason = JsonEncodedText.Encode("reason");
        public static readonly JsonEncodedText Status = JsonEncodedText.Encode("status");
        public static readonly JsonEncodedText Detail = JsonEncodedText.Encode("detail");
        public static readonly JsonEncodedText Credential = JsonEncodedText.Encode("credential");
        public static readonly JsonEncodedText Kind = JsonEncodedText.Encode("kind");
        public static readonly JsonEncodedText Source = JsonEncodedText.Encode("source");
        public static readonly JsonEncodedText Fingerprint = JsonEncodedText.Encode("fingerprint");
        public static readonly JsonEncodedText ExpiresAt = JsonEncodedText.Encode("expiresAt");
        public static readonly JsonEncodedText Destination = JsonEncodedText.Encode("destination");
        public static readonly JsonEncodedText Database = JsonEncodedText.Encode("database");
        public static readonly JsonEncodedText Role = JsonEncodedText.Encode("role");
        public static readonly JsonEncodedText BytesToServer = JsonEncodedText.Encode("bytesToServer");
        public static readonly JsonEncodedText BytesToAgent = JsonEncodedText.Encode("bytesToAgent");
        public static readonly JsonEncodedText DurationMs = JsonEncodedText.Encode("durationMs");
        public static readonly JsonEncodedText Shadow = JsonEncodedText.Encode("shadow");
    }

    /// <summary>One audit record before it is sealed, as values (a struct: queuing it allocates
    /// nothing); absent members are not written.</summary>
    /// <remarks>The queue's array holds these by value and, once a backlog has grown it, keeps its
    /// size (a channel never shrinks it): what only a database session's records carry stays in
    /// its <see cref="DatabaseAuditFacts"/>, referenced, instead of widening every record.</remarks>
    /// <param name="TraceId">The gateway's own trace of the request.</param>
    private readonly record struct Entry(string Event, DateTimeOffset Time, string TraceId)
    {
        /// <summary>The trace id the agent's <c>traceparent</c> named: its claim, recorded apart.</summary>
        public string? AgentTraceId { get; init; }

        public string? Agent { get; init; }

        public string? User { get; init; }

        public string? Route { get; init; }

        public string? Grant { get; init; }

        public string? Task { get; init; }

        public string? Method { get; init; }

        public string? Reason { get; init; }

        public int? Status { get; init; }

        public string? Detail { get; init; }

        public string? Credential { get; init; }

        public string? Kind { get; init; }

        public string? Source { get; init; }

        public string? Fingerprint { get; init; }

        public DateTimeOffset? ExpiresAt { get; init; }

        public string? Destination { get; init; }

        /// <summary>A database session's database, role and counts.</summary>
        public DatabaseAuditFacts? Session { get; init; }

        public IReadOnlyList<string>? Shadow { get; init; }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 2601, Level = LogLevel.Information, Message = "Audit log {AuditPath} open; the chain continues after record {Sequence}")]
        public static partial void Opened(ILogger logger, string auditPath, long sequence);

        [LoggerMessage(EventId = 2602, Level = LogLevel.Error, Message = "Writing {RecordCount} record(s) to the audit log {AuditPath} failed; the file is cut back to its last good record and the records are written again in {RetryDelay}; requests wait once the queue is full")]
        public static partial void WriteFailed(ILogger logger, string auditPath, int recordCount, TimeSpan retryDelay, Exception exception);

        [LoggerMessage(EventId = 2603, Level = LogLevel.Warning, Message = "The audit log {AuditPath} is written again: {RecordCount} held record(s) written on attempt {Attempt}; the chain has no gap")]
        public static partial void WriteRecovered(ILogger logger, string auditPath, int recordCount, int attempt);

        [LoggerMessage(EventId = 2604, Level = LogLevel.Critical, Message = "The gateway stopped while the audit log {AuditPath} could not be written; {RecordCount} record(s) were not written")]
        public static partial void RecordsLost(ILogger logger, string auditPath, int recordCount);
    }
}

/// <summary>What an audit record of a database session says: who, which database and role, and,
/// as known, the credential used (never its value), why it ended, and how much it carried.</summary>
public sealed record DatabaseAuditFacts(string? Agent, string Database, string? Role, string? Grant)
{
    public string? Reason { get; init; }

    public string? Detail { get; init; }

    public string? Credential { get; init; }

    public string? Kind { get; init; }

    public string? Source { get; init; }

    public string? Fingerprint { get; init; }

    public DateTimeOffset? ExpiresAt { get; init; }

    public string? Destination { get; init; }

    public long? BytesToServer { get; init; }

    public long? BytesToAgent { get; init; }

    public TimeSpan? Duration { get; init; }
}
