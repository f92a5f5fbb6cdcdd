using System.Text;
using AgentGateway.Proxy.Audit;

namespace AgentGateway.Proxy.Tests.Audit;

public sealed class AuditChainTests
{
    private static readonly byte[] Key = Encoding.UTF8.GetBytes("audit-key");

    [Fact]
    public void A_keyed_chain_verifies_only_with_its_key_and_a_recomputed_edit_is_caught()
    {
        var lines = Chain(Key, "a", "b", "c");

        Assert.Null(AuditChain.Verify(lines, Key));
        Assert.Equal(1, AuditChain.Verify(lines, key: null)?.Line);

        // Someone without the key edits record 2 and recomputes an unkeyed hash for it.
        var forged = Chain(key: null, "a", "B", "c");
        Assert.Equal(2, AuditChain.Verify([lines[0], forged[1], lines[2]], Key)?.Line);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("audit-key")]
    public void The_writer_seals_bytes_exactly_as_verify_reads_them(string? key)
    {
        var keyBytes = key is null ? null : Encoding.UTF8.GetBytes(key);
        var body = Encoding.UTF8.GetBytes($$"""{"seq":1,"prev":"{{AuditChain.Genesis}}","detail":"naïve \u00e9 ✓"}""");
        using var line = new MemoryStream();

        AuditChain.WriteSealed(line, body, AuditChain.Hash(body, keyBytes));

        var written = Encoding.UTF8.GetString(line.ToArray());
        Assert.EndsWith("\n", written, StringComparison.Ordinal);
        Assert.Equal(AuditChain.Seal(Encoding.UTF8.GetString(body), keyBytes), written.TrimEnd('\n'));
        Assert.Null(AuditChain.Verify([written.TrimEnd('\n')], keyBytes));
    }

    [Fact]
    public void Reordered_and_duplicated_records_break_the_chain()
    {
        var lines = Chain(key: null, "a", "b", "c");

        Assert.Equal(2, AuditChain.Verify([lines[0], lines[2], lines[1]], key: null)?.Line);
        Assert.Equal(3, AuditChain.Verify([lines[0], lines[1], lines[1]], key: null)?.Line);
    }

    private static List<string> Chain(byte[]? key, params string[] events)
    {
        var previous = AuditChain.Genesis;
        var lines = new List<string>();
        for (var i = 0; i < events.Length; i++)
        {
            var line = AuditChain.Seal($$"""{"seq":{{i + 1}},"prev":"{{previous}}","event":"{{events[i]}}"}""", key);
            AuditChain.TryReadTail(line, out _, out previous);
            lines.Add(line);
        }

        return lines;
    }
}
