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

    /// <summary>Pairs of secrets whose occurrences share characters, and a text holding both so:
    /// the end of one is the start of the other, one is a prefix of the other (either listed first),
    /// one lies inside the other, and one followed by a near miss of the other.</summary>
    public static TheoryData<string, string, string, string> Overlapping()
    {
        const string Key = "sk+live/0123456789=abc";
        const string Tail = "0123456789=abc\"def+XYZ";
        const string Long = "sk+live/0123456789=abc\"def";
        var data = new TheoryData<string, string, string, string>();
        foreach (var (encoding, encode) in Encoders())
        {
            data.Add($"end of one is the start of the other, {encoding}", Key, Tail, encode("x " + Key + "\"def+XYZ y"));
            data.Add($"prefix listed first, {encoding}", Key, Long, encode("x " + Long + " y"));
            data.Add($"prefix listed last, {encoding}", Long, Key, encode("x " + Long + " y"));
            data.Add($"one inside the other, {encoding}", Long, "0123456789=abc", encode("x " + Long + " y"));
            data.Add($"the start of the other, not completed, {encoding}", Key, Tail, encode("x " + Key + "\"def+XYQ y"));
        }

        return data;
    }

    /// <summary>Every position a form of either secret covers is masked: what masking both at once
    /// masks is the union of what masking each alone masks, in every encoding.</summary>
    [Theory]
    [MemberData(nameof(Overlapping))]
    public void Overlapping_secrets_are_masked_as_the_union_of_each_alone(string _, string first, string second, string text)
    {
        var expected = Masked(text, SecretForms.Of([first])).Zip(Masked(text, SecretForms.Of([second])), (a, b) => a == '*' || b == '*' ? '*' : a);

        Assert.Equal(new string([.. expected]), Masked(text, SecretForms.Of([first, second])));
        // And with the two in separate sets, searched one after the other in the same text (a
        // configured secret and the injected token).
        var twoSets = Encoding.Latin1.GetBytes(text);
        SecretForms.Of([first]).Mask(text, twoSets);
        SecretForms.Of([second]).Mask(text, twoSets);
        Assert.Equal(new string([.. expected]), Encoding.Latin1.GetString(twoSets));
    }

    [Theory]
    [InlineData("sk+live/0123456789=abc", "0123456789=abc\"def+XYZ", "x sk+live/0123456789=abc\"def+XYZ y")]
    [InlineData("sk+live/0123456789", "sk+live/0123456789=abc\"def", "x sk+live/0123456789=abc\"def y")]
    public void No_character_of_overlapping_secrets_is_left_in_the_clear(string first, string second, string text)
    {
        foreach (var forms in new[] { SecretForms.Of([first, second]), SecretForms.Of([second, first]) })
        {
            Assert.Equal("x " + new string('*', text.Length - 4) + " y", Masked(text, forms));
        }
    }

    /// <summary>The same through the masking stream, the two secrets as configured and injected,
    /// however the body is cut into writes: a form that starts inside one held back is found whole,
    /// and the end of one written out masked stays masked when what follows it is no secret.</summary>
    [Theory]
    [MemberData(nameof(Overlapping))]
    public async Task Overlapping_secrets_are_masked_the_same_however_the_body_is_cut_into_writes(string _, string first, string second, string text)
    {
        var whole = Masked(text, SecretForms.Of([first, second]));
        SecretForms[][] splits = [[SecretForms.Of([first, second]), SecretForms.None], [SecretForms.Of([first]), SecretForms.Of([second])], [SecretForms.Of([second]), SecretForms.Of([first])]];
        foreach (var forms in splits)
        {
            for (var cut = 1; cut < text.Length; cut++)
            {
                Assert.Equal(whole, await MaskAsync(text, [cut], forms[0], forms[1]));
            }
        }
    }

    /// <summary>1-byte writes and several cuts at once, not one cut only: each write ends a piece
    /// of text the stream searches alone, so every overlap is cut at every place at once.</summary>
    [Theory]
    [MemberData(nameof(Overlapping))]
    public async Task Overlapping_secrets_are_masked_the_same_written_a_byte_at_a_time_or_cut_in_several_places(string _, string first, string second, string text)
    {
        var whole = Masked(text, SecretForms.Of([first, second]));
        SecretForms[][] splits = [[SecretForms.Of([first, second]), SecretForms.None], [SecretForms.Of([first]), SecretForms.Of([second])], [SecretForms.Of([second]), SecretForms.Of([first])]];
        foreach (var forms in splits)
        {
            Assert.Equal(whole, await MaskAsync(text, [.. Enumerable.Range(1, text.Length - 1)], forms[0], forms[1]));
            var random = new Random(text.Length);
            for (var round = 0; round < 10; round++)
            {
                int[] cuts = [.. Enumerable.Range(0, 5).Select(_ => random.Next(1, text.Length)).Distinct().Order()];
                Assert.Equal(whole, await MaskAsync(text, cuts, forms[0], forms[1]));
            }
        }
    }

    /// <summary>Secrets holding the characters escapes start with (<c>&amp;</c>, <c>%</c>, <c>\</c>),
    /// echoed with those characters in each escape their writers use; and a secret made of them.
    /// The escape starts with the very character it stands for, so a match that takes the character
    /// as itself and never tries the escape misses the secret.</summary>
    public static TheoryData<string, string, string> EscapedEscapeStarts()
    {
        var data = new TheoryData<string, string, string>();
        foreach (var (c, escapes) in new[]
        {
            ('&', new[] { "&amp;", "&#38;", "&#x26;", "&#X26;", "&#038;", "&#x0026;" }),
            ('%', ["%25"]),
            ('\\', ["\\\\", "\\u005C", "\\u005c"]),
        })
        {
            var secret = $"tok{c}en-0123456789abcdef";
            foreach (var escape in escapes)
            {
                data.Add(secret, $"tok{escape}en-0123456789abcdef", escape);
            }
        }

        data.Add("tok&en-0123456789abcdef", WebUtility.HtmlEncode("tok&en-0123456789abcdef"), "WebUtility.HtmlEncode");
        data.Add("tok&en-0123456789abcdef", System.Text.Encodings.Web.HtmlEncoder.Default.Encode("tok&en-0123456789abcdef"), "HtmlEncoder");
        data.Add("tok%en-0123456789abcdef", Uri.EscapeDataString("tok%en-0123456789abcdef"), "Uri.EscapeDataString");
        data.Add("tok\\en-0123456789abcdef", System.Text.Json.JsonSerializer.Serialize("tok\\en-0123456789abcdef").Trim('"'), "JsonSerializer");
        // Made of them: every reading of each character has to be carried on.
        const string Made = "&&%%\\\\&%\\-0123456789";
        data.Add(Made, Made, "as it is");
        data.Add(Made, WebUtility.HtmlEncode(Made), "WebUtility.HtmlEncode");
        data.Add(Made, System.Text.Encodings.Web.HtmlEncoder.Default.Encode(Made), "HtmlEncoder");
        data.Add(Made, Uri.EscapeDataString(Made), "Uri.EscapeDataString");
        data.Add(Made, System.Text.Json.JsonSerializer.Serialize(Made).Trim('"'), "JsonSerializer");
        data.Add(Made, "&amp;&#38;%25%\\u005c\\&#x26;%\\\\-0123456789", "mixed, some as themselves");
        return data;
    }

    [Theory]
    [MemberData(nameof(EscapedEscapeStarts))]
    public async Task A_secret_character_that_starts_escapes_is_found_in_each_of_its_escapes(string secret, string echoed, string _)
    {
        var forms = SecretForms.Of([secret]);
        var text = "x " + echoed + " y";

        Assert.True(forms.IsIn(echoed));
        Assert.Equal("x " + new string('*', echoed.Length) + " y", await MaskedEverywhereAsync(text, forms));
    }

    /// <summary>Where the text reads both as the character and as the start of its escape, and only
    /// the escape completes the secret, or only the character does.</summary>
    [Theory]
    [InlineData("a&amp;b-0123456789", "x a&amp;amp;b-0123456789 y", "x ********************** y")]
    [InlineData("a&amp;b-0123456789", "x a&amp;b-0123456789 y", "x ****************** y")]
    [InlineData("a\\\\b-0123456789", "x a\\\\\\b-0123456789 y", "x **************** y")]
    [InlineData("a%25b-0123456789", "x a%2525b-0123456789 y", "x ****************** y")]
    [InlineData("a%25b-0123456789", "x a%25b-0123456789 y", "x **************** y")]
    public void Either_reading_of_an_escape_start_completes_the_secret(string secret, string text, string expected)
    {
        Assert.Equal(expected, Masked(text, SecretForms.Of([secret])));
    }

    [Theory]
    [InlineData("tok&en-0123456789abcdef", "tok&amp;en-0123456789abcdeF")]
    [InlineData("tok&en-0123456789abcdef", "tok&amp;amp;en-0123456789abcdef")]
    [InlineData("tok%en-0123456789abcdef", "tok%2525en-0123456789abcdef")]
    [InlineData("tok\\en-0123456789abcdef", "tok\\\\\\\\en-0123456789abcdef")]
    [InlineData("tok\\en-0123456789abcdef", "tok\\u005Cu005Cen-0123456789abcdef")]
    public void An_escape_start_escaped_twice_or_a_changed_character_is_not_the_secret(string secret, string text)
    {
        Assert.False(SecretForms.Of([secret]).IsIn(text));
    }

    /// <summary>A secret made of one character that starts escapes, against a long run of that
    /// character: the readings carried on at once are one per place in the text, so this ends.</summary>
    [Fact]
    public void A_run_of_escape_starts_is_read_in_bounded_work()
    {
        var forms = SecretForms.Of([new string('\\', 40)]);
        var text = new string('\\', 20_000) + "x";

        Assert.Equal(new string('*', 20_000) + "x", Masked(text, forms));
    }

    /// <summary>Overlapping echoes of a secret at every position an upstream can put them, with
    /// the hits of one search (anchors, or escape-led starts) at every echo and none of the other's:
    /// both searches for a form's start read the text once in all (not once per form found, which
    /// for such a text is quadratic), and every character of it is masked.</summary>
    [Theory]
    [InlineData("abc", "abcabcabcabcabcabc", "/escape-led-0123456789")]
    [InlineData("+abc", "+abc+abc+abc+abc", "unrelated-0123456789")]
    public void Overlapping_echoes_at_every_position_are_masked_in_one_pass_over_the_text(string unit, string secret, string other)
    {
        var forms = SecretForms.Of([secret, other]);
        var echoes = string.Concat(Enumerable.Repeat(unit, 10_000));
        var text = "x " + echoes + " y";

        var bytes = Encoding.Latin1.GetBytes(text);
        Assert.True(forms.Mask(text, bytes, out var scanned));
        Assert.Equal("x " + new string('*', echoes.Length) + " y", Encoding.Latin1.GetString(bytes));
        // Two searches, each reading each character at most once.
        Assert.InRange(scanned, 1, 2 * text.Length);
    }

    /// <summary>What the URL encoders .NET ships write: WebUtility and HttpUtility escape <c>~</c>
    /// (<c>%7E</c>, <c>%7e</c>) and write a space as <c>+</c>; Uri.EscapeDataString leaves <c>~</c>
    /// and writes <c>%20</c>. Each spelling is masked whole, in one write and cut.</summary>
    [Theory]
    [InlineData("abc~defghijklmnop")]
    [InlineData("~abc defghijklmnop")]
    [InlineData(" key!*()'~+/=?&%#\"<>\u00e9-0123456789")]
    public async Task A_secret_url_encoded_by_each_encoder_is_masked_whole(string secret)
    {
        var forms = SecretForms.Of([secret]);
        foreach (var encoded in new[] { WebUtility.UrlEncode(secret), System.Web.HttpUtility.UrlEncode(secret), Uri.EscapeDataString(secret) })
        {
            Assert.Equal("x=" + new string('*', encoded.Length) + "&y", await MaskedEverywhereAsync("x=" + encoded + "&y", forms));
        }
    }

    /// <summary>The reviewer's example: 48 bytes then the secret, base64, wrapped at 76 columns, so
    /// the first line ends 12 characters into the secret's encoding (that line end is masked with it).</summary>
    [Fact]
    public void A_wrapped_base64_secret_is_masked_from_its_first_character()
    {
        var text = Wrap(Convert.ToBase64String(Encoding.ASCII.GetBytes(new string('x', 48) + "ABCDEFGHIJKLMNOPQRSTUVWX")), 76, "\n");

        Assert.Equal(
            "eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4" + "*********************************",
            Masked(text, SecretForms.Of(["ABCDEFGHIJKLMNOPQRSTUVWX"])));
    }

    /// <summary>Base64 (each alignment of the secret's bytes), base64url and hex of a secret of every
    /// length the gateway searches for (12 bytes on) up to 32, with a line end at every offset inside
    /// the secret's encoding: every character of it is masked, and the line end inside it, and nothing
    /// else. Short forms are where a line end cuts every anchor unless the whole form is anchored on
    /// fewer characters than its first line holds.</summary>
    public static TheoryData<string, string, int> WrappedAtEachOffset()
    {
        var data = new TheoryData<string, string, int>();
        foreach (var encoding in new[] { "base64", "base64url", "hex", "HEX" })
        {
            foreach (var lineEnd in new[] { "\n", "\r\n" })
            {
                var before = encoding.StartsWith("base64", StringComparison.Ordinal) ? new[] { 48, 49, 50 } : [48];
                foreach (var bytesBefore in before)
                {
                    data.Add(encoding, lineEnd, bytesBefore);
                }
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(WrappedAtEachOffset))]
    public async Task A_wrapped_secret_is_masked_whole_wherever_the_line_end_falls(string encoding, string lineEnd, int bytesBefore)
    {
        for (var secretLength = 12; secretLength <= 32; secretLength++)
        {
            // The length the earlier version of this test used is also written in every cut.
            await AssertMaskedWholeAsync("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[..secretLength], encoding, lineEnd, bytesBefore, everyCut: secretLength == 24);
        }
    }

    /// <summary>The reviewer's example for short forms: a 16-byte secret whose base64 is cut by the
    /// line end 12 characters in, where its anchor and every tail's anchor were cut.</summary>
    [Fact]
    public void A_short_wrapped_base64_secret_is_masked_whole()
    {
        var text = Wrap(Convert.ToBase64String(Encoding.ASCII.GetBytes(new string('x', 48) + "0123456789abcdef")), 76, "\n");
        var forms = SecretForms.Of(["0123456789abcdef"]);

        Assert.Equal(
            "eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4" + "*********************" + "Zg==",
            Masked(text, forms));
        Assert.True(forms.IsIn(text));
    }

    /// <summary>A short tail of a wrapped form (here the base64 of the 12-byte secret's last 6 bytes)
    /// anchors the search for the whole form but is not the secret alone: 8 base64 characters match
    /// by chance.</summary>
    [Theory]
    [InlineData("x NDU2Nzg5 y")]
    [InlineData("x MTIy\nNDU2Nzg5 y")]
    public void A_short_tail_alone_is_not_the_secret(string text)
    {
        var forms = SecretForms.Of(["0123456789ab"]);

        Assert.Equal(text, Masked(text, forms));
        Assert.False(forms.IsIn(text));
    }

    /// <summary>Encoders that escape every character, letters and digits too, as a hostile upstream
    /// may (the client still decodes them to the secret), and the common encoders on secrets with
    /// non-ASCII characters (JSON <c>\u00E9</c> and surrogate pairs, HTML <c>&amp;#233;</c>).</summary>
    public static TheoryData<string, string> EveryCharacterEscaped()
    {
        var none = System.Text.Unicode.UnicodeRanges.None;
        var ascii = "sk-live_0123456789.abcdefXYZ~";
        var unicode = "sk-\u00e9t\u00e9-\u043a\u043b\u044e\u0447-\U0001F600-0123456789";
        var data = new TheoryData<string, string>
        {
            { ascii, System.Text.Encodings.Web.JavaScriptEncoder.Create(none).Encode(ascii) },
            { ascii, System.Text.Encodings.Web.HtmlEncoder.Create(none).Encode(ascii) },
            { ascii, System.Text.Encodings.Web.UrlEncoder.Create(none).Encode(ascii) },
            { ascii, System.Text.Encodings.Web.JavaScriptEncoder.Create(none).Encode(ascii).ToLowerInvariant() },
            // One character escaped inside the literal start, each by its own encoder.
            { ascii, "sk-l" + System.Text.Encodings.Web.UrlEncoder.Create(none).Encode("i") + "ve_0123456789.abcdefXYZ~" },
            { ascii, "s" + System.Text.Encodings.Web.JavaScriptEncoder.Create(none).Encode("k") + "-live_0123456789.abcdefXYZ~" },
            { ascii, System.Text.Encodings.Web.HtmlEncoder.Create(none).Encode("s") + "k-live_0123456789.abcdefXYZ~" },
            // HTML's named references for ASCII characters, which browsers decode.
            { "tok/en_01+23.4567=89", "tok&sol;en&lowbar;01&plus;23&period;4567&equals;89" },
            { unicode, System.Text.Json.JsonSerializer.Serialize(unicode).Trim('"') },
            { unicode, System.Text.Encodings.Web.JavaScriptEncoder.Default.Encode(unicode) },
            { unicode, System.Text.Encodings.Web.HtmlEncoder.Default.Encode(unicode) },
            { unicode, WebUtility.HtmlEncode(unicode) },
            { unicode, Uri.EscapeDataString(unicode) },
            { unicode, System.Text.Encodings.Web.JavaScriptEncoder.Create(none).Encode(unicode) },
            { unicode, System.Text.Encodings.Web.HtmlEncoder.Create(none).Encode(unicode) },
            { "caf\u00e9-0123456789abcdef", "caf&eacute;-0123456789abcdef" },
        };
        return data;
    }

    [Theory]
    [MemberData(nameof(EveryCharacterEscaped))]
    public async Task Every_character_in_any_spelling_a_client_decodes_is_masked_whole(string secret, string echoed)
    {
        var forms = SecretForms.Of([secret]);
        // Latin-1 of the UTF-8 bytes, as the masking stream reads a body.
        var body = Encoding.Latin1.GetString(Encoding.UTF8.GetBytes("x=" + echoed + "&y"));
        var expected = "x=" + new string('*', body.Length - 4) + "&y";

        Assert.Equal(expected, await MaskedEverywhereAsync(body, forms));
    }

    /// <summary>Line ends that are themselves escaped inside a wrapped form (a wrapped base64 or hex
    /// value quoted in a URL, an HTML page or a JSON string): masked whole wherever they fall.</summary>
    [Theory]
    [InlineData("base64", "%0A")]
    [InlineData("base64", "%0d%0a")]
    [InlineData("base64", "&#10;")]
    [InlineData("base64", "&#xA;")]
    [InlineData("base64", "&#13;&#10;")]
    [InlineData("base64", "\\u000a")]
    [InlineData("base64", "&NewLine;")]
    [InlineData("hex", "%0A")]
    [InlineData("hex", "&#x0D;&#x0A;")]
    public async Task An_escaped_line_end_inside_a_wrapped_secret_is_masked_with_it(string encoding, string lineEnd)
    {
        foreach (var secretLength in new[] { 12, 17, 24 })
        {
            await AssertMaskedWholeAsync("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[..secretLength], encoding, lineEnd, 49, everyCut: secretLength == 17);
        }
    }

    /// <summary>Lines as short as a wrapped form may have (16 to 18 columns), so that two line ends
    /// fall near its start, at every offset: every character of the secret's encoding and the line
    /// ends inside it are masked, nothing else.</summary>
    [Theory]
    [InlineData("base64", 16)]
    [InlineData("base64", 17)]
    [InlineData("base64", 18)]
    [InlineData("hex", 16)]
    [InlineData("hex", 17)]
    [InlineData("hex", 18)]
    public async Task A_secret_wrapped_in_short_lines_is_masked_whole(string encoding, int columns)
    {
        foreach (var secretLength in new[] { 12, 16, 20, 23, 26, 29, 32 })
        {
            var secret = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[..secretLength];
            var forms = SecretForms.Of([secret]);
            for (var bytesBefore = 30; bytesBefore < 72; bytesBefore++)
            {
                var bytes = Encoding.ASCII.GetBytes(new string('x', bytesBefore) + secret + "yyy");
                var (text, first, end) = encoding == "hex"
                    ? (Convert.ToHexStringLower(bytes), 2 * bytesBefore, 2 * (bytesBefore + secret.Length))
                    : (Convert.ToBase64String(bytes), (bytesBefore + 2) / 3 * 4, (bytesBefore + secret.Length) / 3 * 4);
                var wrapped = Wrap(text, columns, "\n");
                var expected = Wrap(text[..first] + new string('*', end - first) + text[end..], columns, "\n").ToCharArray();
                for (var k = Array.IndexOf(expected, '*'); k < Array.LastIndexOf(expected, '*'); k++)
                {
                    expected[k] = '*';
                }

                var masked = bytesBefore == 55 ? await MaskedEverywhereAsync(wrapped, forms) : Masked(wrapped, forms);
                Assert.True(new string(expected) == masked, $"{secretLength}-byte secret after {bytesBefore} bytes, {columns} columns:\n{wrapped}\n{masked}");
            }
        }
    }

    /// <summary>A secret made of a character that starts escapes has a reading per way of taking
    /// each of its characters (itself, or the start of its escape): exponentially many. They are
    /// carried on as the set of places they reached, each visited once per character of the form,
    /// so the matchers' work is bounded by the form's length times the places, for each start.</summary>
    [Fact]
    public void A_secret_of_escape_starts_is_matched_in_work_bounded_by_its_length_times_the_places()
    {
        const int Length = 100;
        var forms = SecretForms.Of([new string('\\', Length)]);
        var text = new string('\\', 3000) + "x";

        var bytes = Encoding.Latin1.GetBytes(text);
        Assert.True(forms.Mask(text, bytes, out _, out var matched));
        Assert.Equal(new string('*', 3000) + "x", Encoding.Latin1.GetString(bytes));
        // Per start: at most 2 × Length places after each of the Length characters, plus one visit
        // per 64 places of the set.
        Assert.InRange(matched, 1, (long)text.Length * Length * ((2 * Length) + 1 + (Length * 12 / 64) + 1));
    }

    private static async Task AssertMaskedWholeAsync(string secret, string encoding, string lineEnd, int bytesBefore, bool everyCut)
    {
        var forms = SecretForms.Of([secret]);
        var bytes = Encoding.ASCII.GetBytes(new string('x', bytesBefore) + secret + "yyy");
        // The characters that encode nothing but the secret's bytes: whole 3-byte groups in base64.
        var (text, first, end) = encoding switch
        {
            "hex" => (Convert.ToHexStringLower(bytes), 2 * bytesBefore, 2 * (bytesBefore + secret.Length)),
            "HEX" => (Convert.ToHexString(bytes), 2 * bytesBefore, 2 * (bytesBefore + secret.Length)),
            _ => (Convert.ToBase64String(bytes), (bytesBefore + 2) / 3 * 4, (bytesBefore + secret.Length) / 3 * 4),
        };
        if (encoding == "base64url")
        {
            text = text.Replace('+', '-').Replace('/', '_');
        }

        var length = end - first;
        for (var offset = 1; offset < length; offset++)
        {
            var wrapped = text[..(first + offset)] + lineEnd + text[(first + offset)..];
            var expected = text[..first] + new string('*', length + lineEnd.Length) + text[end..];

            Assert.True(expected == await MaskedEverywhereAsync(wrapped, forms, everyCut), $"{secret.Length}-byte secret, line end {offset} characters in: {wrapped}");
            Assert.True(forms.IsIn(wrapped));
        }
    }

    /// <summary>What <see cref="SecretForms.Mask"/> makes of <paramref name="text"/>, checked to be
    /// what the masking stream makes of it in one write, written a byte at a time, and cut in
    /// several places.</summary>
    private static async Task<string> MaskedEverywhereAsync(string text, SecretForms forms, bool everyCut = true)
    {
        var whole = Masked(text, forms);
        Assert.Equal(whole, await MaskAsync(text, [], forms, SecretForms.None));
        if (everyCut)
        {
            Assert.Equal(whole, await MaskAsync(text, [.. Enumerable.Range(1, text.Length - 1)], forms, SecretForms.None));
        }

        var random = new Random(text.Length);
        for (var round = 0; round < (everyCut ? 5 : 1); round++)
        {
            int[] cuts = [.. Enumerable.Range(0, 4).Select(_ => random.Next(1, text.Length)).Distinct().Order()];
            Assert.Equal(whole, await MaskAsync(text, cuts, forms, SecretForms.None));
        }

        return whole;
    }

    private static IEnumerable<(string Name, Func<string, string> Encode)> Encoders()
    {
        yield return ("plain", text => text);
        yield return ("JSON", text => System.Text.Json.JsonSerializer.Serialize(text));
        yield return ("URL", Uri.EscapeDataString);
        yield return ("HTML", WebUtility.HtmlEncode);
        yield return ("hex", text => Convert.ToHexStringLower(Encoding.UTF8.GetBytes(text)));
        yield return ("HEX", text => Convert.ToHexString(Encoding.UTF8.GetBytes(text)));
        for (var shift = 0; shift < 3; shift++)
        {
            var pad = new string('x', shift);
            yield return ($"base64, shifted {shift}", text => Convert.ToBase64String(Encoding.UTF8.GetBytes(pad + text)));
            yield return ($"base64url, shifted {shift}", text => Convert.ToBase64String(Encoding.UTF8.GetBytes(pad + text)).Replace('+', '-').Replace('/', '_'));
        }

        yield return ("base64 wrapped at 20", text => Wrap(Convert.ToBase64String(Encoding.UTF8.GetBytes(text)), 20, "\n"));
        yield return ("UTF-16", text => Encoding.Latin1.GetString(Encoding.Unicode.GetBytes(text)));
        yield return ("UTF-16 big-endian", text => Encoding.Latin1.GetString(Encoding.BigEndianUnicode.GetBytes(text)));
    }

    private static string Masked(string text, SecretForms forms)
    {
        var bytes = Encoding.Latin1.GetBytes(text);
        forms.Mask(text, bytes);
        return Encoding.Latin1.GetString(bytes);
    }

    private static string Wrap(string text, int columns, string lineEnd) =>
        string.Join(lineEnd, text.Chunk(columns).Select(line => new string(line)));

    private static Task<string> MaskAsync(string text, int[] cuts) => MaskAsync(text, cuts, Forms, SecretForms.None);

    private static async Task<string> MaskAsync(string text, int[] cuts, SecretForms configured, SecretForms injected)
    {
        using var sink = new MemoryStream();
        var stream = new SecretMaskingStream(sink, configured, injected, () => { });
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
