using System.Buffers;

namespace AgentGateway.Proxy.Pipeline;

/// <summary>
/// Sits in front of the agent's response body and overwrites every occurrence of a gateway
/// secret with asterisks of the same length, so the body's length (and any Content-Length) is
/// unchanged. A secret split across two writes is still found: bytes at the end of a write that
/// could be the start of a secret are held back until the next write shows whether they are —
/// and only those, so a stream of server-sent events is not delayed by more than a partial match.
/// </summary>
internal sealed class SecretMaskingStream(Stream inner, IReadOnlyList<byte[]> configured, byte[]? injected, Action onMasked) : ResponseFilterStream(inner)
{
    /// <summary>The configured secrets (shared per revision), then this request's injected token:
    /// indexed rather than concatenated, so no list is built per request or per write.</summary>
    private int SecretCount => configured.Count + (injected is null ? 0 : 1);

    private byte[] SecretAt(int index) => index < configured.Count ? configured[index] : injected!;

    private byte[] _held = [];
    private bool _masked;

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var length = _held.Length + buffer.Length;
        var work = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            _held.CopyTo(work, 0);
            buffer.Span.CopyTo(work.AsSpan(_held.Length));
            var span = work.AsSpan(0, length);
            Mask(span);
            var keep = PartialMatchAtEnd(span);
            _held = span[(length - keep)..].ToArray();
            await Inner.WriteAsync(work.AsMemory(0, length - keep), cancellationToken);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(work);
        }
    }

    /// <summary>Writes what was held back: the body ended, so it was not a secret after all.</summary>
    public async Task CompleteAsync(CancellationToken cancellationToken)
    {
        if (_held.Length > 0)
        {
            await Inner.WriteAsync(_held, cancellationToken);
            _held = [];
        }
    }

    private void Mask(Span<byte> span)
    {
        for (var i = 0; i < SecretCount; i++)
        {
            var secret = SecretAt(i);
            int at;
            while ((at = span.IndexOf(secret)) >= 0)
            {
                span.Slice(at, secret.Length).Fill((byte)'*');
                if (!_masked)
                {
                    _masked = true;
                    onMasked();
                }
            }
        }
    }

    /// <summary>The length of the longest end of <paramref name="span"/> that begins some secret.</summary>
    private int PartialMatchAtEnd(ReadOnlySpan<byte> span)
    {
        var longest = 0;
        for (var i = 0; i < SecretCount; i++)
        {
            var secret = SecretAt(i);
            var window = span[Math.Max(0, span.Length - (secret.Length - 1))..];
            var from = 0;
            int at;
            // Only where the secret's first byte occurs: a token is hundreds of bytes, and this
            // runs on every write.
            while (window.Length - from > longest && (at = window[from..].IndexOf(secret[0])) >= 0)
            {
                var start = from + at;
                var tail = window[start..];
                if (tail.SequenceEqual(secret.AsSpan(0, tail.Length)))
                {
                    longest = Math.Max(longest, tail.Length);
                    break;
                }

                from = start + 1;
            }
        }

        return longest;
    }
}
