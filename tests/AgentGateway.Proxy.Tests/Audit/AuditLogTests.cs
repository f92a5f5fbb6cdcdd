using System.Text.Json;
using AgentGateway.Proxy.Audit;
using AgentGateway.Proxy.Configuration;
using Microsoft.Extensions.Logging.Abstractions;

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
}
