using System.Text;

namespace AgentGateway.FunctionalTests.Infrastructure;

/// <summary>
/// A URI resolved the way the most lenient servers resolve one, all at once: percent-decoding until
/// nothing changes (double encoding), backslashes as slashes, Unicode compatibility forms folded
/// (a fullwidth '．' is '.'), query and fragment dropped, trailing dots and spaces trimmed from each
/// segment (Windows), empty segments collapsed and dot segments removed. The test's judge of what a
/// forwarded identifier could mean to an upstream.
/// </summary>
public static class LenientUri
{
    public static string Resolve(string uri)
    {
        var text = uri;
        for (var i = 0; i < 4; i++)
        {
            var decoded = Uri.UnescapeDataString(text);
            if (decoded == text)
            {
                break;
            }

            text = decoded;
        }

        text = text.Normalize(NormalizationForm.FormKC).Replace('\\', '/');
        var cut = text.IndexOfAny(['?', '#']);
        text = cut < 0 ? text : text[..cut];
        var scheme = text.IndexOf("://", StringComparison.Ordinal);
        var start = scheme < 0 ? text.IndexOf(':', StringComparison.Ordinal) + 1 : text.IndexOf('/', scheme + 3) is var slash and >= 0 ? slash : text.Length;
        var prefix = text[..start];
        var segments = new List<string>();
        foreach (var raw in text[start..].Split('/'))
        {
            var segment = raw.TrimEnd('.', ' ') is { Length: 0 } && raw.Length > 0 ? (raw.Contains("..", StringComparison.Ordinal) ? ".." : ".") : raw;
            switch (segment)
            {
                case "" or ".":
                    break;
                case "..":
                    if (segments.Count > 0)
                    {
                        segments.RemoveAt(segments.Count - 1);
                    }

                    break;
                default:
                    segments.Add(segment);
                    break;
            }
        }

        var trailing = text.EndsWith('/') && segments.Count > 0 ? "/" : "";
        return prefix + (segments.Count > 0 || start < text.Length ? "/" : "") + string.Join('/', segments) + trailing;
    }
}
