using System.Collections.Concurrent;
using System.IO.Hashing;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Security.Cryptography;

namespace AgentGateway.Proxy.Identity;

/// <summary>Successful token validations, by (token hash, revision), each until its own expiry.
/// Bounded: when full it is emptied, which costs only re-verification.</summary>
/// <remarks>
/// The key is a 128-bit XXH3 hash of the token's characters under a seed drawn at random for each
/// process: read straight from the request's header, with no copy and no SHA-256 per request. That
/// hash is not cryptographic, and need not be: an entry answers only for the token it was made for.
/// On every hit the presented token is compared with the stored one in full, in constant time, so a
/// collision — found by chance or by an attacker — is a miss and a fresh validation, never one token
/// validating as another. The random seed keeps anyone from precomputing colliding tokens to crowd
/// one bucket (the key alone is never trusted). The token is held anyway: the cached result's
/// <see cref="Microsoft.IdentityModel.JsonWebTokens.JsonWebToken"/> is made of it.
/// </remarks>
internal sealed class ValidationCache
{
    public static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(1);
    private const int Capacity = 50_000;
    private static readonly long Seed = BitConverter.ToInt64(RandomNumberGenerator.GetBytes(sizeof(long)));
    private readonly ConcurrentDictionary<(UInt128 Hash, long Revision), Entry> _entries = new();

    public static (UInt128 Hash, long Revision) Key(ReadOnlySpan<char> token, long revision) =>
        (XxHash128.HashToUInt128(MemoryMarshal.AsBytes(token), Seed), revision);

    /// <summary>The cached check of <paramref name="token"/>, and the token as a string (the one it
    /// was validated as, so a hit needs no copy of the header's).</summary>
    public bool TryGet((UInt128, long) key, ReadOnlySpan<char> token, DateTimeOffset now, out TokenCheck check, out string validated)
    {
        if (_entries.TryGetValue(key, out var entry) && now < entry.Until && SameToken(entry.Token, token))
        {
            check = entry.Check;
            validated = entry.Token;
            return true;
        }

        check = default;
        validated = "";
        return false;
    }

    public void Add((UInt128, long) key, string token, TokenCheck check, DateTimeOffset until)
    {
        if (_entries.Count >= Capacity)
        {
            _entries.Clear();
        }

        _entries[key] = new Entry(token, check, until);
    }

    /// <summary>
    /// Every character compared whatever the first difference: how long a comparison takes says
    /// nothing about how much of a cached token another one shares. (A length difference ends it
    /// early; lengths are no secret.)
    /// </summary>
    /// <remarks>
    /// In place of <see cref="CryptographicOperations.FixedTimeEquals"/>, which compares a byte at a
    /// time with the JIT's optimisations switched off: on every request's token (about 1,600 bytes
    /// of UTF-16) that was 2.5 % of the gateway's CPU under load. This XORs 16 bytes at a time and
    /// ORs the differences into one accumulator, then the tail a character at a time. Nothing in
    /// the loops depends on the characters (no branch, no early exit, no table indexed by them), so
    /// the time depends on the length alone, as before; the result is only read at the end.
    /// NoInlining keeps the JIT from specialising the loops into a caller.
    /// </remarks>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static bool SameToken(ReadOnlySpan<char> stored, ReadOnlySpan<char> presented)
    {
        if (stored.Length != presented.Length)
        {
            return false;
        }

        var left = MemoryMarshal.AsBytes(stored);
        var right = MemoryMarshal.AsBytes(presented);
        var differences = Vector128<byte>.Zero;
        var i = 0;
        for (; i <= left.Length - Vector128<byte>.Count; i += Vector128<byte>.Count)
        {
            differences |= Vector128.Create(left[i..]) ^ Vector128.Create(right[i..]);
        }

        var tail = 0;
        for (; i < left.Length; i++)
        {
            tail |= left[i] ^ right[i];
        }

        return (differences == Vector128<byte>.Zero) & (tail == 0);
    }

    private sealed record Entry(string Token, TokenCheck Check, DateTimeOffset Until);
}
