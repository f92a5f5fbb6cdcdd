using System.Buffers;
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
    public void The_writer_seals_bytes_exactly_as_verify_reads_them_record_after_record(string? key)
    {
        // One sealer seals every record of a writer, reusing its hash state: the second and third
        // records must be sealed as the first, each under the key and chained to the one before.
        var keyBytes = key is null ? null : Encoding.UTF8.GetBytes(key);
        using var sealer = new ChainSealer(keyBytes, AuditChain.Genesis);
        var written = new ArrayBufferWriter<byte>();
        var bodies = new List<string>();
        for (var seq = 1; seq <= 3; seq++)
        {
            var body = $$"""{"seq":{{seq}},"prev":"{{Encoding.ASCII.GetString(sealer.Previous)}}","detail":"naïve \u00e9 ✓ {{seq}}"}""";
            bodies.Add(body);
            sealer.Seal(Encoding.UTF8.GetBytes(body), written);
        }

        var text = Encoding.UTF8.GetString(written.WrittenSpan);
        Assert.EndsWith("\n", text, StringComparison.Ordinal);
        var lines = text.TrimEnd('\n').Split('\n');
        Assert.Equal(bodies.Select(b => AuditChain.Seal(b, keyBytes)), lines);
        Assert.Null(AuditChain.Verify(lines, keyBytes));
        Assert.NotNull(AuditChain.Verify(lines, key is null ? Key : null));
        Assert.True(AuditChain.TryReadTail(lines[^1], out var last, out var hash));
        Assert.Equal(3, last);
        Assert.Equal(hash, Encoding.ASCII.GetString(sealer.Previous));
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
