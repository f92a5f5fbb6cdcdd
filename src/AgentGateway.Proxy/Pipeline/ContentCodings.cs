using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;

namespace AgentGateway.Proxy.Pipeline;

/// <summary>
/// The content codings of an upstream's answer (RFC 9110 §8.4), which the gateway decodes before
/// anything reads the body: the gateway never forwards an agent's <c>Accept-Encoding</c>, so a
/// coding is the upstream's own choice, and a coded body is a body no guard could search. Codings
/// .NET decodes (gzip, deflate, br) are decoded; any other is refused, since passing it would hand
/// the agent bytes the gateway never read.
/// </summary>
internal static class ContentCodings
{
    /// <summary>The content codings applied to <paramref name="response"/>'s body, in the order
    /// applied (identity left out); or null and the first coding that cannot be decoded.</summary>
    public static (IReadOnlyList<string>? Codings, string? Undecodable) Of(HttpResponseMessage response)
    {
        if (!response.Headers.NonValidated.Contains("Transfer-Encoding") && !response.Content.Headers.NonValidated.Contains("Content-Encoding"))
        {
            // Nearly every answer: neither header, so nothing to read and nothing allocated for it.
            return ([], null);
        }

        // A transfer coding other than chunked: HttpClient undoes chunked only and YARP drops the
        // header, so the agent would get coded bytes with nothing saying so. The gateway never
        // offers one (TE), so an upstream that applies one anyway is refused.
        foreach (var coding in Codings(response.Headers.NonValidated, "Transfer-Encoding"))
        {
            if (coding != "chunked")
            {
                return (null, Policy.PolicyEngine.Printable(coding) + " (as a transfer coding)");
            }
        }

        List<string>? codings = null;
        foreach (var coding in Codings(response.Content.Headers.NonValidated, "Content-Encoding"))
        {
            if (coding is not ("gzip" or "x-gzip" or "deflate" or "br"))
            {
                return (null, Policy.PolicyEngine.Printable(coding));
            }

            (codings ??= []).Add(coding);
        }

        return (codings ?? (IReadOnlyList<string>)[], null);
    }

    /// <summary>The codings a header lists, lower-cased, identity left out, over every line of it.</summary>
    private static IEnumerable<string> Codings(HttpHeadersNonValidated headers, string name)
    {
        if (!headers.TryGetValues(name, out var values))
        {
            yield break;
        }

        foreach (var value in values)
        {
            foreach (var part in value.Split(','))
            {
                var coding = part.Trim(" \t".ToCharArray()).ToLowerInvariant();
                if (coding is not ("" or "identity"))
                {
                    yield return coding;
                }
            }
        }
    }

    /// <summary><paramref name="content"/> with <paramref name="codings"/> undone as it is read, and
    /// without the headers that described the coded bytes.</summary>
    public static HttpContent Decoded(HttpContent content, IReadOnlyList<string> codings) => new DecodedContent(content, codings);

    private sealed class DecodedContent : HttpContent
    {
        private static readonly string[] CodedOnly = ["Content-Encoding", "Content-Length", "Content-MD5", "Content-Range"];

        private readonly HttpContent _coded;
        private readonly IReadOnlyList<string> _codings;

        public DecodedContent(HttpContent coded, IReadOnlyList<string> codings)
        {
            _coded = coded;
            _codings = codings;
            foreach (var header in coded.Headers.NonValidated)
            {
                if (!CodedOnly.Contains(header.Key, StringComparer.OrdinalIgnoreCase))
                {
                    Headers.TryAddWithoutValidation(header.Key, header.Value);
                }
            }
        }

        protected override async Task<Stream> CreateContentReadStreamAsync(CancellationToken cancellationToken)
        {
            var stream = await _coded.ReadAsStreamAsync(cancellationToken);
            // The last coding listed was applied last, so it is undone first.
            for (var i = _codings.Count - 1; i >= 0; i--)
            {
                stream = _codings[i] switch
                {
                    "gzip" or "x-gzip" => new GZipStream(stream, CompressionMode.Decompress),
                    // HTTP's "deflate" is the zlib format (RFC 9110 §8.4.1.2), not raw deflate.
                    "deflate" => new ZLibStream(stream, CompressionMode.Decompress),
                    _ => new BrotliStream(stream, CompressionMode.Decompress),
                };
            }

            return stream;
        }

        protected override Task<Stream> CreateContentReadStreamAsync() => CreateContentReadStreamAsync(CancellationToken.None);

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
        {
            await using var decoded = await CreateContentReadStreamAsync(cancellationToken);
            await decoded.CopyToAsync(stream, cancellationToken);
        }

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => SerializeToStreamAsync(stream, context, CancellationToken.None);

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _coded.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
