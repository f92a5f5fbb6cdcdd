using Microsoft.AspNetCore.Http;

namespace AgentGateway.Proxy.Pipeline;

/// <summary>
/// Whether a request's body has one reading. Kestrel already refuses much (two Content-Lengths, a
/// final coding other than chunked), but it accepts and normalises some shapes an upstream or a
/// second proxy could read differently (request smuggling), and the normalised request no longer shows
/// them, except by the traces they leave:
/// <list type="bullet">
/// <item>Content-Length beside Transfer-Encoding: Kestrel frames by the chunks and keeps the length
/// it overrode as <c>X-Content-Length</c>;</item>
/// <item>codings before <c>chunked</c> (<c>gzip, chunked</c>) or <c>chunked</c> twice: Kestrel removes one
/// layer of chunks and leaves the body in the other codings, which the forwarded request would no
/// longer declare;</item>
/// <item>Transfer-Encoding on HTTP/1.0, which has none.</item>
/// </list>
/// Such requests are refused with 400 and the connection is closed, as nginx does: where two
/// readers of the bytes could disagree, neither is picked.
/// </summary>
internal static class RequestFraming
{
    /// <summary>The header Kestrel keeps an overridden Content-Length in. An agent may also send it
    /// itself; no reading of it is safe, so it is refused either way.</summary>
    public const string OverriddenContentLength = "X-Content-Length";

    /// <summary>Null when the request is framed unambiguously, else why not.</summary>
    public static string? Ambiguity(HttpRequest request)
    {
        var headers = request.Headers;
        if (headers.ContainsKey(OverriddenContentLength))
        {
            return "Content-Length beside Transfer-Encoding (or an X-Content-Length header)";
        }

        var transferEncoding = headers.TransferEncoding;
        if (transferEncoding.Count == 0)
        {
            return null;
        }

        if (!HttpProtocol.IsHttp11(request.Protocol))
        {
            return $"Transfer-Encoding on {request.Protocol}, which does not use it";
        }

        if (headers.ContentLength is not null)
        {
            return "Content-Length beside Transfer-Encoding";
        }

        return transferEncoding.Count == 1 && transferEncoding[0]?.Trim().Equals("chunked", StringComparison.OrdinalIgnoreCase) == true
            ? null
            : "a transfer coding other than exactly 'chunked'";
    }
}
