using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Text;

namespace AgentGateway.Proxy.Database;

/// <summary>
/// The parts of the PostgreSQL frontend/backend protocol (version 3.0) the gateway reads and
/// writes itself: the untyped packets that open a connection (startup, SSLRequest,
/// GSSENCRequest, CancelRequest), the length-prefixed typed messages, and the few messages it
/// composes (authentication requests, errors, backend key data). Everything after the login is
/// relayed as bytes.
/// </summary>
internal static class PgWire
{
    public const int ProtocolV3 = 3 << 16;
    public const int SslRequest = 80877103;
    public const int GssEncRequest = 80877104;
    public const int CancelRequest = 80877102;

    /// <summary>PostgreSQL's own bound on a startup packet (MAX_STARTUP_PACKET_LENGTH).</summary>
    public const int MaxStartupPacket = 10_000;

    /// <summary>A message the gateway reads during the login (authentication exchanges, parameter
    /// status, notices) is never larger; a longer length is a broken or hostile peer.</summary>
    public const int MaxLoginMessage = 256 * 1024;

    public static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Takes one untyped packet (length, then body) off <paramref name="buffer"/>.</summary>
    /// <returns>True with the packet (length included); false when more bytes are needed. A length
    /// outside 8..<paramref name="max"/> sets <paramref name="malformed"/>.</returns>
    public static bool TryReadPacket(ref ReadOnlySequence<byte> buffer, int max, out byte[] packet, out bool malformed)
    {
        packet = [];
        malformed = false;
        if (buffer.Length < 4)
        {
            return false;
        }

        Span<byte> header = stackalloc byte[4];
        buffer.Slice(0, 4).CopyTo(header);
        var length = BinaryPrimitives.ReadInt32BigEndian(header);
        if (length < 8 || length > max)
        {
            malformed = true;
            return false;
        }

        if (buffer.Length < length)
        {
            return false;
        }

        packet = buffer.Slice(0, length).ToArray();
        buffer = buffer.Slice(length);
        return true;
    }

    /// <summary>Takes one typed message (type byte, length, body) off <paramref name="buffer"/>.</summary>
    public static bool TryReadMessage(ref ReadOnlySequence<byte> buffer, int max, out byte type, out byte[] body, out bool malformed)
    {
        type = 0;
        body = [];
        malformed = false;
        if (buffer.Length < 5)
        {
            return false;
        }

        Span<byte> header = stackalloc byte[5];
        buffer.Slice(0, 5).CopyTo(header);
        var length = BinaryPrimitives.ReadInt32BigEndian(header[1..]);
        if (length < 4 || length > max)
        {
            malformed = true;
            return false;
        }

        if (buffer.Length < 1 + length)
        {
            return false;
        }

        type = header[0];
        body = buffer.Slice(5, length - 4).ToArray();
        buffer = buffer.Slice(1 + length);
        return true;
    }

    /// <summary>The startup packet's parameters, read strictly: UTF-8, each name once, the list
    /// ended by exactly one terminator at the packet's end. Null when it is not well formed.</summary>
    public static Dictionary<string, string>? ReadParameters(ReadOnlySpan<byte> body)
    {
        var parameters = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            while (true)
            {
                var end = body.IndexOf((byte)0);
                if (end < 0)
                {
                    return null;
                }

                if (end == 0)
                {
                    return body.Length == 1 ? parameters : null;
                }

                var name = StrictUtf8.GetString(body[..end]);
                body = body[(end + 1)..];
                end = body.IndexOf((byte)0);
                if (end < 0 || !parameters.TryAdd(name, StrictUtf8.GetString(body[..end])))
                {
                    return null;
                }

                body = body[(end + 1)..];
            }
        }
        catch (DecoderFallbackException)
        {
            return null;
        }
    }

    public static byte[] StartupPacket(IEnumerable<KeyValuePair<string, string>> parameters)
    {
        var body = new ArrayBufferWriter<byte>(256);
        Int32(body, 0);
        Int32(body, ProtocolV3);
        foreach (var (name, value) in parameters)
        {
            CString(body, name);
            CString(body, value);
        }

        body.GetSpan(1)[0] = 0;
        body.Advance(1);
        var packet = body.WrittenSpan.ToArray();
        BinaryPrimitives.WriteInt32BigEndian(packet, packet.Length);
        return packet;
    }

    /// <summary>An 8-byte request (SSLRequest) or a 16-byte CancelRequest.</summary>
    public static byte[] Request(int code, int processId = 0, int secret = 0, bool cancel = false)
    {
        var packet = new byte[cancel ? 16 : 8];
        BinaryPrimitives.WriteInt32BigEndian(packet, packet.Length);
        BinaryPrimitives.WriteInt32BigEndian(packet.AsSpan(4), code);
        if (cancel)
        {
            BinaryPrimitives.WriteInt32BigEndian(packet.AsSpan(8), processId);
            BinaryPrimitives.WriteInt32BigEndian(packet.AsSpan(12), secret);
        }

        return packet;
    }

    public static void Message(IBufferWriter<byte> writer, byte type, ReadOnlySpan<byte> body)
    {
        var span = writer.GetSpan(5 + body.Length);
        span[0] = type;
        BinaryPrimitives.WriteInt32BigEndian(span[1..], 4 + body.Length);
        body.CopyTo(span[5..]);
        writer.Advance(5 + body.Length);
    }

    /// <summary>An authentication request ('R') with its code and any data after it.</summary>
    public static void Authentication(IBufferWriter<byte> writer, int code, ReadOnlySpan<byte> data = default)
    {
        var body = new byte[4 + data.Length];
        BinaryPrimitives.WriteInt32BigEndian(body, code);
        data.CopyTo(body.AsSpan(4));
        Message(writer, (byte)'R', body);
    }

    public static void BackendKeyData(IBufferWriter<byte> writer, int processId, int secret)
    {
        Span<byte> body = stackalloc byte[8];
        BinaryPrimitives.WriteInt32BigEndian(body, processId);
        BinaryPrimitives.WriteInt32BigEndian(body[4..], secret);
        Message(writer, (byte)'K', body);
    }

    /// <summary>An ErrorResponse (or, with <paramref name="notice"/>, a NoticeResponse): severity
    /// (localised and not), SQLSTATE, message. The text is the gateway's own, never a peer's.</summary>
    public static void Error(IBufferWriter<byte> writer, string severity, string sqlState, string message, bool notice = false)
    {
        var body = new ArrayBufferWriter<byte>(128);
        Field(body, 'S', severity);
        Field(body, 'V', severity);
        Field(body, 'C', sqlState);
        Field(body, 'M', message);
        body.GetSpan(1)[0] = 0;
        body.Advance(1);
        Message(writer, notice ? (byte)'N' : (byte)'E', body.WrittenSpan);

        static void Field(ArrayBufferWriter<byte> body, char code, string value)
        {
            body.GetSpan(1)[0] = (byte)code;
            body.Advance(1);
            CString(body, value);
        }
    }

    /// <summary>The SQLSTATE of an ErrorResponse body (field 'C'), or null.</summary>
    public static string? ErrorCode(ReadOnlySpan<byte> body)
    {
        while (body.Length > 1 && body[0] != 0)
        {
            var end = body[1..].IndexOf((byte)0);
            if (end < 0)
            {
                return null;
            }

            if (body[0] == (byte)'C')
            {
                return Encoding.ASCII.GetString(body.Slice(1, end));
            }

            body = body[(end + 2)..];
        }

        return null;
    }

    public static void Int32(IBufferWriter<byte> writer, int value)
    {
        BinaryPrimitives.WriteInt32BigEndian(writer.GetSpan(4), value);
        writer.Advance(4);
    }

    public static void CString(IBufferWriter<byte> writer, string value)
    {
        var count = Encoding.UTF8.GetByteCount(value);
        var span = writer.GetSpan(count + 1);
        Encoding.UTF8.GetBytes(value, span);
        span[count] = 0;
        writer.Advance(count + 1);
    }

    public static ValueTask<FlushResult> FlushAsync(PipeWriter writer, CancellationToken cancellationToken) => writer.FlushAsync(cancellationToken);
}

/// <summary>SQLSTATEs the gateway answers with.</summary>
internal static class SqlState
{
    /// <summary>invalid_authorization_specification: identity, revocation, expiry, grants.</summary>
    public const string InvalidAuthorization = "28000";

    /// <summary>invalid_password: the agent's token did not verify.</summary>
    public const string InvalidPassword = "28P01";

    /// <summary>protocol_violation: malformed packets, unsupported startup parameters (as PgBouncer says).</summary>
    public const string ProtocolViolation = "08P01";

    /// <summary>feature_not_supported: unknown protocol versions.</summary>
    public const string FeatureNotSupported = "0A000";

    /// <summary>insufficient_privilege: replication connections.</summary>
    public const string InsufficientPrivilege = "42501";

    /// <summary>sqlserver_rejected_establishment_of_sqlconnection: the upstream login failed.</summary>
    public const string UpstreamRefused = "08004";

    /// <summary>connection_failure: the upstream could not be reached or the hop credential had.</summary>
    public const string ConnectionFailure = "08006";
}
