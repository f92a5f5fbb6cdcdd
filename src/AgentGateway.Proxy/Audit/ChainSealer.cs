using System.Buffers;
using System.Security.Cryptography;
using System.Text;

namespace AgentGateway.Proxy.Audit;

/// <summary>
/// Seals records into the chain for the audit writer, one record after the other: each sealed line
/// is the record's body with its hash member appended, and that hash becomes the next record's
/// <c>prev</c>. The same bytes <see cref="AuditChain.Seal"/> gives and <see cref="AuditChain.Verify"/>
/// reads; made for one writer, so the HMAC state, the hash and the previous hash are kept and reused
/// instead of being allocated per record (a key schedule, a digest array, two hex strings).
/// </summary>
/// <remarks>Without a key the hash state is kept too: the one-shot <c>SHA256.HashData</c> creates and
/// frees an OpenSSL digest context per call (the fetch of the digest's implementation, an
/// allocation, a free), where a kept context is only reset. Measured on 600-byte records in a
/// loop (load 11, three rounds): 1.47–1.82 µs of CPU per one-shot hash, 1.20–1.46 µs per kept one.</remarks>
internal sealed class ChainSealer : IDisposable
{
    private const int HexLength = 64;

    // SHA-256, or with a key an HMAC whose key schedule is computed once; GetHashAndReset keeps
    // the key and leaves the state ready for the next record.
    private readonly IncrementalHash _hash;
    private readonly byte[] _previous = new byte[HexLength];

    /// <param name="previous">The hash of the last record already in the file (lowercase hex), or <see cref="AuditChain.Genesis"/>.</param>
    public ChainSealer(byte[]? key, string previous)
    {
        _hash = key is null ? IncrementalHash.CreateHash(HashAlgorithmName.SHA256) : IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, key);
        if (previous.Length != HexLength || Encoding.ASCII.GetBytes(previous, _previous) != HexLength)
        {
            throw new ArgumentException("A chain hash is 64 hex characters.", nameof(previous));
        }
    }

    /// <summary>The hash of the last record sealed (or the chain's start), as ASCII hex: the next record's <c>prev</c>.</summary>
    public ReadOnlySpan<byte> Previous => _previous;

    /// <summary>Appends <paramref name="body"/> (one JSON object, UTF-8, ending with '}') sealed
    /// with its hash, and a newline, to <paramref name="destination"/>; its hash becomes <see cref="Previous"/>.</summary>
    public void Seal(ReadOnlySpan<byte> body, IBufferWriter<byte> destination)
    {
        Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
        _hash.AppendData(body);
        _hash.GetHashAndReset(digest);

        Convert.TryToHexStringLower(digest, _previous, out _);
        var tail = AuditChain.HashMemberUtf8;
        var line = destination.GetSpan(body.Length - 1 + tail.Length + HexLength + 3);
        body[..^1].CopyTo(line);
        var at = body.Length - 1;
        tail.CopyTo(line[at..]);
        at += tail.Length;
        _previous.CopyTo(line[at..]);
        at += HexLength;
        "\"}\n"u8.CopyTo(line[at..]);
        destination.Advance(at + 3);
    }

    public void Dispose() => _hash.Dispose();
}
