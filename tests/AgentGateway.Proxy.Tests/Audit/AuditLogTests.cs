using System.Diagnostics;
using System.Text.Json;
using AgentGateway.Proxy.Audit;
using AgentGateway.Proxy.Configuration;
using AgentGateway.Proxy.Problems;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace AgentGateway.Proxy.Tests.Audit;

public sealed class AuditLogTests : IDisposable
{
    private readonly string _path = Path.Combine(Path.GetTempPath(), $"agentgateway-auditlog-{Guid.NewGuid():N}.jsonl");

    public void Dispose() => File.Delete(_path);

    [Fact]
    public async Task More_records_than_the_queue_holds_at_once_are_all_written_in_one_unbroken_chain()
    {
        // Queued faster than the writer can seal them, so the queue fills: the callers must wait
        // for room, and every record must still be written, in order.
        const int Records = AuditLog.Capacity * 3;
        var audit = new AuditLog(
            new ProcessSettings { AuditPath = _path },
            TimeProvider.System,
            NullLogger<AuditLog>.Instance);
        var pending = new List<Task>(Records);
        for (var i = 0; i < Records; i++)
        {
            pending.Add(audit.DatabaseSessionAsync("database-session-end", new DatabaseAuditFacts($"agent-{i}", "orders", "reader", "g")).AsTask());
        }

        await Task.WhenAll(pending);
        await audit.DisposeAsync();

        var lines = await File.ReadAllLinesAsync(_path);
        Assert.Equal(Records, lines.Length);
        Assert.Null(AuditChain.Verify(lines, key: null));
        Assert.Equal("agent-0", JsonDocument.Parse(lines[0]).RootElement.GetProperty("agent").GetString());
        Assert.Equal($"agent-{Records - 1}", JsonDocument.Parse(lines[^1]).RootElement.GetProperty("agent").GetString());
    }

    [Fact]
    public async Task A_batch_whose_write_fails_is_kept_the_file_cut_back_and_written_again_so_the_chain_has_no_gap()
    {
        var time = new FakeTimeProvider();
        FailingDisk? disk = null;
        var audit = new AuditLog(
            new ProcessSettings { AuditPath = _path },
            time,
            NullLogger<AuditLog>.Instance,
            path => disk = new FailingDisk(new FileStream(path, FileMode.OpenOrCreate, FileAccess.Write, FileShare.Read, bufferSize: 0)));
        await Record(audit, 0, 3);
        await WaitUntil(() => LineCount() == 3);

        // The disk fills: two writes fail after half their bytes reached the file.
        disk!.FailNext = 2;
        await Record(audit, 3, 5);
        await WaitUntil(() => disk.Failures == 1);
        // Nothing is written again until the writer's clock says so. Three first waits on the real
        // clock: a writer waiting on that clock instead would have tried again by now.
        await Task.Delay(AuditLog.FirstRetryDelay * 3);
        Assert.Equal(1, disk.Failures);
        await WaitUntil(() =>
        {
            time.Advance(AuditLog.FirstRetryDelay);
            return disk.Failures == 2;
        });
        await WaitUntil(() =>
        {
            time.Advance(AuditLog.MaxRetryDelay);
            return LineCount() == 8;
        });

        await Record(audit, 8, 2);
        await audit.DisposeAsync();

        var lines = await File.ReadAllLinesAsync(_path);
        Assert.Equal(10, lines.Length);
        Assert.Null(AuditChain.Verify(lines, key: null));
        Assert.Equal(Enumerable.Range(0, 10).Select(i => $"agent-{i}"), lines.Select(l => JsonDocument.Parse(l).RootElement.GetProperty("agent").GetString()));
    }

    [Fact]
    public async Task A_database_session_record_carries_its_database_role_credential_and_counts_in_order()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 28, 12, 0, 0, TimeSpan.Zero));
        var audit = new AuditLog(new ProcessSettings { AuditPath = _path }, time, NullLogger<AuditLog>.Instance);
        await audit.DatabaseSessionAsync("database-session-end", new DatabaseAuditFacts("agent", "orders", "reader", "g")
        {
            Reason = "client-closed",
            Credential = "orders-db",
            Kind = "Static",
            Source = "Static",
            Fingerprint = "f1",
            Destination = "db.internal:5432",
            BytesToServer = 120,
            BytesToAgent = 4096,
            Duration = TimeSpan.FromMilliseconds(1500),
        });
        await audit.DatabaseSessionAsync("database-refusal", new DatabaseAuditFacts(null, "orders", null, null) { Reason = "no-grant" });
        await audit.DisposeAsync();

        var lines = await File.ReadAllLinesAsync(_path);
        Assert.Null(AuditChain.Verify(lines, key: null));
        Assert.Equal(
            ["seq", "prev", "time", "event", "traceId", "agent", "grant", "reason", "credential", "kind", "source", "fingerprint", "destination", "database", "role", "bytesToServer", "bytesToAgent", "durationMs", "hash"],
            JsonDocument.Parse(lines[0]).RootElement.EnumerateObject().Select(p => p.Name));
        var end = JsonDocument.Parse(lines[0]).RootElement;
        Assert.Equal("orders", end.GetProperty("database").GetString());
        Assert.Equal("reader", end.GetProperty("role").GetString());
        Assert.Equal(120, end.GetProperty("bytesToServer").GetInt64());
        Assert.Equal(4096, end.GetProperty("bytesToAgent").GetInt64());
        Assert.Equal(1500, end.GetProperty("durationMs").GetInt64());
        // What a record does not know is absent, not empty.
        Assert.Equal(
            ["seq", "prev", "time", "event", "traceId", "reason", "database", "hash"],
            JsonDocument.Parse(lines[1]).RootElement.EnumerateObject().Select(p => p.Name));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("audit-key")]
    public async Task A_fixed_sequence_of_records_is_written_as_exactly_these_bytes(string? key)
    {
        // Pins the file's bytes, hashes included, so that a faster formatting or sealing cannot
        // change what is written or what a chain proves (AuditChain.Verify reads these lines).
        var variable = "AGW_TEST_AUDIT_PIN_KEY_" + Guid.NewGuid().ToString("N");
        Environment.SetEnvironmentVariable(variable, key);
        try
        {
            var time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 28, 12, 0, 0, TimeSpan.FromHours(1)));
            var audit = new AuditLog(new ProcessSettings { AuditPath = _path, AuditKey = key is null ? null : "env:" + variable }, time, NullLogger<AuditLog>.Instance);
            var context = new DefaultHttpContext();
            context.Request.Method = "POST";
            context.Request.Headers["traceparent"] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
            using var activity = new Activity("pinned").SetParentId(ActivityTraceId.CreateFromString("4bf92f3577b34da6a3ce929d0e0e4736"), ActivitySpanId.CreateFromString("00f067aa0ba902b7"), ActivityTraceFlags.Recorded).Start();
            context.Features.Set<IHttpActivityFeature>(new ActivityFeature(activity));

            await audit.RefusedAsync(context, Refusal.PathDenied("no grant allows \"/admin\" <here> + naïve ✓ \u0001"), "crm", "agent-a");
            time.Advance(TimeSpan.FromTicks(1_234_567));
            await audit.SessionEndedAsync("5e1ba2d4c3b2a1f0e9d8c7b6a5f4e3d2", "agent-a", "user@example.test", "crm", "g", "GET", "agent-revoked", "revoked by ops");
            time.Advance(TimeSpan.FromSeconds(1));
            await audit.DatabaseSessionAsync("database-session-end", new DatabaseAuditFacts("agent-b", "orders", "reader", "g")
            {
                Reason = "client-closed",
                Credential = "orders-db",
                Kind = "Static",
                Source = "Static",
                Fingerprint = "sha256:f1",
                ExpiresAt = new DateTimeOffset(2026, 11, 28, 13, 0, 0, 500, TimeSpan.Zero),
                Destination = "db.internal:5432",
                BytesToServer = 120,
                BytesToAgent = 4096,
                Duration = TimeSpan.FromMilliseconds(1500.7),
            });
            await audit.DisposeAsync();

            Assert.Equal(key is null ? PinnedUnkeyed : PinnedKeyed, await File.ReadAllTextAsync(_path));
        }
        finally
        {
            Environment.SetEnvironmentVariable(variable, null);
        }
    }

    private const string PinnedUnkeyed = """
        {"seq":1,"prev":"0000000000000000000000000000000000000000000000000000000000000000","time":"2026-11-28T12:00:00.0000000+01:00","event":"refusal","traceId":"4bf92f3577b34da6a3ce929d0e0e4736","agentTraceId":"0af7651916cd43dd8448eb211c80319c","agent":"agent-a","route":"crm","method":"POST","reason":"path-denied","status":403,"detail":"no grant allows \"/admin\" <here> + naïve ✓ \u0001","hash":"28d89014845cbd7775ae8e58ef1c535b8461a337fc641944ee094142b34afee5"}
        {"seq":2,"prev":"28d89014845cbd7775ae8e58ef1c535b8461a337fc641944ee094142b34afee5","time":"2026-11-28T12:00:00.1234567+01:00","event":"session-end","traceId":"5e1ba2d4c3b2a1f0e9d8c7b6a5f4e3d2","agent":"agent-a","user":"user@example.test","route":"crm","grant":"g","method":"GET","reason":"agent-revoked","detail":"revoked by ops","hash":"9feb53c5e76c319ab64f130b72a1f25d6627ca8ad44baba4b1c6c5bffc6a2d4a"}
        {"seq":3,"prev":"9feb53c5e76c319ab64f130b72a1f25d6627ca8ad44baba4b1c6c5bffc6a2d4a","time":"2026-11-28T12:00:01.1234567+01:00","event":"database-session-end","traceId":"4bf92f3577b34da6a3ce929d0e0e4736","agent":"agent-b","grant":"g","reason":"client-closed","credential":"orders-db","kind":"Static","source":"Static","fingerprint":"sha256:f1","expiresAt":"2026-11-28T13:00:00.5000000+00:00","destination":"db.internal:5432","database":"orders","role":"reader","bytesToServer":120,"bytesToAgent":4096,"durationMs":1500,"hash":"c50dedb97a52f9accbf4a27d676e9a173b5d2ca7d2c214bbbf8fd01ab6ce0b00"}
        """ + "\n";

    private const string PinnedKeyed = """
        {"seq":1,"prev":"0000000000000000000000000000000000000000000000000000000000000000","time":"2026-11-28T12:00:00.0000000+01:00","event":"refusal","traceId":"4bf92f3577b34da6a3ce929d0e0e4736","agentTraceId":"0af7651916cd43dd8448eb211c80319c","agent":"agent-a","route":"crm","method":"POST","reason":"path-denied","status":403,"detail":"no grant allows \"/admin\" <here> + naïve ✓ \u0001","hash":"62b366781667b31b019a5f72277c0213a88b67ff278aa32507fbbcf5bdfef581"}
        {"seq":2,"prev":"62b366781667b31b019a5f72277c0213a88b67ff278aa32507fbbcf5bdfef581","time":"2026-11-28T12:00:00.1234567+01:00","event":"session-end","traceId":"5e1ba2d4c3b2a1f0e9d8c7b6a5f4e3d2","agent":"agent-a","user":"user@example.test","route":"crm","grant":"g","method":"GET","reason":"agent-revoked","detail":"revoked by ops","hash":"5b891c4de1d7814a1bcd3d4a462e20e58738d377f3ffac528253fb6634055542"}
        {"seq":3,"prev":"5b891c4de1d7814a1bcd3d4a462e20e58738d377f3ffac528253fb6634055542","time":"2026-11-28T12:00:01.1234567+01:00","event":"database-session-end","traceId":"4bf92f3577b34da6a3ce929d0e0e4736","agent":"agent-b","grant":"g","reason":"client-closed","credential":"orders-db","kind":"Static","source":"Static","fingerprint":"sha256:f1","expiresAt":"2026-11-28T13:00:00.5000000+00:00","destination":"db.internal:5432","database":"orders","role":"reader","bytesToServer":120,"bytesToAgent":4096,"durationMs":1500,"hash":"823dc71af936b9e89461313a85b0630585f97c684ff62249ebf0bc6d9f67b0e2"}
        """ + "\n";

    private static Task Record(AuditLog audit, int from, int count) =>
        Task.WhenAll(Enumerable.Range(from, count).Select(i => audit.DatabaseSessionAsync("database-session-end", new DatabaseAuditFacts($"agent-{i}", "orders", "reader", "g")).AsTask()));

    private int LineCount() => File.Exists(_path) ? File.ReadAllLines(_path).Count(l => l.EndsWith('}')) : 0;

    private static async Task WaitUntil(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting for the audit writer");
            await Task.Delay(10);
        }
    }

    private sealed class ActivityFeature(Activity activity) : IHttpActivityFeature
    {
        public Activity Activity { get; set; } = activity;
    }

    /// <summary>A file on a disk that fills up: a failing write gets half its bytes onto the disk,
    /// then fails as ENOSPC does.</summary>
    private sealed class FailingDisk(FileStream file) : Stream
    {
        private int _failures;

        public int FailNext { get; set; }

        public int Failures => Volatile.Read(ref _failures);

        public override bool CanRead => false;

        public override bool CanSeek => true;

        public override bool CanWrite => true;

        public override long Length => file.Length;

        public override long Position { get => file.Position; set => file.Position = value; }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (FailNext > 0)
            {
                FailNext--;
                await file.WriteAsync(buffer[..(buffer.Length / 2)], cancellationToken);
                Interlocked.Increment(ref _failures);
                throw new IOException("No space left on device");
            }

            await file.WriteAsync(buffer, cancellationToken);
        }

        public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override void Flush() => file.Flush();

        public override Task FlushAsync(CancellationToken cancellationToken) => file.FlushAsync(cancellationToken);

        public override long Seek(long offset, SeekOrigin origin) => file.Seek(offset, origin);

        public override void SetLength(long value) => file.SetLength(value);

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                file.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
