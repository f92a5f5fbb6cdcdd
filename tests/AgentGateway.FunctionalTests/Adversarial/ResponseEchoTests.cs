using System.IO.Compression;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using AgentGateway.FunctionalTests.Infrastructure;

namespace AgentGateway.FunctionalTests.Adversarial;

/// <summary>
/// The README's threat model, the hop secret coming back (findings 5 and 6): an upstream on a bare socket that
/// echoes the request it received — every header, so the injected credential too — in every
/// encoding and content coding an echo plausibly applies, and in every part of a response that
/// carries text: body, headers, header names, the reason phrase, an informational response. Two
/// secrets: an API key with punctuation (configured, and injected as it is) and an OAuth hop token
/// (a JWT the gateway fetched). What the agent's socket received is judged by
/// <see cref="EchoOracle"/>, which tries every decoding an agent could; the agent asks for every
/// content coding, and the upstream must never be told.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class ResponseEchoTests(GatewayFixture fx) : IAsyncLifetime
{
    private const string KeyVariable = "AGW_TEST_ECHO_KEY";

    /// <summary>Punctuation that JSON, URL and HTML writers each escape differently.</summary>
    private static readonly string Key = "ek+" + Guid.NewGuid().ToString("N")[..12] + "/" + Guid.NewGuid().ToString("N") + "==";

    private readonly RawUpstream _upstream = RawUpstream.Start();
    private string _token = "";

    public async Task InitializeAsync()
    {
        Environment.SetEnvironmentVariable(KeyVariable, Key);
        await fx.ResetAsync();
        _token = await fx.AgentTokenAsync();
    }

    public async Task DisposeAsync() => await _upstream.DisposeAsync();

    public static TheoryData<string, string> Shapes()
    {
        var data = new TheoryData<string, string>();
        foreach (var route in new[] { "key", "oauth" })
        {
            foreach (var shape in new[]
            {
                "plain", "json", "base64", "base64url-unpadded", "base64-json-slashes", "base64-wrapped-76",
                "base64-wrapped-64-crlf-in-json", "percent", "percent-lower-case", "html", "hex",
                "hex-lower-case", "hex-wrapped-60", "utf-16", "gzip", "x-gzip", "GZip", "deflate", "br", "gzip, br", "deflate, gzip, br", "identity, gzip",
                "gzip-then-br-in-two-headers", "gzip-of-base64", "gzip-split-chunks",
            })
            {
                data.Add(route, shape);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public async Task An_echo_in_any_encoding_or_coding_never_hands_the_agent_the_hop_secret(string route, string shape)
    {
        _upstream.Respond = request => Echo(request.Head, shape);
        await using var gateway = await GatewayInstance.StartAsync(Config());

        var exchange = await RawExchange.SendAsync(gateway, Get(route));

        var secret = HopSecret(route);
        Assert.Equal(200, exchange.Status);
        Assert.Empty(exchange.Header("Content-Encoding"));
        EchoOracle.AssertNotExposed(exchange.Text, secret);
        EchoOracle.AssertNotExposed(exchange.DecodedBody, secret, "the body");
        if (shape is "plain" or "gzip" or "x-gzip" or "GZip" or "deflate" or "br" or "gzip, br" or "deflate, gzip, br" or "identity, gzip"
            or "gzip-then-br-in-two-headers" or "gzip-split-chunks")
        {
            // Decoded and delivered, only the secret masked: the rest of the echo is there.
            Assert.Contains("GET /echo HTTP/1.1", exchange.DecodedBody, StringComparison.Ordinal);
        }

        Assert.Empty(_upstream.Received.Single().Headers("Accept-Encoding"));
        Assert.Contains(gateway.Logs.Lines, l => l.Contains("echoed a gateway secret in the response body", StringComparison.Ordinal));
        Assert.DoesNotContain(gateway.Logs.Lines, l => l.Contains(secret, StringComparison.Ordinal));
        _upstream.AssertNeverSaw(_token);
    }

    /// <summary>A coding the gateway cannot decode is a body it cannot search: refused, whatever
    /// the bytes are (here the plain echo, labelled as something else).</summary>
    [Theory]
    [InlineData("zstd")]
    [InlineData("compress")]
    [InlineData("gzip, zstd")]
    [InlineData("x-custom")]
    public async Task An_answer_in_a_coding_the_gateway_cannot_decode_is_refused(string coding)
    {
        _upstream.Respond = request => Answer("200 OK", $"Content-Type: text/plain\r\nContent-Encoding: {coding}\r\n", Encoding.Latin1.GetBytes(request.Head));
        await using var gateway = await GatewayInstance.StartAsync(Config());

        var exchange = await RawExchange.SendAsync(gateway, Get("oauth"));

        Assert.Equal(502, exchange.Status);
        Assert.Contains("\"reason\":\"upstream-unavailable\"", exchange.DecodedBody, StringComparison.Ordinal);
        EchoOracle.AssertNotExposed(exchange.Text, HopSecret("oauth"));
        _upstream.AssertNeverSaw(_token);
    }

    /// <summary>A transfer coding the gateway's client does not undo (it undoes chunked only) would
    /// reach the agent as coded bytes with no header saying so: refused.</summary>
    [Theory]
    [InlineData("gzip, chunked")]
    [InlineData("gzip")]
    public async Task An_answer_in_a_transfer_coding_other_than_chunked_is_refused(string coding)
    {
        _upstream.Respond = request =>
        {
            var coded = Compress("gzip", Encoding.Latin1.GetBytes(request.Head));
            return coding == "gzip"
                ? [.. Encoding.Latin1.GetBytes("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\r\n"), .. coded]
                : Chunked("Content-Type: text/plain\r\n", coded, pieces: 3, transferCoding: coding);
        };
        await using var gateway = await GatewayInstance.StartAsync(Config());

        var exchange = await RawExchange.SendAsync(gateway, Get("oauth"));

        Assert.Equal(502, exchange.Status);
        Assert.Contains("as a transfer coding", exchange.DecodedBody, StringComparison.Ordinal);
        _upstream.AssertNeverSaw(_token);
    }

    public static TheoryData<string, string> Places() => new()
    {
        { "key", "header, base64" },
        { "key", "Location, percent-encoded" },
        { "oauth", "Link" },
        { "oauth", "header name" },
        { "key", "reason phrase" },
        { "oauth", "reason phrase, base64" },
        { "oauth", "103 Early Hints" },
        { "key", "Set-Cookie, JSON-escaped" },
    };

    /// <summary>Finding 6's class: every part of an answer that carries text.</summary>
    [Theory]
    [MemberData(nameof(Places))]
    public async Task An_echo_in_any_part_of_the_answer_never_reaches_the_agent(string route, string place)
    {
        _upstream.Respond = request =>
        {
            var credential = request.Headers(route == "key" ? "X-Api-Key" : "Authorization").Single();
            var base64 = Convert.ToBase64String(Encoding.UTF8.GetBytes("you sent: " + credential));
            return place switch
            {
                "header, base64" => Answer("200 OK", $"X-Debug: {base64}\r\nX-Kept: yes\r\n", "ok"u8.ToArray()),
                "Location, percent-encoded" => Answer("302 Found", $"Location: /crm/cb?k={Uri.EscapeDataString(credential)}\r\nX-Kept: yes\r\n", []),
                "Link" => Answer("403 Forbidden", $"Link: </crm/errors?auth={Uri.EscapeDataString(credential)}>; rel=\"help\"\r\nX-Kept: yes\r\n", []),
                "header name" => Answer("200 OK", $"X-{credential["Bearer ".Length..]}: 1\r\nX-Kept: yes\r\n", "ok"u8.ToArray()),
                "reason phrase" => Answer($"403 bad key {credential}", "X-Kept: yes\r\n", []),
                "reason phrase, base64" => Answer($"403 {base64}", "X-Kept: yes\r\n", []),
                "103 Early Hints" => [.. Encoding.Latin1.GetBytes($"HTTP/1.1 103 Early Hints\r\nLink: </app.css?auth={credential}>; rel=preload\r\nX-Hint: {credential}\r\n\r\n"), .. Answer("200 OK", "X-Kept: yes\r\n", "ok"u8.ToArray())],
                _ => Answer("200 OK", $"Set-Cookie: s={System.Text.Json.JsonSerializer.Serialize(credential).Trim('"')}; Path=/\r\nX-Kept: yes\r\n", "ok"u8.ToArray()),
            };
        };
        await using var gateway = await GatewayInstance.StartAsync(Config());

        var exchange = await RawExchange.SendAsync(gateway, Get(route));

        var secret = HopSecret(route);
        EchoOracle.AssertNotExposed(exchange.Text, secret);
        Assert.Equal(["yes"], exchange.Header("X-Kept"));
        if (place != "103 Early Hints")
        {
            // An informational answer never gets as far as the guard: the gateway's client reads past it.
            Assert.Contains(gateway.Logs.Lines, l => l.Contains("echoed a gateway secret", StringComparison.Ordinal));
        }

        Assert.DoesNotContain(gateway.Logs.Lines, l => l.Contains(secret, StringComparison.Ordinal));
        _upstream.AssertNeverSaw(_token);
    }

    /// <summary>The secret the upstream was sent on <paramref name="route"/>: what must not come back.</summary>
    private string HopSecret(string route) => route == "key"
        ? Key
        : _upstream.Received[0].Headers("Authorization").Single()["Bearer ".Length..];

    private static byte[] Echo(string head, string shape)
    {
        var text = Encoding.Latin1.GetBytes(head);
        var base64 = Convert.ToBase64String(text);
        return shape switch
        {
            "plain" => Answer("200 OK", "Content-Type: text/plain\r\n", text),
            "json" => Answer("200 OK", "Content-Type: application/json\r\n", Encoding.UTF8.GetBytes(System.Text.Json.JsonSerializer.Serialize(new { headers = head }))),
            "base64" => Answer("200 OK", "Content-Type: application/json\r\n", Encoding.ASCII.GetBytes($"{{\"echo\":\"{base64}\"}}")),
            // The base64 command line tool wraps at 76 columns, PEM and MIME writers at 64 or 76 with CRLF.
            "base64-wrapped-76" => Answer("200 OK", "Content-Type: text/plain\r\n", Encoding.ASCII.GetBytes(Wrap(base64, 76, "\n"))),
            "base64-wrapped-64-crlf-in-json" => Answer("200 OK", "Content-Type: application/json\r\n", Encoding.ASCII.GetBytes(System.Text.Json.JsonSerializer.Serialize(new { echo = Wrap(base64, 64, "\r\n") }))),
            "base64url-unpadded" => Answer("200 OK", "Content-Type: text/plain\r\n", Encoding.ASCII.GetBytes(base64.Replace('+', '-').Replace('/', '_').TrimEnd('='))),
            "base64-json-slashes" => Answer("200 OK", "Content-Type: application/json\r\n", Encoding.ASCII.GetBytes($"{{\"echo\":\"{base64.Replace("/", "\\/", StringComparison.Ordinal)}\"}}")),
            "percent" => Answer("200 OK", "Content-Type: text/plain\r\n", Encoding.ASCII.GetBytes("https://x.example/?request=" + Uri.EscapeDataString(head))),
            "percent-lower-case" => Answer("200 OK", "Content-Type: text/plain\r\n", Encoding.ASCII.GetBytes("request=" + LowerCaseEscapes(Uri.EscapeDataString(head)))),
            "html" => Answer("200 OK", "Content-Type: text/html\r\n", Encoding.UTF8.GetBytes("<pre>" + WebUtility.HtmlEncode(head) + "</pre>")),
            "hex" => Answer("200 OK", "Content-Type: text/plain\r\n", Encoding.ASCII.GetBytes(Convert.ToHexString(text))),
            "hex-wrapped-60" => Answer("200 OK", "Content-Type: text/plain\r\n", Encoding.ASCII.GetBytes(Wrap(Convert.ToHexStringLower(text), 60, "\n"))),
            "hex-lower-case" => Answer("200 OK", "Content-Type: text/plain\r\n", Encoding.ASCII.GetBytes(Convert.ToHexStringLower(text))),
            "utf-16" => Answer("200 OK", "Content-Type: text/plain; charset=utf-16\r\n", Encoding.Unicode.GetBytes(head)),
            "gzip-of-base64" => Answer("200 OK", "Content-Type: text/plain\r\nContent-Encoding: gzip\r\n", Compress("gzip", Encoding.ASCII.GetBytes(base64))),
            // Two header lines, each one coding: the list is their concatenation (RFC 9110 §5.3).
            "gzip-then-br-in-two-headers" => Answer("200 OK", "Content-Type: text/plain\r\nContent-Encoding: gzip\r\nContent-Encoding: br\r\n", Compress("br", Compress("gzip", text))),
            "gzip-split-chunks" => Chunked("Content-Type: text/plain\r\nContent-Encoding: gzip\r\n", Compress("gzip", text), pieces: 7),
            _ => Answer("200 OK", $"Content-Type: text/plain\r\nContent-Encoding: {shape}\r\n", shape.Split(',').Select(c => c.Trim()).Aggregate(text, (body, coding) => Compress(coding, body))),
        };
    }

    private static string Wrap(string text, int columns, string lineEnd) =>
        string.Join(lineEnd, text.Chunk(columns).Select(line => new string(line))) + lineEnd;

    /// <summary><paramref name="escaped"/> with the hex digits of its percent-escapes in lower case, as some encoders write them.</summary>
    private static string LowerCaseEscapes(string escaped)
    {
        var chars = escaped.ToCharArray();
        for (var i = 0; i + 2 < chars.Length; i++)
        {
            if (chars[i] == '%')
            {
                chars[i + 1] = char.ToLowerInvariant(chars[i + 1]);
                chars[i + 2] = char.ToLowerInvariant(chars[i + 2]);
            }
        }

        return new string(chars);
    }

    private static byte[] Compress(string coding, byte[] body)
    {
        using var output = new MemoryStream();
        using (Stream encoder = coding.ToLowerInvariant() switch
        {
            "gzip" or "x-gzip" => new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true),
            "deflate" => new ZLibStream(output, CompressionLevel.Fastest, leaveOpen: true),
            "br" => new BrotliStream(output, CompressionLevel.Fastest, leaveOpen: true),
            _ => new MemoryStream(),
        })
        {
            if (coding == "identity")
            {
                return body;
            }

            encoder.Write(body);
        }

        return output.ToArray();
    }

    private static byte[] Answer(string status, string headers, byte[] body) =>
        [.. Encoding.Latin1.GetBytes($"HTTP/1.1 {status}\r\n{headers}Content-Length: {body.Length}\r\n\r\n"), .. body];

    private static byte[] Chunked(string headers, byte[] body, int pieces, string transferCoding = "chunked")
    {
        var wire = new List<byte>(Encoding.Latin1.GetBytes($"HTTP/1.1 200 OK\r\n{headers}Transfer-Encoding: {transferCoding}\r\n\r\n"));
        var size = (body.Length / pieces) + 1;
        for (var at = 0; at < body.Length; at += size)
        {
            var chunk = body.AsSpan(at, Math.Min(size, body.Length - at));
            wire.AddRange(Encoding.ASCII.GetBytes($"{chunk.Length:x}\r\n"));
            wire.AddRange(chunk.ToArray());
            wire.AddRange("\r\n"u8.ToArray());
        }

        wire.AddRange("0\r\n\r\n"u8.ToArray());
        return [.. wire];
    }

    private string Get(string route) =>
        $"GET /{(route == "key" ? "echo" : "crm/echo")} HTTP/1.1\r\n" +
        "Host: gateway.test\r\n" +
        $"Authorization: Bearer {_token}\r\n" +
        "Accept-Encoding: gzip, deflate, br, zstd, compress, identity;q=0\r\n" +
        "Connection: close\r\n\r\n";

    private JsonObject Config()
    {
        var config = fx.Config(withRedis: false);
        var gateway = config["Gateway"]!;
        gateway["Credentials"]!["echo-key"] = new JsonObject { ["Kind"] = "ApiKey", ["Header"] = "X-Api-Key", ["Format"] = "{secret}", ["Secret"] = "env:" + KeyVariable };
        gateway["Grants"]!["crm-read"]!["Routes"]!.AsArray().Add("echo");
        config.WithUpstream("crm", _upstream.Url);
        config["ReverseProxy"]!["Routes"]!["echo"] = new JsonObject
        {
            ["ClusterId"] = "crm",
            ["Match"] = new JsonObject { ["Path"] = "/echo" },
            ["Metadata"] = new JsonObject { ["Credential"] = "echo-key" },
        };
        return config;
    }
}
