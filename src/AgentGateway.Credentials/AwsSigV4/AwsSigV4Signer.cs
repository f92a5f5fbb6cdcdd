using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Amazon.Runtime.Internal.Auth;

namespace AgentGateway.Credentials.AwsSigV4;

/// <summary>
/// Signs one request with Signature Version 4, as it leaves: the method, path, query and body
/// bytes that are sent, and the host header that is sent. The canonical request is built from
/// the request's own wire form, which is first put in the one encoding AWS reads back the same
/// way (every octet outside the unreserved set percent-encoded, upper-case hex), so what is
/// signed and what the service canonicalises on its side cannot differ. The string to sign and
/// the HMAC chain are the AWS SDK's (<see cref="AWS4Signer.ComputeSignature(string, string, string, DateTime, string, string, string)"/>).
/// </summary>
/// <remarks>
/// Signed: <c>host</c>, <c>x-amz-content-sha256</c>, <c>x-amz-date</c> and, for temporary
/// credentials, <c>x-amz-security-token</c>. Everything the agent sent that takes part in AWS
/// signing is removed first — <c>Authorization</c> and every <c>X-Amz-*</c> header in any
/// spelling, every <c>X-Amz-*</c> query parameter (a pre-signed URL) — so an agent can neither
/// pre-sign a request nor slip its own session token in.
/// </remarks>
internal sealed class AwsSigV4Signer(AwsKeys keys, string region, string service, AwsPayloadSigning payload, long? maxBodyBytes, TimeProvider time)
    : IRequestSigner
{
    private const string UnsignedPayload = "UNSIGNED-PAYLOAD";

    /// <summary>S3 alone neither normalises nor double-encodes the path (the SigV4 specification's one exception).</summary>
    private readonly bool _s3 = service == "s3";

    public long? MaxBodyBytes => payload == AwsPayloadSigning.Signed ? maxBodyBytes : null;

    public string? Sign(HttpRequestMessage request, ReadOnlySpan<byte> body)
    {
        if (request.RequestUri is not { IsAbsoluteUri: true } uri)
        {
            return "the request has no absolute destination";
        }

        RemoveAgentSigning(request.Headers);
        if (request.Content is { } content)
        {
            RemoveAgentSigning(content.Headers);
        }

        if (!TryCanonicalPath(uri.AbsolutePath, _s3, out var wirePath, out var canonicalPath, out var error)
            || !TryCanonicalQuery(uri.Query, out var wireQuery, out var canonicalQuery, out error))
        {
            return error;
        }

        if (!string.Equals(wirePath, uri.AbsolutePath, StringComparison.Ordinal) || !string.Equals(wireQuery, uri.Query, StringComparison.Ordinal))
        {
            // Sent exactly as signed: without canonicalisation, Uri could unescape or compress it again.
            request.RequestUri = new Uri(uri.GetLeftPart(UriPartial.Authority) + wirePath + wireQuery, new UriCreationOptions { DangerousDisablePathAndQueryCanonicalization = true });
        }

        // The host the request names is the one signed; set explicitly, it is also the one sent.
        var host = request.Headers.Host ?? Authority(uri);
        request.Headers.Host = host;

        var signedAt = time.GetUtcNow().UtcDateTime;
        var amzDate = signedAt.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);
        var payloadHash = payload == AwsPayloadSigning.Signed ? Convert.ToHexStringLower(SHA256.HashData(body)) : UnsignedPayload;
        request.Headers.TryAddWithoutValidation("X-Amz-Date", amzDate);
        request.Headers.TryAddWithoutValidation("X-Amz-Content-Sha256", payloadHash);
        if (keys.SessionToken is { } sessionToken)
        {
            request.Headers.TryAddWithoutValidation("X-Amz-Security-Token", sessionToken);
        }

        var signedHeaders = keys.SessionToken is null ? "host;x-amz-content-sha256;x-amz-date" : "host;x-amz-content-sha256;x-amz-date;x-amz-security-token";
        var canonical = new StringBuilder(256)
            .Append(request.Method.Method).Append('\n')
            .Append(canonicalPath).Append('\n')
            .Append(canonicalQuery).Append('\n')
            .Append("host:").Append(host.Trim()).Append('\n')
            .Append("x-amz-content-sha256:").Append(payloadHash).Append('\n')
            .Append("x-amz-date:").Append(amzDate).Append('\n');
        if (keys.SessionToken is not null)
        {
            canonical.Append("x-amz-security-token:").Append(keys.SessionToken.Trim()).Append('\n');
        }

        canonical.Append('\n').Append(signedHeaders).Append('\n').Append(payloadHash);
        var signature = AWS4Signer.ComputeSignature(keys.AccessKeyId, keys.SecretKey, region, signedAt, service, signedHeaders, canonical.ToString());
        request.Headers.TryAddWithoutValidation("Authorization", signature.ForAuthorizationHeader);
        return null;
    }

    /// <summary>
    /// The path as sent (<paramref name="wire"/>: each segment decoded and encoded again, strictly)
    /// and as signed (<paramref name="canonical"/>: encoded once more, except for S3). For the
    /// other services AWS removes dot segments and empty segments before it checks the signature,
    /// so a path holding them would be read differently from how it was signed or routed: refused.
    /// </summary>
    internal static bool TryCanonicalPath(string escapedPath, bool s3, out string wire, out string canonical, out string? error)
    {
        wire = canonical = "/";
        error = null;
        var segments = escapedPath.Split('/');
        var built = new StringBuilder(escapedPath.Length + 16);
        for (var i = 1; i < segments.Length; i++)
        {
            if (!TryDecode(segments[i], out var bytes))
            {
                error = "the path has a '%' that is not followed by two hexadecimal digits";
                return false;
            }

            if (!s3 && bytes is [(byte)'.'] or [(byte)'.', (byte)'.'])
            {
                error = "the path has a '.' or '..' segment, which AWS would remove before checking the signature";
                return false;
            }

            if (!s3 && bytes.Length == 0 && i != segments.Length - 1)
            {
                error = "the path has an empty segment ('//'), which AWS would remove before checking the signature";
                return false;
            }

            built.Append('/');
            Encode(bytes, built);
        }

        if (built.Length > 0)
        {
            wire = built.ToString();
        }

        // Encoding the strictly encoded path again changes only its '%' (to %25).
        canonical = s3 ? wire : wire.Replace("%", "%25", StringComparison.Ordinal);
        return true;
    }

    /// <summary>
    /// The query as sent (order kept, names and values strictly encoded, the agent's
    /// <c>X-Amz-*</c> parameters removed) and as signed (sorted by name, then value). A '+' is a
    /// plus sign (RFC 3986), as the AWS SDKs mean it: they send a space as <c>%20</c>.
    /// </summary>
    internal static bool TryCanonicalQuery(string query, out string wire, out string canonical, out string? error)
    {
        wire = canonical = string.Empty;
        error = null;
        if (query.Length <= 1)
        {
            return true;
        }

        var sent = new List<string>();
        var pairs = new List<(string Name, string Value)>();
        foreach (var piece in query[1..].Split('&'))
        {
            if (piece.Length == 0)
            {
                continue;
            }

            var equals = piece.IndexOf('=', StringComparison.Ordinal);
            var rawName = equals < 0 ? piece : piece[..equals];
            var rawValue = equals < 0 ? string.Empty : piece[(equals + 1)..];
            if (!TryDecode(rawName, out var name) || !TryDecode(rawValue, out var value))
            {
                error = "the query has a '%' that is not followed by two hexadecimal digits";
                return false;
            }

            if (IsAmzName(Encoding.Latin1.GetString(name)))
            {
                continue;
            }

            var encodedName = Encode(name);
            var encodedValue = Encode(value);
            sent.Add(equals < 0 ? encodedName : encodedName + "=" + encodedValue);
            pairs.Add((encodedName, encodedValue));
        }

        if (sent.Count == 0)
        {
            return true;
        }

        pairs.Sort(static (a, b) =>
        {
            var byName = string.CompareOrdinal(a.Name, b.Name);
            return byName != 0 ? byName : string.CompareOrdinal(a.Value, b.Value);
        });
        wire = "?" + string.Join('&', sent);
        canonical = string.Join('&', pairs.Select(static p => p.Name + "=" + p.Value));
        return true;
    }

    /// <summary>Authorization and every X-Amz-* header, in every spelling an upstream could read as one.</summary>
    private static void RemoveAgentSigning(System.Net.Http.Headers.HttpHeaders headers)
    {
        List<string>? remove = null;
        foreach (var header in headers.NonValidated)
        {
            if (IsAmzName(header.Key) || Fold(header.Key) == "authorization")
            {
                (remove ??= []).Add(header.Key);
            }
        }

        foreach (var name in remove ?? [])
        {
            headers.Remove(name);
        }
    }

    private static bool IsAmzName(string name) => Fold(name).StartsWith("x-amz-", StringComparison.Ordinal);

    /// <summary>Lower case, with '_' and '.' read as '-', as CGI-style servers fold header names.</summary>
    private static string Fold(string name) => name.ToLowerInvariant().Replace('_', '-').Replace('.', '-');

    private static string Authority(Uri uri)
    {
        var host = uri.HostNameType == UriHostNameType.IPv6 && !uri.IdnHost.StartsWith('[') ? $"[{uri.IdnHost}]" : uri.IdnHost;
        return uri.IsDefaultPort ? host : host + ":" + uri.Port.ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>Percent-decodes strictly: a '%' must start a two-digit hexadecimal escape.
    /// Anything not ASCII (an escaped URI holds none) stands for its UTF-8 bytes.</summary>
    private static bool TryDecode(string text, out byte[] bytes)
    {
        var decoded = new List<byte>(text.Length);
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (c == '%')
            {
                if (i + 2 >= text.Length || !char.IsAsciiHexDigit(text[i + 1]) || !char.IsAsciiHexDigit(text[i + 2]))
                {
                    bytes = [];
                    return false;
                }

                decoded.Add(byte.Parse(text.AsSpan(i + 1, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture));
                i += 2;
            }
            else if (c < 0x80)
            {
                decoded.Add((byte)c);
            }
            else
            {
                var length = char.IsHighSurrogate(c) && i + 1 < text.Length ? 2 : 1;
                decoded.AddRange(Encoding.UTF8.GetBytes(text.Substring(i, length)));
                i += length - 1;
            }
        }

        bytes = [.. decoded];
        return true;
    }

    private static string Encode(byte[] bytes)
    {
        var built = new StringBuilder(bytes.Length * 3);
        Encode(bytes, built);
        return built.ToString();
    }

    /// <summary>SigV4's URI encoding: the unreserved characters as they are, every other octet as %XX in upper case.</summary>
    private static void Encode(byte[] bytes, StringBuilder into)
    {
        foreach (var b in bytes)
        {
            if (char.IsAsciiLetterOrDigit((char)b) || b is (byte)'-' or (byte)'_' or (byte)'.' or (byte)'~')
            {
                into.Append((char)b);
            }
            else
            {
                into.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
            }
        }
    }
}
