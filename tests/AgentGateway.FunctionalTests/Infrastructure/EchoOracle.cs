using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace AgentGateway.FunctionalTests.Infrastructure;

/// <summary>
/// Whether what an agent received gives a secret away, judged without the gateway's own code: the
/// text is undone every way an agent could try — percent-decoding, JSON and HTML unescaping, every
/// base64 and hex run decoded at every alignment, UTF-16 read both ways — and searched for any
/// 16 characters of the secret in a row.
/// </summary>
public static partial class EchoOracle
{
    private const int Window = 16;

    public static void AssertNotExposed(string received, string secret, string where = "what the agent received")
    {
        if (Exposure(received, secret) is { } how)
        {
            Assert.Fail($"{where} gives the secret away ({how})");
        }
    }

    /// <summary>How the secret can be read out of <paramref name="received"/>, or null.</summary>
    public static string? Exposure(string received, string secret)
    {
        string[] windows = [.. Enumerable.Range(0, Math.Max(1, secret.Length - Window + 1)).Select(i => secret.Substring(i, Math.Min(Window, secret.Length)))];
        bool Holds(string text) => windows.Any(w => text.Contains(w, StringComparison.Ordinal));

        foreach (var (how, view) in Views(received))
        {
            if (Holds(view))
            {
                return how;
            }
        }

        return null;
    }

    private static IEnumerable<(string How, string View)> Views(string text)
    {
        yield return ("as sent", text);
        yield return ("percent-decoded", Try(() => Uri.UnescapeDataString(text)));
        yield return ("HTML-unescaped", System.Net.WebUtility.HtmlDecode(text));
        yield return ("JSON-unescaped", JsonUnescape(text));
        yield return ("UTF-16", Encoding.Unicode.GetString(Encoding.Latin1.GetBytes(text)));
        yield return ("UTF-16 big-endian", Encoding.BigEndianUnicode.GetString(Encoding.Latin1.GetBytes(text)));
        yield return ("UTF-16 shifted", text.Length > 1 ? Encoding.Unicode.GetString(Encoding.Latin1.GetBytes(text[1..])) : "");
        foreach (Match run in Base64Run().Matches(JsonUnescape(text)))
        {
            var value = run.Value.Replace('-', '+').Replace('_', '/').TrimEnd('=');
            for (var skip = 0; skip < 4; skip++)
            {
                var part = value[Math.Min(skip, value.Length)..];
                part = part[..(part.Length / 4 * 4)];
                yield return ("base64", Try(() => Encoding.Latin1.GetString(Convert.FromBase64String(part))));
            }
        }

        foreach (Match run in HexRun().Matches(text))
        {
            for (var skip = 0; skip < 2; skip++)
            {
                var part = run.Value[skip..];
                yield return ("hex", Encoding.Latin1.GetString(Convert.FromHexString(part[..(part.Length / 2 * 2)])));
            }
        }
    }

    /// <summary>Every JSON string literal in the text, decoded, appended to the text.</summary>
    private static string JsonUnescape(string text)
    {
        var decoded = new StringBuilder(text);
        foreach (Match literal in JsonString().Matches(text))
        {
            decoded.Append('\n').Append(Try(() => JsonSerializer.Deserialize<string>(literal.Value) ?? ""));
        }

        return decoded.ToString();
    }

    private static string Try(Func<string> decode)
    {
        try
        {
            return decode();
        }
        catch (Exception ex) when (ex is FormatException or JsonException or UriFormatException)
        {
            return "";
        }
    }

    [GeneratedRegex("[A-Za-z0-9+/_-]{12,}={0,2}")]
    private static partial Regex Base64Run();

    [GeneratedRegex("[0-9A-Fa-f]{24,}")]
    private static partial Regex HexRun();

    [GeneratedRegex("\"(?:[^\"\\\\]|\\\\.)*\"")]
    private static partial Regex JsonString();
}
