using System.Net;
using System.Text;
using AgentGateway.Proxy.Pipeline;
using AgentGateway.Proxy.Policy;

namespace AgentGateway.Proxy.Tests.Policy;

/// <summary>
/// The forms an echoed secret takes, each written by the encoder that makes it (not by hand), inside
/// the text an echo would wrap it in; found however the text is cut into writes.
/// </summary>
public sealed class SecretFormsTests
{
    /// <summary>Punctuation that each escaping writer treats differently, as an Azure-style key has.</summary>
    private const string Secret = "sk+live/0123456789=abc\"def";

    private static readonly SecretForms Forms = SecretForms.Of([Secret]);

    public static TheoryData<string, string> Echoes()
    {
        var header = "Authorization: Bearer " + Secret;
        var data = new TheoryData<string, string>
        {
            { "plain", $"you sent {Secret}!" },
            { "JSON (System.Text.Json)", System.Text.Json.JsonSerializer.Serialize(new { you_sent = Secret }) },
            { "JSON, lower-case \\u and \\/", """{"you_sent":"sk\u002blive\/0123456789\u003dabc\"def"}""" },
            { "URL (Uri.EscapeDataString)", "https://x.example/cb?token=" + Uri.EscapeDataString(Secret) },
            { "URL, lower-case hex", "?t=sk%2blive%2f0123456789%3dabc%22def" },
            { "form (WebUtility.UrlEncode)", "t=" + WebUtility.UrlEncode(Secret) },
            { "gRPC message (percent-encoded)", "invalid%20token:%20Bearer%20" + Uri.EscapeDataString(Secret) },
            { "HTML (WebUtility.HtmlEncode)", "<p>" + WebUtility.HtmlEncode(Secret) + "</p>" },
            { "HTML (System.Text.Encodings.Web)", "<p>" + System.Text.Encodings.Web.HtmlEncoder.Default.Encode(Secret) + "</p>" },
            { "HTML, hex entities with zeros", "sk&#x0002B;live&#47;0123456789&#X3d;abc&#34;def" },
            { "hex", "dump " + Convert.ToHexStringLower(Encoding.UTF8.GetBytes(Secret)) },
            { "HEX", "DUMP " + Convert.ToHexString(Encoding.UTF8.GetBytes(Secret)) },
            { "UTF-16", Encoding.Latin1.GetString(Encoding.Unicode.GetBytes("token " + Secret)) },
            { "UTF-16 big-endian", Encoding.Latin1.GetString(Encoding.BigEndianUnicode.GetBytes("token " + Secret)) },
        };

        // Base64 of a longer text puts the secret's bytes at each of the three alignments.
        for (var shift = 0; shift < 3; shift++)
        {
            var echoed = Convert.ToBase64String(Encoding.UTF8.GetBytes(new string('x', shift) + header));
            data.Add($"base64, shifted {shift}", "{\"echo\":\"" + echoed + "\"}");
            data.Add($"base64 without padding, shifted {shift}", echoed.TrimEnd('='));
            data.Add($"base64url, shifted {shift}", echoed.Replace('+', '-').Replace('/', '_').TrimEnd('='));
            data.Add($"base64 in JSON with \\/, shifted {shift}", echoed.Replace("/", "\\/", StringComparison.Ordinal));
        }

        data.Add("base64 of the secret alone", Convert.ToBase64String(Encoding.UTF8.GetBytes(Secret)));

        // Wrapped into lines as the base64 and xxd tools, MIME and PEM writers wrap: the line ends
        // fall at every place near the start of the secret's encoding, where its anchor is.
        foreach (var (name, lineEnd) in new[] { ("LF", "\n"), ("CRLF", "\r\n"), ("JSON \\n", "\\n"), ("JSON \\r\\n", "\\r\\n") })
        {
            for (var shift = 0; shift < 16; shift++)
            {
                var echoed = Convert.ToBase64String(Encoding.UTF8.GetBytes(new string('x', shift) + header));
                data.Add($"base64 wrapped at 20 with {name}, shifted {shift}", Wrap(echoed, 20, lineEnd));
            }
        }

        for (var shift = 0; shift < 8; shift++)
        {
            data.Add($"hex wrapped at 30 (xxd -p), shifted {shift}", Wrap(Convert.ToHexStringLower(Encoding.UTF8.GetBytes(new string('x', shift) + header)), 30, "\n"));
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Echoes))]
    public void Every_form_an_echo_gives_the_secret_is_found(string _, string echo)
    {
        Assert.True(Forms.IsIn(echo));
    }

    /// <summary>The response guard passes a body shorter than <see cref="SecretForms.Shortest"/> on
    /// unsearched: no part of any echo that short may hold a form.</summary>
    [Theory]
    [MemberData(nameof(Echoes))]
    public void No_text_shorter_than_the_shortest_form_holds_one(string _, string echo)
    {
        var (start, length) = Forms.Find(echo, 0);
        Assert.True(length >= Forms.Shortest, $"a form of {length} characters was found at {start}");
        for (var at = 0; at + Forms.Shortest - 1 <= echo.Length; at++)
        {
            Assert.False(Forms.IsIn(echo.AsSpan(at, Forms.Shortest - 1)));
        }
    }

    [Fact]
    public void The_shortest_form_is_the_secret_itself_or_the_shortest_encoding_kept()
    {
        // Its base64, matched from its fifth block on (a line end may have cut the four before).
        Assert.Equal(16, Forms.Shortest);
        Assert.Equal(5, SecretForms.Of(["short"]).Shortest);
        Assert.Equal(int.MaxValue, SecretForms.None.Shortest);
    }

    [Theory]
    [MemberData(nameof(Echoes))]
    public async Task Masking_finds_every_form_however_the_body_is_cut_into_writes(string _, string echo)
    {
        var whole = await MaskAsync(echo, []);

        Assert.NotEqual(echo, whole);
        Assert.Equal(echo.Length, whole.Length);
        Assert.False(Forms.IsIn(whole));
        for (var cut = 1; cut < echo.Length; cut++)
        {
            Assert.Equal(whole, await MaskAsync(echo, [cut]));
        }

        var random = new Random(echo.Length);
        for (var round = 0; round < 20; round++)
        {
            int[] cuts = [.. Enumerable.Range(0, 6).Select(_ => random.Next(1, echo.Length)).Distinct().Order()];
            Assert.Equal(whole, await MaskAsync(echo, cuts));
        }
    }

    public static TheoryData<string> NotTheSecret => new()
    {
        "sk+live/0123456789=abc\"de",
        "sk+live/0123456789=abc\"dEf",
        "sk%2Blive%2F0123456789%3Dabc%2def",
        "sk\\u002Glive/0123456789=abc\"def",
        "sk&#43live/0123456789=abc\"def",
        "sk&#x2C;live/0123456789=abc\"def",
        "sk+live/0123456789=abc\"\"def",
        Convert.ToBase64String(Encoding.UTF8.GetBytes("sk+live/01234X6789=abc\"def")),
        Convert.ToHexString(Encoding.UTF8.GetBytes("sk+live/01234X6789=abc\"def")),
        "",
    };

    [Theory]
    [MemberData(nameof(NotTheSecret))]
    public void Near_misses_are_not_taken_for_the_secret(string text)
    {
        Assert.False(Forms.IsIn(text));
    }

    [Fact]
    public async Task Only_what_could_still_become_a_secret_is_held_back()
    {
        using var sink = new MemoryStream();
        var stream = new SecretMaskingStream(sink, Forms, SecretForms.None, () => { });

        await stream.WriteAsync(Encoding.Latin1.GetBytes("data: {\"t\":\"sk\\u00"));
        Assert.Equal("data: {\"t\":\"", Encoding.Latin1.GetString(sink.ToArray()));
        await stream.WriteAsync(Encoding.Latin1.GetBytes("2Cnot\"}\n\n"));
        Assert.Equal("data: {\"t\":\"sk\\u002Cnot\"}\n\n", Encoding.Latin1.GetString(sink.ToArray()));
    }

    private static string Wrap(string text, int columns, string lineEnd) =>
        string.Join(lineEnd, text.Chunk(columns).Select(line => new string(line)));

    private static async Task<string> MaskAsync(string text, int[] cuts)
    {
        using var sink = new MemoryStream();
        var stream = new SecretMaskingStream(sink, Forms, SecretForms.None, () => { });
        var bytes = Encoding.Latin1.GetBytes(text);
        var at = 0;
        foreach (var cut in cuts.Append(bytes.Length))
        {
            await stream.WriteAsync(bytes.AsMemory(at, cut - at));
            at = cut;
        }

        await stream.CompleteAsync(CancellationToken.None);
        return Encoding.Latin1.GetString(sink.ToArray());
    }
}
