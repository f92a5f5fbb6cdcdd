using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace AgentGateway.Credentials.Caching;

/// <summary>
/// Encrypts cached tokens before they leave the process (AES-256-GCM). The cache key is bound in
/// as associated data, so an entry copied under another key — or edited, or written by anyone
/// without the key — fails to open and reads as a miss.
/// </summary>
/// <remarks>
/// Layout: version (1 byte) · key id (8) · nonce (12) · tag (16) · ciphertext. The key id lets
/// operators rotate: entries sealed under a previous key still open while they live, new entries
/// use the current key. Nonces are random; at 2^32 seals per key the collision odds stay far below
/// GCM's limits for the token volumes a gateway writes between rotations.
/// </remarks>
public sealed class TokenSealer
{
    /// <summary>Key length in bytes (AES-256).</summary>
    public const int KeyBytes = 32;

    private const byte Version = 1;
    private const int KeyIdBytes = 8;
    private const int NonceBytes = 12;
    private const int TagBytes = 16;
    private const int HeaderBytes = 1 + KeyIdBytes;
    private const int Overhead = HeaderBytes + NonceBytes + TagBytes;

    private static readonly byte[] AssociatedDataLabel = "agentgateway/token-cache/v1\0"u8.ToArray();

    private readonly SealingKey _current;
    private readonly SealingKey[] _all;

    /// <param name="current">Seals and opens.</param>
    /// <param name="previous">Only open: keys being rotated out.</param>
    public TokenSealer(ReadOnlySpan<byte> current, IEnumerable<byte[]> previous)
    {
        _current = new SealingKey(current);
        _all = [_current, .. previous.Select(k => new SealingKey(k))];
    }

    public byte[] Seal(string cacheKey, ReadOnlySpan<byte> plaintext)
    {
        var sealedBytes = new byte[Overhead + plaintext.Length];
        var output = sealedBytes.AsSpan();
        output[0] = Version;
        BinaryPrimitives.WriteUInt64BigEndian(output[1..HeaderBytes], _current.Id);
        var nonce = output.Slice(HeaderBytes, NonceBytes);
        RandomNumberGenerator.Fill(nonce);
        var tag = output.Slice(HeaderBytes + NonceBytes, TagBytes);
        var ciphertext = output[Overhead..];
        using var aes = new AesGcm(_current.Key, TagBytes);
        aes.Encrypt(nonce, plaintext, ciphertext, tag, AssociatedData(cacheKey, output[..HeaderBytes]));
        return sealedBytes;
    }

    /// <summary>Opens an entry; null when it is not one this gateway sealed for this cache key.</summary>
    public byte[]? TryOpen(string cacheKey, ReadOnlySpan<byte> sealedBytes)
    {
        if (sealedBytes.Length < Overhead || sealedBytes[0] != Version)
        {
            return null;
        }

        var id = BinaryPrimitives.ReadUInt64BigEndian(sealedBytes[1..HeaderBytes]);
        var key = Array.Find(_all, k => k.Id == id);
        if (key is null)
        {
            return null;
        }

        var plaintext = new byte[sealedBytes.Length - Overhead];
        try
        {
            using var aes = new AesGcm(key.Key, TagBytes);
            aes.Decrypt(
                sealedBytes.Slice(HeaderBytes, NonceBytes),
                sealedBytes[Overhead..],
                sealedBytes.Slice(HeaderBytes + NonceBytes, TagBytes),
                plaintext,
                AssociatedData(cacheKey, sealedBytes[..HeaderBytes]));
            return plaintext;
        }
        catch (AuthenticationTagMismatchException)
        {
            return null;
        }
    }

    private static byte[] AssociatedData(string cacheKey, ReadOnlySpan<byte> header)
    {
        var keyBytes = Encoding.UTF8.GetByteCount(cacheKey);
        var data = new byte[AssociatedDataLabel.Length + header.Length + keyBytes];
        AssociatedDataLabel.CopyTo(data, 0);
        header.CopyTo(data.AsSpan(AssociatedDataLabel.Length));
        Encoding.UTF8.GetBytes(cacheKey, data.AsSpan(AssociatedDataLabel.Length + header.Length));
        return data;
    }

    private sealed class SealingKey
    {
        public SealingKey(ReadOnlySpan<byte> key)
        {
            if (key.Length != KeyBytes)
            {
                throw new ArgumentException($"a cache encryption key is {KeyBytes} bytes", nameof(key));
            }

            Key = key.ToArray();
            // A public identifier derived one-way from the key, so entries name their key without revealing it.
            Span<byte> hash = stackalloc byte[32];
            HMACSHA256.HashData(Key, "agentgateway/token-cache/key-id"u8, hash);
            Id = BinaryPrimitives.ReadUInt64BigEndian(hash);
        }

        public byte[] Key { get; }

        public ulong Id { get; }
    }
}
