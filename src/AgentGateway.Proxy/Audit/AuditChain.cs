using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace AgentGateway.Proxy.Audit;

/// <summary>
/// The audit log's hash chain. Each record is one JSON line whose <c>prev</c> is the hash of the
/// record before it and whose last member, <c>hash</c>, is the hash of the record itself without
/// that member. Editing, deleting or reordering a record breaks the chain at that point. With a
/// key the hashes are HMAC-SHA-256, so the chain cannot be recomputed by someone without the key.
/// </summary>
public static class AuditChain
{
    public const string Genesis = "0000000000000000000000000000000000000000000000000000000000000000";

    private const string HashMember = ",\"hash\":\"";

    /// <summary>What follows a record's body (without its closing brace): the hash member's start.</summary>
    internal static ReadOnlySpan<byte> HashMemberUtf8 => ",\"hash\":\""u8;

    /// <summary>The hash of <paramref name="body"/> (a record's JSON text without its hash member).</summary>
    public static string Hash(ReadOnlySpan<byte> body, byte[]? key) =>
        Convert.ToHexStringLower(key is null ? SHA256.HashData(body) : HMACSHA256.HashData(key, body));

    /// <summary>Appends the hash member to <paramref name="body"/>, which ends with '}'.</summary>
    public static string Seal(string body, byte[]? key)
    {
        var hash = Hash(Encoding.UTF8.GetBytes(body), key);
        return string.Concat(body.AsSpan(0, body.Length - 1), HashMember, hash, "\"}");
    }

    /// <summary>Reads the sequence number and hash of a sealed line (to continue a chain after a restart).</summary>
    public static bool TryReadTail(string line, out long seq, out string hash)
    {
        seq = 0;
        hash = Genesis;
        try
        {
            using var json = JsonDocument.Parse(line);
            if (json.RootElement.TryGetProperty("seq", out var s) && s.TryGetInt64(out seq)
                && json.RootElement.TryGetProperty("hash", out var h) && h.GetString() is { Length: 64 } text)
            {
                hash = text;
                return true;
            }
        }
        catch (JsonException)
        {
        }

        return false;
    }

    /// <summary>Checks a whole log: null when the chain is intact, else the first broken record and why.</summary>
    public static (long Line, string Reason)? Verify(IEnumerable<string> lines, byte[]? key)
    {
        var previous = Genesis;
        long expectedSeq = -1;
        long number = 0;
        foreach (var line in lines)
        {
            number++;
            if (line.Length == 0)
            {
                return (number, "empty line");
            }

            var at = line.LastIndexOf(HashMember, StringComparison.Ordinal);
            if (at < 0 || !line.EndsWith("\"}", StringComparison.Ordinal))
            {
                return (number, "no hash member at the end of the record");
            }

            var stated = line[(at + HashMember.Length)..^2];
            var body = string.Concat(line.AsSpan(0, at), "}");
            if (!CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(stated), Encoding.ASCII.GetBytes(Hash(Encoding.UTF8.GetBytes(body), key))))
            {
                return (number, "the record was altered (its hash does not match its content)");
            }

            long seq;
            string prev;
            try
            {
                using var json = JsonDocument.Parse(line);
                seq = json.RootElement.GetProperty("seq").GetInt64();
                prev = json.RootElement.GetProperty("prev").GetString() ?? "";
            }
            catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
            {
                return (number, "not an audit record");
            }

            if (prev != previous)
            {
                return (number, "the chain is broken before this record (a record was removed, inserted or reordered)");
            }

            if (expectedSeq >= 0 && seq != expectedSeq)
            {
                return (number, $"sequence {seq} where {expectedSeq} was expected");
            }

            previous = stated;
            expectedSeq = seq + 1;
        }

        return null;
    }
}
