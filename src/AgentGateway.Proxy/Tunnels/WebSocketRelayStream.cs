using System.Buffers;
using AgentGateway.Proxy.Policy;
using AgentGateway.Proxy.Sessions;

namespace AgentGateway.Proxy.Tunnels;

/// <summary>What a WebSocket relay asks of the gateway.</summary>
/// <param name="AdmitMessage">A new message from the agent is about to pass: null lets it, else why the tunnel ends (its grant's rate limit). Null: every message passes.</param>
/// <param name="Secrets">The gateway's secrets that must never reach the agent, in every form an echo gives them: the configured ones and the token injected for this tunnel.</param>
/// <param name="MaxMessageBytes">The largest message from the upstream the gateway holds to read whole.</param>
/// <param name="EndSession">Ends the session (through the registry, which records it and comes back to <see cref="WebSocketRelayStream.Close"/>).</param>
/// <param name="OnMasked">A secret was masked in a message (logged once per tunnel).</param>
/// <param name="Abort">Drops the connection under the tunnel.</param>
/// <param name="Time">Times the grace a closing tunnel gets before its connection is dropped.</param>
internal sealed record RelayPolicy(
    Func<CancellationToken, ValueTask<SessionEnd?>>? AdmitMessage,
    IReadOnlyList<SecretForms> Secrets,
    int MaxMessageBytes,
    Action<SessionEnd> EndSession,
    Action OnMasked,
    Action Abort,
    TimeProvider Time);

/// <summary>
/// The agent's side of a WebSocket tunnel, read as frames in both directions (RFC 6455), so that
/// a tunnel is held to what a request is held to:
/// <list type="bullet">
/// <item>agent → upstream: each new message is admitted before its first byte passes (the grant's
/// rate limit counts messages, not only the handshake); a frame that breaks the protocol ends
/// the tunnel;</item>
/// <item>upstream → agent: each message is held whole (up to a bound) and every gateway secret in
/// it, across its fragments, is overwritten with asterisks of the same length before any of it
/// passes; control frames pass at once, their payloads masked the same way. No extension is
/// negotiated (the handshake's <c>Sec-WebSocket-Extensions</c> is removed), so no compressed
/// message can hide a secret;</item>
/// <item>when the session ends (revocation, expiry, a reload, the rate limit) the agent gets a
/// close frame with the reason at once and nothing more passes either way; the upstream gets a
/// close frame too, and a short grace to finish the closing handshake (so the agent's connection
/// ends cleanly, its close frame delivered) before the connection is dropped.</item>
/// </list>
/// YARP copies between this stream and the upstream's; bytes are passed on as they were, only
/// masked.
/// </summary>
internal sealed class WebSocketRelayStream(Stream agent, RelayPolicy policy) : Stream
{
    private static readonly TimeSpan CloseBudget = TimeSpan.FromMilliseconds(500);

    /// <summary>How long a closing tunnel may take to finish before its connection is dropped.</summary>
    private static readonly TimeSpan CloseGrace = TimeSpan.FromMilliseconds(500);

    private readonly CancellationTokenSource _closed = new();
    private readonly Lock _lifetime = new();
    private byte[]? _upstreamClose;
    private int _upstreamCloseSent;
    private int _closeStarted;
    private bool _disposed;

    // agent → upstream: bytes read from the agent, [_inStart, _inEnd); the first _examined of them may pass.
    private readonly byte[] _in = new byte[16 * 1024];
    private int _inStart;
    private int _inEnd;
    private int _examined;
    private long _inPayloadLeft;
    private bool _inMessage;
    private SessionEnd? _stopWith;

    // upstream → agent: bytes not yet parsed, the frame being read, the message being held.
    private readonly SemaphoreSlim _writeGate = new(1, 1);
    private readonly ArrayBufferWriter<byte> _pending = new();
    private readonly ArrayBufferWriter<byte> _payload = new();
    private readonly ArrayBufferWriter<byte> _control = new(125);
    private readonly List<(byte[] Header, int Offset, int Length)> _frames = [];
    private (byte[] Header, WebSocketFrame Frame, ArrayBufferWriter<byte> Into, int Offset)? _current;
    private bool _outInMessage;
    private bool _masked;

    private int _closing;

    public override bool CanRead => true;

    public override bool CanWrite => true;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    private bool Closing => Volatile.Read(ref _closing) != 0;

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (true)
        {
            if (Closing)
            {
                // The upstream gets a close frame of its own, then the agent's side is finished.
                return _upstreamClose is { } close && buffer.Length >= close.Length && Interlocked.Exchange(ref _upstreamCloseSent, 1) == 0
                    ? Copy(close, buffer)
                    : 0;
            }

            var available = _inEnd - _inStart;
            while (_stopWith is null && _examined < available)
            {
                if (_inPayloadLeft > 0)
                {
                    var take = (int)Math.Min(_inPayloadLeft, available - _examined);
                    _examined += take;
                    _inPayloadLeft -= take;
                    continue;
                }

                if (!WebSocketFrame.TryRead(_in.AsSpan(_inStart + _examined, available - _examined), out var frame, out var headerLength))
                {
                    break;
                }

                if (frame.Problem(mustMask: true, _inMessage) is { } problem)
                {
                    _stopWith = SessionEnd.ProtocolError($"the agent broke the WebSocket protocol: {problem}");
                    break;
                }

                if (!frame.IsControl)
                {
                    if (!_inMessage && policy.AdmitMessage is { } admit && await admit(cancellationToken) is { } refused)
                    {
                        // Nothing of the refused message passes; what was admitted before it does.
                        _stopWith = refused;
                        break;
                    }

                    _inMessage = !frame.Fin;
                }

                _examined += headerLength;
                _inPayloadLeft = frame.Length;
            }

            if (_examined > 0)
            {
                var count = Math.Min(_examined, buffer.Length);
                _in.AsSpan(_inStart, count).CopyTo(buffer.Span);
                _inStart += count;
                _examined -= count;
                return count;
            }

            if (_stopWith is { } stop)
            {
                policy.EndSession(stop);
                Close(stop);
                continue;
            }

            if (_inStart > 0)
            {
                Buffer.BlockCopy(_in, _inStart, _in, 0, available);
                _inStart = 0;
                _inEnd = available;
            }

            int read;
            using (var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _closed.Token))
            {
                try
                {
                    read = await agent.ReadAsync(_in.AsMemory(_inEnd), linked.Token);
                }
                catch (OperationCanceledException) when (_closed.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
                {
                    // Closing: the agent is not read from again.
                    continue;
                }
            }

            if (read == 0)
            {
                return 0;
            }

            _inEnd += read;
        }
    }

    private static int Copy(byte[] bytes, Memory<byte> buffer)
    {
        bytes.CopyTo(buffer);
        return bytes.Length;
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await _writeGate.WaitAsync(cancellationToken);
        var released = false;
        try
        {
            if (Closing)
            {
                return;
            }

            _pending.Write(buffer.Span);
            var consumed = 0;
            var wrote = false;
            while (true)
            {
                var unread = _pending.WrittenSpan[consumed..];
                if (_current is not { } current)
                {
                    if (!WebSocketFrame.TryRead(unread, out var frame, out var headerLength))
                    {
                        break;
                    }

                    var stop = frame.Problem(mustMask: false, _outInMessage) is { } problem
                        ? SessionEnd.ProtocolError($"the upstream broke the WebSocket protocol: {problem}")
                        : !frame.IsControl && _payload.WrittenCount + frame.Length > policy.MaxMessageBytes
                            ? SessionEnd.MessageTooLarge($"a message from the upstream is larger than the {policy.MaxMessageBytes} bytes the gateway reads whole")
                            : null;
                    if (stop is not null)
                    {
                        // Released first: closing writes the agent its close frame under the same gate.
                        _pending.ResetWrittenCount();
                        _writeGate.Release();
                        released = true;
                        policy.EndSession(stop);
                        Close(stop);
                        return;
                    }

                    // Control frames may come between the fragments of a message: their payloads
                    // are kept apart, and each passes as soon as it is complete.
                    var into = frame.IsControl ? _control : _payload;
                    if (frame.IsControl)
                    {
                        _control.ResetWrittenCount();
                    }
                    else
                    {
                        _outInMessage = !frame.Fin;
                    }

                    _current = current = (unread[..headerLength].ToArray(), frame, into, into.WrittenCount);
                    consumed += headerLength;
                    unread = unread[headerLength..];
                }

                var (header, currentFrame, target, offset) = current;
                var missing = (int)(currentFrame.Length - (target.WrittenCount - offset));
                var take = Math.Min(missing, unread.Length);
                target.Write(unread[..take]);
                consumed += take;
                if (take < missing)
                {
                    break;
                }

                _current = null;
                if (currentFrame.IsControl)
                {
                    await WriteMaskedAsync([(header, 0, (int)currentFrame.Length)], _control, cancellationToken);
                    wrote = true;
                    if (currentFrame.Opcode == WebSocketFrame.Close)
                    {
                        // The upstream closes: whatever part of a message was held goes no further.
                        _frames.Clear();
                        _payload.ResetWrittenCount();
                        _outInMessage = false;
                    }
                }
                else
                {
                    _frames.Add((header, offset, (int)currentFrame.Length));
                    if (currentFrame.Fin)
                    {
                        await WriteMaskedAsync(_frames, _payload, cancellationToken);
                        _frames.Clear();
                        _payload.ResetWrittenCount();
                        wrote = true;
                    }
                }
            }

            Keep(consumed);
            if (wrote)
            {
                await agent.FlushAsync(cancellationToken);
            }
        }
        finally
        {
            if (!released)
            {
                _writeGate.Release();
            }
        }
    }

    /// <summary>Ends the tunnel for the agent: a close frame saying why, then the connection is dropped.</summary>
    public void Close(SessionEnd end) => _ = CloseAsync(end);

    public override Task FlushAsync(CancellationToken cancellationToken) => agent.FlushAsync(cancellationToken);

    public override void Flush() => agent.Flush();

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            // Under the lock the delayed drop takes: once disposed, the connection is the server's
            // again and must not be dropped from here.
            lock (_lifetime)
            {
                _disposed = true;
            }

            agent.Dispose();
        }

        base.Dispose(disposing);
    }

    /// <summary>Writes whole frames to the agent, every secret in their payloads (taken together,
    /// so one split across fragments is found) overwritten first. The lengths do not change, so the
    /// headers stay true.</summary>
    private async Task WriteMaskedAsync(List<(byte[] Header, int Offset, int Length)> frames, ArrayBufferWriter<byte> payloads, CancellationToken cancellationToken)
    {
        var payload = System.Runtime.InteropServices.MemoryMarshal.AsMemory(payloads.WrittenMemory);
        if (Mask(payload.Span) && !_masked)
        {
            _masked = true;
            policy.OnMasked();
        }

        foreach (var (header, offset, length) in frames)
        {
            await agent.WriteAsync(header, cancellationToken);
            await agent.WriteAsync(payload.Slice(offset, length), cancellationToken);
        }
    }

    private bool Mask(Span<byte> span)
    {
        if (span.IsEmpty)
        {
            return false;
        }

        // Read one byte per character (Latin-1), as the response guard reads bodies, so a position
        // in the text is one in the bytes whatever the message's encoding: the forms (escaped,
        // base64, hex, UTF-16) are found as they are in a body.
        var rented = ArrayPool<char>.Shared.Rent(span.Length);
        try
        {
            var text = rented.AsSpan(0, span.Length);
            System.Text.Encoding.Latin1.GetChars(span, text);
            var any = false;
            foreach (var forms in policy.Secrets)
            {
                any |= !forms.IsEmpty && forms.Mask(text, span);
            }

            return any;
        }
        finally
        {
            ArrayPool<char>.Shared.Return(rented);
        }
    }

    private void Keep(int consumed)
    {
        if (consumed == 0)
        {
            return;
        }

        var rest = _pending.WrittenSpan[consumed..].ToArray();
        _pending.ResetWrittenCount();
        _pending.Write(rest);
    }

    private async Task CloseAsync(SessionEnd end)
    {
        if (Interlocked.Exchange(ref _closeStarted, 1) != 0)
        {
            return;
        }

        var code = CloseCode(end);
        _upstreamClose = WebSocketFrame.CloseFrame(code, end.Reason, masked: true);
        Volatile.Write(ref _closing, 1);
        try
        {
            // Wakes a read waiting on the agent: the upstream's close frame goes out next.
            await _closed.CancelAsync();
            using var budget = new CancellationTokenSource(CloseBudget, policy.Time);
            await _writeGate.WaitAsync(budget.Token);
            {
                try
                {
                    await agent.WriteAsync(WebSocketFrame.CloseFrame(code, end.Reason, masked: false), budget.Token);
                    await agent.FlushAsync(budget.Token);
                }
                finally
                {
                    _writeGate.Release();
                }
            }

            // The upstream answers the close and its side ends, which ends the tunnel and lets the
            // server close the agent's connection cleanly; one that does not is cut off.
            await Task.Delay(CloseGrace, policy.Time);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException or InvalidOperationException)
        {
            // The agent is gone or slow: the connection is dropped all the same.
        }
        finally
        {
            lock (_lifetime)
            {
                if (!_disposed)
                {
                    policy.Abort();
                }
            }
        }
    }

    private static ushort CloseCode(SessionEnd end) => end.Reason switch
    {
        "shutdown" => 1001,
        "protocol-error" => 1002,
        "message-too-large" => 1009,
        _ => 1008,
    };
}
