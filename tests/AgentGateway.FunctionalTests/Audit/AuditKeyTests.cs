using AgentGateway.Host;
using AgentGateway.Proxy.Audit;
using AgentGateway.Proxy.Configuration;
using Microsoft.Extensions.Logging.Abstractions;

namespace AgentGateway.FunctionalTests.Audit;

/// <summary>The audit key is read one way: by the gateway writing the log (<c>Gateway:Audit:Key</c>)
/// and by <c>agentgateway audit verify --key</c>.</summary>
public sealed class AuditKeyTests : IDisposable
{
    private const string Key = "audit-hmac-key-canary-000000000000";
    private readonly string _log = Path.Combine(Path.GetTempPath(), $"agentgateway-audit-key-{Guid.NewGuid():N}.jsonl");
    private readonly string _keyFile = Path.GetTempFileName();

    public void Dispose()
    {
        File.Delete(_log);
        File.Delete(_keyFile);
    }

    [Fact]
    public async Task A_log_written_with_the_configured_key_verifies_with_that_secret_and_with_no_other()
    {
        // A key file ends with a newline, as editors and `echo` write it.
        await File.WriteAllTextAsync(_keyFile, Key + "\n");
        var audit = new AuditLog(new ProcessSettings { AuditPath = _log, AuditKey = "file:" + _keyFile }, TimeProvider.System, NullLogger<AuditLog>.Instance);
        await audit.DatabaseSessionAsync("database-session-end", new DatabaseAuditFacts("agent", "orders", "reader", "g"));
        await audit.DisposeAsync();
        Environment.SetEnvironmentVariable("AGW_TEST_AUDIT_KEY_SAME", Key);
        Environment.SetEnvironmentVariable("AGW_TEST_AUDIT_KEY_OTHER", Key + "-other");

        var sameFile = await VerifyAsync("--key", "file:" + _keyFile);
        var sameSecretElsewhere = await VerifyAsync("--key", "env:AGW_TEST_AUDIT_KEY_SAME");
        var other = await VerifyAsync("--key", "env:AGW_TEST_AUDIT_KEY_OTHER");
        var none = await VerifyAsync();

        Assert.True(sameFile.Code == GatewayCommand.Ok, sameFile.Output);
        Assert.True(sameSecretElsewhere.Code == GatewayCommand.Ok, sameSecretElsewhere.Output);
        Assert.Equal(GatewayCommand.ConfigInvalid, other.Code);
        Assert.Equal(GatewayCommand.ConfigInvalid, none.Code);
        Assert.All(new[] { sameFile, sameSecretElsewhere, other, none }, result => Assert.DoesNotContain(Key, result.Output, StringComparison.Ordinal));
    }

    private async Task<(int Code, string Output)> VerifyAsync(params string[] key)
    {
        using var output = new StringWriter();
        var code = await GatewayCommand.RunAsync(["audit", "verify", _log, .. key], output, output);
        return (code, output.ToString());
    }
}
