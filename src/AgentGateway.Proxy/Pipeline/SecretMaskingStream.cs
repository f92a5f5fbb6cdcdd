using System.Buffers;
using System.Text;
using AgentGateway.Proxy.Inspection;
using AgentGateway.Proxy.Policy;

namespace AgentGateway.Proxy.Pipeline;

/// <summary>
/// Sits in front of the agent's response body and overwrites every occurrence of a gateway
/// secret, in any of the forms an echo gives it (<see cref="SecretForms"/>), with asterisks of the
/// same length, so the body's length (and any Content-Length) is unchanged. A secret split across
/// two writes is still found: bytes at the end of a write that could be the start of a secret are
/// held back until the next write shows whether they are — and only those, so a stream of
/// server-sent events is not delayed by more than a partial match.
/// </summary>
internal sealed class SecretMaskingStream(Stream inner, SecretForms configured, SecretForms injected, Action onMasked) : ResponseFilterStream(inner)
{
    /// <summary>The bytes held back, as the upstream sent them: searched again with the next write,
    /// so a form that starts among them is found whole, even one starting inside a form found already.</summary>
    private byte[] _held = [];

    /// <summary>The same bytes as masked so far: the end of a form that started before them (and
    /// was written out masked) is masked here, though the next search no longer sees its start.</summary>
    private byte[] _heldMasked = [];

    private bool _masked;

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
        WriteAsync(buffer, last: false, cancellationToken);

    /// <summary>Writes the end of the body (an answer written whole): no later write can complete a
    /// form, so nothing is held back, and the end is not searched for partial forms.</summary>
    public ValueTask WriteLastAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken) =>
        WriteAsync(buffer, last: true, cancellationToken);

    private async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, bool last, CancellationToken cancellationToken)
    {
        var length = _held.Length + buffer.Length;
        var work = ArrayPool<byte>.Shared.Rent(length);
        var text = ArrayPool<char>.Shared.Rent(length);
        int keep;
        try
        {
            _held.CopyTo(work, 0);
            buffer.Span.CopyTo(work.AsSpan(_held.Length));
            keep = Mask(work.AsSpan(0, length), text.AsSpan(0, length), last);
            _held = keep == 0 ? [] : Encoding.Latin1.GetBytes(text, length - keep, keep);
            _heldMasked = work.AsSpan(length - keep, keep).ToArray();
        }
        finally
        {
            ArrayPool<char>.Shared.Return(text);
        }

        try
        {
            await Inner.WriteAsync(work.AsMemory(0, length - keep), cancellationToken);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(work);
        }
    }

    /// <summary>Writes what was held back: the body ended, so it was not a secret after all (but may
    /// end one that started before it, masked).</summary>
    public async Task CompleteAsync(CancellationToken cancellationToken)
    {
        if (_heldMasked.Length > 0)
        {
            await Inner.WriteAsync(_heldMasked, cancellationToken);
            _held = _heldMasked = [];
        }
    }

    /// <summary>Masks <paramref name="bytes"/> in place; the length of its end to hold back.</summary>
    private int Mask(Span<byte> bytes, Span<char> text, bool last)
    {
        // One character per byte: positions in the text are positions in the body. The text stays
        // as sent (only the bytes are masked), so each set of forms searches all of it.
        Encoding.Latin1.GetChars(bytes, text);
        if ((configured.Mask(text, bytes) | injected.Mask(text, bytes)) && !_masked)
        {
            _masked = true;
            onMasked();
        }

        for (var i = 0; i < _heldMasked.Length; i++)
        {
            if (_heldMasked[i] == (byte)'*')
            {
                bytes[i] = (byte)'*';
            }
        }

        return last ? 0 : Math.Max(configured.PendingAtEnd(text), injected.PendingAtEnd(text));
    }
}
