using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace AgentGateway.FunctionalTests.Database;

/// <summary>A PostgreSQL client made of bytes, for what real drivers never send: garbage,
/// oversized or malformed packets, unknown versions, replication, foreign cancel keys.</summary>
public static class RawPg
{
    public static byte[] Startup(params (string Name, string Value)[] parameters) => Startup(3 << 16, parameters);

    public static byte[] Startup(int version, params (string Name, string Value)[] parameters)
    {
        var body = new List<byte>();
        body.AddRange(new byte[8]);
        foreach (var (name, value) in parameters)
        {
            body.AddRange(Encoding.UTF8.GetBytes(name));
            body.Add(0);
            body.AddRange(Encoding.UTF8.GetBytes(value));
            body.Add(0);
        }

        body.Add(0);
        var packet = body.ToArray();
        BinaryPrimitives.WriteInt32BigEndian(packet, packet.Length);
        BinaryPrimitives.WriteInt32BigEndian(packet.AsSpan(4), version);
        return packet;
    }

    public static byte[] Request(int code, params int[] rest)
    {
        var packet = new byte[8 + (4 * rest.Length)];
        BinaryPrimitives.WriteInt32BigEndian(packet, packet.Length);
        BinaryPrimitives.WriteInt32BigEndian(packet.AsSpan(4), code);
        for (var i = 0; i < rest.Length; i++)
        {
            BinaryPrimitives.WriteInt32BigEndian(packet.AsSpan(8 + (4 * i)), rest[i]);
        }

        return packet;
    }

    public static byte[] Password(string password)
    {
        var body = Encoding.UTF8.GetBytes(password + "\0");
        var message = new byte[5 + body.Length];
        message[0] = (byte)'p';
        BinaryPrimitives.WriteInt32BigEndian(message.AsSpan(1), 4 + body.Length);
        body.CopyTo(message, 5);
        return message;
    }

    /// <summary>Sends <paramref name="bytes"/> and reads until the gateway closes the connection (or
    /// <paramref name="timeout"/> passes, which a test then treats as "still open").</summary>
    public static async Task<(byte[] Received, bool Closed)> ExchangeAsync(IPEndPoint endpoint, byte[] bytes, TimeSpan? timeout = null, byte[]? then = null)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(endpoint);
        await using var stream = client.GetStream();
        await stream.WriteAsync(bytes);
        var received = new MemoryStream();
        var buffer = new byte[8192];
        using var deadline = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(10));
        var sentThen = false;
        try
        {
            while (true)
            {
                var read = await stream.ReadAsync(buffer, deadline.Token);
                if (read == 0)
                {
                    return (received.ToArray(), true);
                }

                received.Write(buffer, 0, read);
                if (then is not null && !sentThen)
                {
                    sentThen = true;
                    await stream.WriteAsync(then, deadline.Token);
                }
            }
        }
        catch (OperationCanceledException)
        {
            return (received.ToArray(), false);
        }
        catch (IOException)
        {
            return (received.ToArray(), true);
        }
    }

    /// <summary>The SQLSTATE and message of the first ErrorResponse in <paramref name="received"/>, or null.</summary>
    public static (string Code, string Message, string Severity)? Error(byte[] received)
    {
        var at = 0;
        while (at + 5 <= received.Length)
        {
            var type = received[at];
            var length = BinaryPrimitives.ReadInt32BigEndian(received.AsSpan(at + 1));
            if (length < 4 || at + 1 + length > received.Length)
            {
                return null;
            }

            if (type == (byte)'E')
            {
                string code = "", message = "", severity = "";
                var field = at + 5;
                while (field < at + 1 + length && received[field] != 0)
                {
                    var end = Array.IndexOf(received, (byte)0, field + 1);
                    var value = Encoding.UTF8.GetString(received, field + 1, end - field - 1);
                    switch ((char)received[field])
                    {
                        case 'C': code = value; break;
                        case 'M': message = value; break;
                        case 'V': severity = value; break;
                    }

                    field = end + 1;
                }

                return (code, message, severity);
            }

            at += 1 + length;
        }

        return null;
    }
}
