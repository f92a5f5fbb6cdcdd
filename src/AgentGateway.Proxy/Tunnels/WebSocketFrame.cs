using System.Buffers.Binary;
using System.Text;

namespace AgentGateway.Proxy.Tunnels;

/// <summary>The header of one WebSocket frame (RFC 6455 §5.2).</summary>
internal readonly record struct WebSocketFrame(bool Fin, int Reserved, int Opcode, bool Masked, long Length, uint MaskKey)
{
    public const int Continuation = 0x0;
    public const int Text = 0x1;
    public const int Binary = 0x2;
    public const int Close = 0x8;
    public const int Ping = 0x9;
    public const int Pong = 0xA;

    /// <summary>The largest a header can be: 2 bytes, an 8-byte length, a 4-byte mask key.</summary>
    public const int MaxHeaderLength = 14;

    public bool IsControl => Opcode >= Close;

    /// <summary>Reads a header from the start of <paramref name="bytes"/>; false when more bytes are needed.</summary>
    public static bool TryRead(ReadOnlySpan<byte> bytes, out WebSocketFrame frame, out int headerLength)
    {
        frame = default;
        headerLength = 0;
        if (bytes.Length < 2)
        {
            return false;
        }

        var lengthCode = bytes[1] & 0x7F;
        var masked = (bytes[1] & 0x80) != 0;
        var extended = lengthCode switch { 126 => 2, 127 => 8, _ => 0 };
        headerLength = 2 + extended + (masked ? 4 : 0);
        if (bytes.Length < headerLength)
        {
            return false;
        }

        long length = extended switch
        {
            2 => BinaryPrimitives.ReadUInt16BigEndian(bytes[2..]),
            // The top bit must be 0 (§5.2); a negative length is refused by Problem.
            8 => (long)BinaryPrimitives.ReadUInt64BigEndian(bytes[2..]),
            _ => lengthCode,
        };
        var key = masked ? BinaryPrimitives.ReadUInt32BigEndian(bytes[(2 + extended)..]) : 0u;
        frame = new WebSocketFrame((bytes[0] & 0x80) != 0, (bytes[0] >> 4) & 0x7, bytes[0] & 0xF, masked, length, key);
        return true;
    }

    /// <summary>Null when the frame may come next from a peer that must (or must not) mask, inside
    /// (or outside) a fragmented message; else why not. No extension is ever negotiated through the
    /// gateway, so the reserved bits must be 0.</summary>
    public string? Problem(bool mustMask, bool inMessage)
    {
        if (Reserved != 0)
        {
            return "reserved bits set: no extension was negotiated";
        }

        if (Length < 0)
        {
            return "a frame length with its top bit set";
        }

        if (Masked != mustMask)
        {
            return mustMask ? "an unmasked frame from the client" : "a masked frame from the server";
        }

        return Opcode switch
        {
            Close or Ping or Pong when !Fin || Length > 125 => "a fragmented or oversized control frame",
            Close or Ping or Pong => null,
            Text or Binary when inMessage => "a new message inside a fragmented one",
            Continuation when !inMessage => "a continuation frame outside a message",
            Text or Binary or Continuation => null,
            _ => $"unknown opcode {Opcode}",
        };
    }

    /// <summary>A close frame from the gateway: a status code and a short (ASCII) reason; masked
    /// with a fresh key when it goes to the server, as a client's frames must be.</summary>
    public static byte[] CloseFrame(ushort code, string reason, bool masked)
    {
        var text = Encoding.ASCII.GetBytes(reason);
        if (text.Length > 123)
        {
            text = text[..123];
        }

        var payload = new byte[2 + text.Length];
        BinaryPrimitives.WriteUInt16BigEndian(payload, code);
        text.CopyTo(payload, 2);
        var header = masked ? 6 : 2;
        var frame = new byte[header + payload.Length];
        frame[0] = 0x80 | Close;
        frame[1] = (byte)((masked ? 0x80 : 0) | payload.Length);
        if (masked)
        {
            System.Security.Cryptography.RandomNumberGenerator.Fill(frame.AsSpan(2, 4));
            for (var i = 0; i < payload.Length; i++)
            {
                payload[i] ^= frame[2 + (i % 4)];
            }
        }

        payload.CopyTo(frame, header);
        return frame;
    }
}
