using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace AgentGateway.FunctionalTests.Infrastructure;

/// <summary>
/// An upstream on a bare loopback socket that keeps every request exactly as the gateway wrote it
/// (request line, header block and body, byte for byte) and answers with whatever bytes a test
/// scripts — including answers no HTTP server library would produce (hop-by-hop headers, echoed
/// secrets, never answering at all).
/// </summary>
public sealed class RawUpstream : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentQueue<RawRequest> _received = new();
    private readonly Task _accepting;

    private RawUpstream()
    {
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public string Url => $"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";

    public IReadOnlyList<RawRequest> Received => [.. _received];

    /// <summary>The response for a request; default a small 200. Returning null leaves the
    /// connection open and silent (a hanging upstream).</summary>
    public Func<RawRequest, byte[]?> Respond { get; set; } = _ => Ok("ok");

    public static RawUpstream Start() => new();

    public static byte[] Ok(string body, string extraHeaders = "") =>
        Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {Encoding.UTF8.GetByteCount(body)}\r\n{extraHeaders}\r\n").Concat(Encoding.UTF8.GetBytes(body)).ToArray();

    /// <summary>Asserts the secret appears nowhere in any byte the upstream received.</summary>
    public void AssertNeverSaw(string secret)
    {
        foreach (var request in Received)
        {
            Assert.DoesNotContain(secret, request.Text, StringComparison.Ordinal);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        try
        {
            await _accepting;
        }
        catch (OperationCanceledException)
        {
        }

        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            _ = ServeAsync(socket);
        }
    }

    private async Task ServeAsync(Socket socket)
    {
        using var _ = socket;
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        var buffer = new List<byte>();
        var chunk = new byte[16 * 1024];
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var request = await ReadRequestAsync(stream, buffer, chunk);
                if (request is null)
                {
                    return;
                }

                _received.Enqueue(request);
                if (Respond(request) is not { } response)
                {
                    await Task.Delay(Timeout.Infinite, _stop.Token);
                    return;
                }

                await stream.WriteAsync(response, _stop.Token);
            }
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or SocketException)
        {
        }
    }

    /// <summary>One request: headers up to the blank line, then a Content-Length or chunked body
    /// (kept in its wire form).</summary>
    private async Task<RawRequest?> ReadRequestAsync(NetworkStream stream, List<byte> buffer, byte[] chunk)
    {
        int headerEnd;
        while ((headerEnd = IndexOf(buffer, "\r\n\r\n"u8)) < 0)
        {
            var read = await stream.ReadAsync(chunk, _stop.Token);
            if (read == 0)
            {
                return null;
            }

            buffer.AddRange(chunk.AsSpan(0, read));
        }

        var head = Encoding.Latin1.GetString(buffer.GetRange(0, headerEnd + 4).ToArray());
        var lines = head.Split("\r\n");
        var contentLength = lines.Select(l => l.Split(':', 2)).Where(p => p.Length == 2 && p[0].Equals("Content-Length", StringComparison.OrdinalIgnoreCase)).Select(p => int.Parse(p[1].Trim(), System.Globalization.CultureInfo.InvariantCulture)).FirstOrDefault();
        var chunked = lines.Any(l => l.StartsWith("Transfer-Encoding:", StringComparison.OrdinalIgnoreCase) && l.Contains("chunked", StringComparison.OrdinalIgnoreCase));
        var total = headerEnd + 4;
        if (chunked)
        {
            // The last chunk; searching from the header block's own CRLF also finds an empty body.
            int end;
            while ((end = IndexOf(buffer, "\r\n0\r\n\r\n"u8, headerEnd + 2)) < 0)
            {
                var read = await stream.ReadAsync(chunk, _stop.Token);
                if (read == 0)
                {
                    return null;
                }

                buffer.AddRange(chunk.AsSpan(0, read));
            }

            total = end + 7;
        }
        else
        {
            total += contentLength;
            while (buffer.Count < total)
            {
                var read = await stream.ReadAsync(chunk, _stop.Token);
                if (read == 0)
                {
                    return null;
                }

                buffer.AddRange(chunk.AsSpan(0, read));
            }
        }

        var bytes = buffer.GetRange(0, total).ToArray();
        buffer.RemoveRange(0, total);
        return new RawRequest(bytes, head);
    }

    private static int IndexOf(List<byte> buffer, ReadOnlySpan<byte> value, int from = 0)
    {
        for (var i = from; i <= buffer.Count - value.Length; i++)
        {
            var match = true;
            for (var j = 0; j < value.Length && match; j++)
            {
                match = buffer[i + j] == value[j];
            }

            if (match)
            {
                return i;
            }
        }

        return -1;
    }
}

/// <summary>One request as it arrived on the upstream's socket.</summary>
public sealed record RawRequest(byte[] Bytes, string Head)
{
    public string Text => Encoding.Latin1.GetString(Bytes);

    public string RequestLine => Head[..Head.IndexOf("\r\n", StringComparison.Ordinal)];

    public string Method => RequestLine.Split(' ')[0];

    public string Target => RequestLine.Split(' ')[1];

    /// <summary>The body as it arrived (in its wire form when chunked), read as UTF-8.</summary>
    public string Body => Encoding.UTF8.GetString(Bytes, Head.Length, Bytes.Length - Head.Length);

    /// <summary>Every value of a header, by case-insensitive name, in arrival order.</summary>
    public IReadOnlyList<string> Headers(string name) =>
        [.. Head.Split("\r\n").Skip(1).Select(l => l.Split(':', 2)).Where(p => p.Length == 2 && p[0].Equals(name, StringComparison.OrdinalIgnoreCase)).Select(p => p[1].Trim())];

    public IReadOnlyList<string> HeaderNames =>
        [.. Head.Split("\r\n").Skip(1).Select(l => l.Split(':', 2)).Where(p => p.Length == 2).Select(p => p[0])];
}
