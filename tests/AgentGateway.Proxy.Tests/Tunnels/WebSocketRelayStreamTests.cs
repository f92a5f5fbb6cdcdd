using System.Buffers.Binary;
using System.Text;
using AgentGateway.Proxy.Policy;
using AgentGateway.Proxy.Sessions;
using AgentGateway.Proxy.Tunnels;

namespace AgentGateway.Proxy.Tests.Tunnels;

/// <summary>The agent's side of a WebSocket tunnel read as frames: messages admitted one by one
/// before any byte of them passes, secrets masked in whole messages whatever the fragmentation and
/// the write boundaries, protocol violations and oversized messages ending the tunnel, and a
/// close frame with the reason when the session ends. Every test feeds bytes one at a time too,
/// so no frame boundary can fall where the parser does not expect it.</summary>
public sealed class WebSocketRelayStreamTests
{
    private static readonly byte[] Secret = Encoding.UTF8.GetBytes("sk-canary-0123456789abcdef");

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(4096)]
    public async Task Every_message_from_the_agent_is_admitted_before_any_of_it_passes_and_passes_unchanged(int chunk)
    {
        var sent = Concat(
            Frame(WebSocketFrame.Text, fin: true, "one", masked: true),
            Frame(WebSocketFrame.Text, fin: false, "tw", masked: true),
            Frame(WebSocketFrame.Ping, fin: true, "p", masked: true),
            Frame(WebSocketFrame.Continuation, fin: true, "o", masked: true),
            Frame(WebSocketFrame.Binary, fin: true, new string('b', 70_000), masked: true));
        var agent = new FakeAgent(sent, chunk);
        var admitted = 0;
        var relay = new WebSocketRelayStream(agent, Policy(admit: _ => { admitted++; return ValueTask.FromResult<SessionEnd?>(null); }));

        var passed = await ReadAllAsync(relay);

        Assert.Equal(sent, passed);
        Assert.Equal(3, admitted);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4096)]
    public async Task A_refused_message_passes_not_one_byte_and_ends_the_session(int chunk)
    {
        var first = Frame(WebSocketFrame.Text, fin: true, "allowed", masked: true);
        var agent = new FakeAgent(Concat(first, Frame(WebSocketFrame.Text, fin: true, "over the limit", masked: true), Frame(WebSocketFrame.Text, fin: true, "after", masked: true)), chunk);
        var count = 0;
        var ended = new List<string>();
        var relay = new WebSocketRelayStream(agent, Policy(
            admit: _ => ValueTask.FromResult(++count > 1 ? SessionEnd.RateLimited("2 per 5 minutes") : null),
            end: e => ended.Add(e.Reason)));

        var passed = await ReadAllAsync(relay);

        Assert.Equal(first, WithoutClose(passed, 1008));
        Assert.Equal(["rate-limited"], ended);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(4096)]
    public async Task A_secret_split_across_fragments_and_writes_is_masked_before_any_of_it_reaches_the_agent(int chunk)
    {
        var text = "token: " + Encoding.UTF8.GetString(Secret) + " end";
        var cut = 12;
        var upstream = Concat(
            Frame(WebSocketFrame.Text, fin: false, text[..cut]),
            Frame(WebSocketFrame.Ping, fin: true, "are you there"),
            Frame(WebSocketFrame.Continuation, fin: false, text[cut..(cut + 5)]),
            Frame(WebSocketFrame.Continuation, fin: true, text[(cut + 5)..]),
            Frame(WebSocketFrame.Pong, fin: true, Encoding.UTF8.GetString(Secret)));
        var agent = new FakeAgent([], chunk);
        var masked = 0;
        var relay = new WebSocketRelayStream(agent, Policy(masked: () => masked++));

        foreach (var piece in upstream.Chunk(chunk))
        {
            await relay.WriteAsync(piece);
        }

        var frames = ReadFrames(agent.Received.ToArray());
        // The ping passes at once; the message only when whole, with every fragment's length kept.
        Assert.Equal([WebSocketFrame.Ping, WebSocketFrame.Text, WebSocketFrame.Continuation, WebSocketFrame.Continuation, WebSocketFrame.Pong], frames.Select(f => f.Opcode));
        var message = string.Concat(frames.Where(f => !f.IsControlFrame).Select(f => f.Text));
        Assert.Equal("token: " + new string('*', Secret.Length) + " end", message);
        Assert.Equal(new string('*', Secret.Length), frames[^1].Text);
        Assert.DoesNotContain(Encoding.UTF8.GetString(Secret), Encoding.UTF8.GetString(agent.Received.ToArray()), StringComparison.Ordinal);
        Assert.Equal(1, masked);
    }

    [Theory]
    [InlineData("base64")]
    [InlineData("hex")]
    [InlineData("utf-16")]
    public async Task A_secret_echoed_in_an_encoded_form_is_masked_too(string form)
    {
        var secret = Encoding.UTF8.GetString(Secret);
        var encoded = form switch
        {
            "base64" => Convert.ToBase64String(Secret),
            "hex" => Convert.ToHexString(Secret),
            _ => string.Concat(secret.Select(c => c + "\0")),
        };
        var agent = new FakeAgent([], 4096);
        var relay = new WebSocketRelayStream(agent, Policy());

        await relay.WriteAsync(Frame(WebSocketFrame.Text, fin: true, "echo: " + encoded + " end"));

        var message = Assert.Single(ReadFrames(agent.Received.ToArray())).Text;
        Assert.StartsWith("echo: ", message, StringComparison.Ordinal);
        Assert.EndsWith(" end", message, StringComparison.Ordinal);
        Assert.DoesNotContain(encoded, message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Nothing_of_an_unfinished_message_reaches_the_agent()
    {
        var agent = new FakeAgent([], 1);
        var relay = new WebSocketRelayStream(agent, Policy());

        await relay.WriteAsync(Frame(WebSocketFrame.Text, fin: false, "sk-canary-0123"));

        Assert.Empty(agent.Received.ToArray());
    }

    [Theory]
    [InlineData("compressed")]
    [InlineData("masked")]
    [InlineData("unknown-opcode")]
    [InlineData("continuation-first")]
    public async Task A_frame_from_the_upstream_that_breaks_the_protocol_ends_the_tunnel_and_never_reaches_the_agent(string shape)
    {
        var frame = shape switch
        {
            // RSV1: permessage-deflate, never negotiated through the gateway.
            "compressed" => Frame(WebSocketFrame.Text, fin: true, "x", reserved: 4),
            "masked" => Frame(WebSocketFrame.Text, fin: true, "x", masked: true),
            "unknown-opcode" => Frame(0x3, fin: true, "x"),
            _ => Frame(WebSocketFrame.Continuation, fin: true, "x"),
        };
        var agent = new FakeAgent([], 4096);
        var ended = new List<string>();
        var relay = new WebSocketRelayStream(agent, Policy(end: e => ended.Add(e.Reason)));

        await relay.WriteAsync(frame);

        Assert.Equal(["protocol-error"], ended);
        await AssertOnlyCloseAsync(agent, 1002);
    }

    [Theory]
    [InlineData("unmasked")]
    [InlineData("fragmented-ping")]
    [InlineData("message-inside-message")]
    public async Task A_frame_from_the_agent_that_breaks_the_protocol_ends_the_tunnel_and_never_reaches_the_upstream(string shape)
    {
        // What came before the offending frame was valid and passes; the offending frame does not.
        var before = shape == "message-inside-message" ? Frame(WebSocketFrame.Text, fin: false, "x", masked: true) : [];
        var offending = shape switch
        {
            "unmasked" => Frame(WebSocketFrame.Text, fin: true, "x"),
            "fragmented-ping" => Frame(WebSocketFrame.Ping, fin: false, "x", masked: true),
            _ => Frame(WebSocketFrame.Text, fin: true, "y", masked: true),
        };
        var ended = new List<string>();
        var relay = new WebSocketRelayStream(new FakeAgent(Concat(before, offending), 4096), Policy(end: e => ended.Add(e.Reason)));

        var passed = await ReadAllAsync(relay);

        Assert.Equal(["protocol-error"], ended);
        Assert.Equal(before, WithoutClose(passed, 1002));
    }

    [Fact]
    public async Task A_message_larger_than_the_bound_ends_the_tunnel_unread()
    {
        var agent = new FakeAgent([], 4096);
        var ended = new List<string>();
        var relay = new WebSocketRelayStream(agent, Policy(end: e => ended.Add(e.Reason), maxMessage: 100));

        await relay.WriteAsync(Frame(WebSocketFrame.Text, fin: false, new string('a', 60)));
        await relay.WriteAsync(Frame(WebSocketFrame.Continuation, fin: true, new string('a', 60)));

        Assert.Equal(["message-too-large"], ended);
        await AssertOnlyCloseAsync(agent, 1009);
    }

    [Fact]
    public async Task Ending_the_session_closes_both_ends_with_the_reason_passes_nothing_more_and_then_drops_the_connection()
    {
        var agent = new FakeAgent(Frame(WebSocketFrame.Text, fin: true, "never passes", masked: true), 4096);
        var aborted = new TaskCompletionSource();
        var relay = new WebSocketRelayStream(agent, Policy(abort: () => aborted.TrySetResult()));

        relay.Close(SessionEnd.Revoked("support-bot"));
        var toUpstream = new byte[1024];
        var count = await relay.ReadAsync(toUpstream);
        var after = await relay.ReadAsync(toUpstream);
        await relay.WriteAsync(Frame(WebSocketFrame.Text, fin: true, "after the end"));
        await aborted.Task.WaitAsync(TimeSpan.FromSeconds(5));

        var close = Assert.Single(ReadFrames(agent.Received.ToArray()));
        Assert.Equal(WebSocketFrame.Close, close.Opcode);
        Assert.Equal(1008, BinaryPrimitives.ReadUInt16BigEndian(close.Payload));
        Assert.Equal("agent-revoked", Encoding.UTF8.GetString(close.Payload.AsSpan(2)));
        // The upstream is told too, in a client's (masked) close frame; then the agent's side is done.
        Assert.True(WebSocketFrame.TryRead(toUpstream.AsSpan(0, count), out var upstreamClose, out var header));
        Assert.Equal(WebSocketFrame.Close, upstreamClose.Opcode);
        Assert.True(upstreamClose.Masked);
        Assert.Equal(count, header + (int)upstreamClose.Length);
        Assert.Equal(0, after);
    }

    [Fact]
    public async Task A_tunnel_that_finished_by_itself_is_never_dropped_afterwards()
    {
        var aborted = false;
        var relay = new WebSocketRelayStream(new FakeAgent([], 4096), Policy(abort: () => aborted = true));

        relay.Close(SessionEnd.Revoked("support-bot"));
        await relay.DisposeAsync();
        await Task.Delay(TimeSpan.FromSeconds(1));

        Assert.False(aborted);
    }

    /// <summary>The agent got nothing but a close frame with <paramref name="code"/> (written as the tunnel closes).</summary>
    private static async Task AssertOnlyCloseAsync(FakeAgent agent, ushort code)
    {
        for (var i = 0; i < 100 && agent.Received.Length == 0; i++)
        {
            await Task.Delay(20);
        }

        var close = Assert.Single(ReadFrames(agent.Received.ToArray()));
        Assert.Equal(WebSocketFrame.Close, close.Opcode);
        Assert.Equal(code, BinaryPrimitives.ReadUInt16BigEndian(close.Payload));
    }

    private static RelayPolicy Policy(
        Func<CancellationToken, ValueTask<SessionEnd?>>? admit = null, Action<SessionEnd>? end = null, Action? masked = null, Action? abort = null, int maxMessage = 1024 * 1024) =>
        new(admit, [SecretForms.Of([Encoding.UTF8.GetString(Secret)])], maxMessage, end ?? (_ => { }), masked ?? (() => { }), abort ?? (() => { }), TimeProvider.System);

    private static async Task<byte[]> ReadAllAsync(Stream relay)
    {
        using var passed = new MemoryStream();
        var buffer = new byte[1000];
        int read;
        while ((read = await relay.ReadAsync(buffer)) > 0)
        {
            passed.Write(buffer, 0, read);
        }

        return passed.ToArray();
    }

    /// <summary>What passed to the upstream before the close frame the relay ends it with (masked, as
    /// a client's), checked to carry <paramref name="code"/>.</summary>
    private static byte[] WithoutClose(byte[] passed, ushort code)
    {
        var at = 0;
        while (true)
        {
            Assert.True(WebSocketFrame.TryRead(passed.AsSpan(at), out var frame, out var header), "no close frame at the end");
            var end = at + header + (int)frame.Length;
            if (frame.Opcode == WebSocketFrame.Close && end == passed.Length)
            {
                Assert.True(frame.Masked);
                var payload = passed[(at + header)..end];
                for (var i = 0; i < payload.Length; i++)
                {
                    payload[i] ^= (byte)(frame.MaskKey >> (8 * (3 - (i % 4))));
                }

                Assert.Equal(code, BinaryPrimitives.ReadUInt16BigEndian(payload));
                return passed[..at];
            }

            at = end;
        }
    }

    private static byte[] Concat(params byte[][] parts) => [.. parts.SelectMany(p => p)];

    private static byte[] Frame(int opcode, bool fin, string text, bool masked = false, int reserved = 0)
    {
        var payload = Encoding.UTF8.GetBytes(text);
        var header = new List<byte> { (byte)((fin ? 0x80 : 0) | (reserved << 4) | opcode) };
        var maskBit = masked ? 0x80 : 0;
        if (payload.Length < 126)
        {
            header.Add((byte)(maskBit | payload.Length));
        }
        else if (payload.Length <= ushort.MaxValue)
        {
            header.Add((byte)(maskBit | 126));
            header.AddRange([(byte)(payload.Length >> 8), (byte)payload.Length]);
        }
        else
        {
            header.Add((byte)(maskBit | 127));
            var length = new byte[8];
            BinaryPrimitives.WriteUInt64BigEndian(length, (ulong)payload.Length);
            header.AddRange(length);
        }

        if (masked)
        {
            byte[] key = [0x37, 0xFA, 0x21, 0x3D];
            header.AddRange(key);
            for (var i = 0; i < payload.Length; i++)
            {
                payload[i] ^= key[i % 4];
            }
        }

        return [.. header, .. payload];
    }

    private static List<ReadFrame> ReadFrames(byte[] bytes)
    {
        var frames = new List<ReadFrame>();
        var at = 0;
        while (at < bytes.Length)
        {
            Assert.True(WebSocketFrame.TryRead(bytes.AsSpan(at), out var frame, out var header));
            // What goes to the agent (a client) is never masked.
            Assert.False(frame.Masked);
            frames.Add(new ReadFrame(frame.Opcode, bytes.AsSpan(at + header, (int)frame.Length).ToArray()));
            at += header + (int)frame.Length;
        }

        return frames;
    }

    private sealed record ReadFrame(int Opcode, byte[] Payload)
    {
        public string Text => Encoding.UTF8.GetString(Payload);

        public bool IsControlFrame => Opcode >= WebSocketFrame.Close;
    }

    /// <summary>The agent's connection: what it sends, handed out <c>chunk</c> bytes per read; what it receives, kept.</summary>
    private sealed class FakeAgent(byte[] sends, int chunk) : Stream
    {
        private int _at;

        public MemoryStream Received { get; } = new();

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var count = Math.Min(Math.Min(chunk, buffer.Length), sends.Length - _at);
            sends.AsSpan(_at, count).CopyTo(buffer.Span);
            _at += count;
            return ValueTask.FromResult(count);
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Received.Write(buffer.Span);
            return ValueTask.CompletedTask;
        }

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override void Write(byte[] buffer, int offset, int count) => Received.Write(buffer, offset, count);

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
