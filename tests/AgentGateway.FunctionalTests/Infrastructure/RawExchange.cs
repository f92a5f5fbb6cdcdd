using System.IO.Compression;
using System.Net.Sockets;
using System.Text;

namespace AgentGateway.FunctionalTests.Infrastructure;

/// <summary>
/// One request written byte for byte to the gateway and its answer kept as bytes, as an agent's
/// socket received them (HttpClient would decode codings, fold headers and hide the reason phrase):
/// the status line, every header line, the body de-chunked, and that body decoded if a coding
/// still labels it.
/// </summary>
public sealed record RawExchange(byte[] Bytes, string StatusLine, IReadOnlyList<KeyValuePair<string, string>> Headers, byte[] Body)
{
    /// <summary>Everything the agent received as text: one character per byte.</summary>
    public string Text => Encoding.Latin1.GetString(Bytes);

    public int Status => int.Parse(StatusLine.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The body with any content coding the agent was still sent undone, as UTF-8 text.</summary>
    public string DecodedBody => Encoding.UTF8.GetString(Decode(Body, [.. Header("Content-Encoding").SelectMany(v => v.Split(',')).Select(c => c.Trim().ToLowerInvariant())]));

    public IReadOnlyList<string> Header(string name) =>
        [.. Headers.Where(h => h.Key.Equals(name, StringComparison.OrdinalIgnoreCase)).Select(h => h.Value)];

    public static async Task<RawExchange> SendAsync(GatewayInstance gateway, string request)
    {
        using var client = new TcpClient();
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        await client.ConnectAsync(gateway.Address.Host, gateway.Address.Port, cancel.Token);
        await using var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request), cancel.Token);
        using var answer = new MemoryStream();
        try
        {
            await stream.CopyToAsync(answer, cancel.Token);
        }
        catch (IOException)
        {
            // A reset after the answer: what arrived is what the test judges.
        }

        return Parse(answer.ToArray());
    }

    public static RawExchange Parse(byte[] bytes)
    {
        var text = Encoding.Latin1.GetString(bytes);
        var end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        Assert.True(end > 0, "no complete header block: " + text);
        var lines = text[..end].Split("\r\n");
        var headers = lines.Skip(1).Select(l => l.Split(':', 2)).Select(p => KeyValuePair.Create(p[0], p.Length > 1 ? p[1].Trim() : "")).ToList();
        var body = bytes.AsSpan(end + 4).ToArray();
        if (headers.Any(h => h.Key.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase) && h.Value.Contains("chunked", StringComparison.OrdinalIgnoreCase)))
        {
            body = Dechunk(body);
        }

        return new RawExchange(bytes, lines[0], headers, body);
    }

    private static byte[] Dechunk(byte[] wire)
    {
        using var body = new MemoryStream();
        var at = 0;
        while (true)
        {
            var lineEnd = wire.AsSpan(at).IndexOf("\r\n"u8);
            if (lineEnd < 0)
            {
                break;
            }

            var size = Convert.ToInt32(Encoding.ASCII.GetString(wire, at, lineEnd).Split(';')[0], 16);
            at += lineEnd + 2;
            if (size == 0)
            {
                break;
            }

            body.Write(wire, at, Math.Min(size, wire.Length - at));
            at += size + 2;
        }

        return body.ToArray();
    }

    private static byte[] Decode(byte[] body, IReadOnlyList<string> codings)
    {
        for (var i = codings.Count - 1; i >= 0; i--)
        {
            using var input = new MemoryStream(body);
            using Stream decoder = codings[i] switch
            {
                "gzip" or "x-gzip" => new GZipStream(input, CompressionMode.Decompress),
                "deflate" => new ZLibStream(input, CompressionMode.Decompress),
                "br" => new BrotliStream(input, CompressionMode.Decompress),
                "identity" or "" => input,
                var other => throw new InvalidDataException($"the agent was sent a body in coding '{other}'"),
            };
            using var output = new MemoryStream();
            decoder.CopyTo(output);
            body = output.ToArray();
        }

        return body;
    }
}
