using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace AgentGateway.Proxy.Identity;

/// <summary>Successful token validations, by (token hash, revision), each until its own expiry.
/// Bounded: when full it is emptied, which costs only re-verification.</summary>
internal sealed class ValidationCache
{
    public static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(1);
    private const int Capacity = 50_000;
    private readonly ConcurrentDictionary<(UInt128 Hash, long Revision), (TokenCheck Check, DateTimeOffset Until)> _entries = new();

    public static (UInt128 Hash, long Revision) Key(string token, long revision)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(MemoryMarshal.AsBytes(token.AsSpan()), hash);
        return (BinaryPrimitives.ReadUInt128LittleEndian(hash), revision);
    }

    public bool TryGet((UInt128, long) key, DateTimeOffset now, out TokenCheck check)
    {
        if (_entries.TryGetValue(key, out var entry) && now < entry.Until)
        {
            check = entry.Check;
            return true;
        }

        check = default;
        return false;
    }

    public void Add((UInt128, long) key, TokenCheck check, DateTimeOffset until)
    {
        if (_entries.Count >= Capacity)
        {
            _entries.Clear();
        }

        _entries[key] = (check, until);
    }
}
