using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace AgentGateway.FunctionalTests.Infrastructure;

/// <summary>
/// Checks an AWS Signature Version 4 the way an AWS service does, written from the specification
/// ("Create a signed AWS API request": canonical request, string to sign, signing key, signature)
/// and sharing no code with the gateway or the AWS SDK, so a signer that is wrong in a way both
/// could share is still caught. It works on the request as a server received it: method, raw
/// request target, header lines and body bytes.
/// </summary>
public static partial class SigV4Verifier
{
    /// <summary>A request as the upstream received it.</summary>
    /// <param name="Target">The raw request target (path and query, encoded as sent).</param>
    /// <param name="Headers">Every header line, in order (names as sent).</param>
    public sealed record Received(string Method, string Target, IReadOnlyList<KeyValuePair<string, string>> Headers, byte[] Body)
    {
        public IEnumerable<string> Values(string name) =>
            Headers.Where(h => string.Equals(h.Key, name, StringComparison.OrdinalIgnoreCase)).Select(h => h.Value);

        public string? Header(string name) => Values(name).FirstOrDefault();
    }

    /// <summary>What the Authorization header claims.</summary>
    public sealed record Claim(string AccessKeyId, string Date, string Region, string Service, IReadOnlyList<string> SignedHeaders, string Signature);

    /// <summary>The verdict: <see cref="Error"/> is null when the signature is right.</summary>
    public sealed record Verdict(string? Error, Claim? Claim, string? CanonicalRequest)
    {
        public bool Valid => Error is null;
    }

    /// <summary>Verifies <paramref name="request"/> against <paramref name="secretKey"/>.</summary>
    public static Verdict Verify(Received request, string secretKey)
    {
        var authorization = request.Values("Authorization").ToList();
        if (authorization.Count != 1)
        {
            return new Verdict($"{authorization.Count} Authorization headers", null, null);
        }

        var match = AuthorizationPattern().Match(authorization[0]);
        if (!match.Success)
        {
            return new Verdict("the Authorization header is not an AWS4-HMAC-SHA256 one", null, null);
        }

        var claim = new Claim(
            match.Groups["key"].Value,
            match.Groups["date"].Value,
            match.Groups["region"].Value,
            match.Groups["service"].Value,
            match.Groups["headers"].Value.Split(';'),
            match.Groups["signature"].Value);
        var amzDate = request.Header("X-Amz-Date");
        if (amzDate is null || !amzDate.StartsWith(claim.Date, StringComparison.Ordinal) || amzDate.Length != 16)
        {
            return new Verdict("X-Amz-Date is missing or not of the credential's day", claim, null);
        }

        if (!claim.SignedHeaders.Contains("host") || !claim.SignedHeaders.SequenceEqual(claim.SignedHeaders.Order(StringComparer.Ordinal)))
        {
            return new Verdict("SignedHeaders must include host and be sorted", claim, null);
        }

        // As S3 does: an x-amz-* header the signature does not cover is refused.
        var unsigned = request.Headers.Select(h => h.Key.ToLowerInvariant()).FirstOrDefault(name => name.StartsWith("x-amz-", StringComparison.Ordinal) && !claim.SignedHeaders.Contains(name));
        if (unsigned is not null)
        {
            return new Verdict($"header {unsigned} is not signed", claim, null);
        }

        var bodyHash = Hex(SHA256.HashData(request.Body));
        var payload = request.Header("X-Amz-Content-Sha256") ?? bodyHash;
        if (payload != "UNSIGNED-PAYLOAD" && payload != bodyHash)
        {
            return new Verdict("x-amz-content-sha256 is not the SHA-256 of the body received", claim, null);
        }

        var questionMark = request.Target.IndexOf('?', StringComparison.Ordinal);
        var path = questionMark < 0 ? request.Target : request.Target[..questionMark];
        var query = questionMark < 0 ? string.Empty : request.Target[(questionMark + 1)..];
        var canonical = new StringBuilder()
            .Append(request.Method).Append('\n')
            .Append(CanonicalUri(path, s3: claim.Service == "s3")).Append('\n')
            .Append(CanonicalQuery(query)).Append('\n');
        foreach (var name in claim.SignedHeaders)
        {
            var values = request.Values(name).Select(v => Spaces().Replace(v.Trim(), " ")).ToList();
            if (values.Count == 0)
            {
                return new Verdict($"signed header {name} is not in the request", claim, null);
            }

            canonical.Append(name).Append(':').Append(string.Join(',', values)).Append('\n');
        }

        canonical.Append('\n').Append(string.Join(';', claim.SignedHeaders)).Append('\n').Append(payload);
        var canonicalRequest = canonical.ToString();
        var scope = $"{claim.Date}/{claim.Region}/{claim.Service}/aws4_request";
        var stringToSign = $"AWS4-HMAC-SHA256\n{amzDate}\n{scope}\n{Hex(SHA256.HashData(Encoding.UTF8.GetBytes(canonicalRequest)))}";
        var key = Hmac(Encoding.UTF8.GetBytes("AWS4" + secretKey), claim.Date);
        key = Hmac(key, claim.Region);
        key = Hmac(key, claim.Service);
        key = Hmac(key, "aws4_request");
        var expected = Hex(Hmac(key, stringToSign));
        return CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(expected), Encoding.ASCII.GetBytes(claim.Signature))
            ? new Verdict(null, claim, canonicalRequest)
            : new Verdict("the signature does not match", claim, canonicalRequest);
    }

    /// <summary>The path a service decodes from the request line, normalised (except by S3: no dot
    /// or empty segment removal) and each segment URI-encoded — twice, except by S3.</summary>
    public static string CanonicalUri(string rawPath, bool s3)
    {
        var decoded = rawPath.Split('/').Select(Decode).ToList();
        if (!s3)
        {
            var kept = new List<byte[]>();
            foreach (var segment in decoded.Skip(1))
            {
                var text = Encoding.Latin1.GetString(segment);
                if (text is "" or ".")
                {
                    continue;
                }

                if (text == "..")
                {
                    if (kept.Count > 0)
                    {
                        kept.RemoveAt(kept.Count - 1);
                    }

                    continue;
                }

                kept.Add(segment);
            }

            var trailing = rawPath.EndsWith('/') && kept.Count > 0 ? "/" : "";
            return "/" + string.Join('/', kept.Select(s => UriEncode(Encoding.ASCII.GetBytes(UriEncode(s))))) + trailing;
        }

        return rawPath.Length == 0 ? "/" : string.Join('/', decoded.Select(UriEncode));
    }

    /// <summary>Each parameter decoded and URI-encoded, sorted by name, then value.</summary>
    public static string CanonicalQuery(string rawQuery) => string.Join('&', rawQuery
        .Split('&', StringSplitOptions.RemoveEmptyEntries)
        .Select(pair =>
        {
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            return (Name: UriEncode(Decode(equals < 0 ? pair : pair[..equals])), Value: UriEncode(Decode(equals < 0 ? "" : pair[(equals + 1)..])));
        })
        .OrderBy(p => p.Name, StringComparer.Ordinal)
        .ThenBy(p => p.Value, StringComparer.Ordinal)
        .Select(p => p.Name + "=" + p.Value));

    /// <summary>RFC 3986 percent-decoding ('+' is a plus sign).</summary>
    public static byte[] Decode(string text)
    {
        var bytes = new List<byte>();
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] == '%' && i + 2 < text.Length && Uri.IsHexDigit(text[i + 1]) && Uri.IsHexDigit(text[i + 2]))
            {
                bytes.Add(Convert.ToByte(text.Substring(i + 1, 2), 16));
                i += 2;
            }
            else
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(text[i].ToString()));
            }
        }

        return [.. bytes];
    }

    /// <summary>The specification's UriEncode: A–Z, a–z, 0–9, '-', '.', '_', '~' as they are; every other byte %XX, upper-case hex.</summary>
    public static string UriEncode(byte[] bytes)
    {
        const string unreserved = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
        var text = new StringBuilder();
        foreach (var b in bytes)
        {
            text.Append(unreserved.Contains((char)b, StringComparison.Ordinal) ? ((char)b).ToString() : "%" + b.ToString("X2", CultureInfo.InvariantCulture));
        }

        return text.ToString();
    }

    private static byte[] Hmac(byte[] key, string data) => HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(data));

    private static string Hex(byte[] bytes) => Convert.ToHexString(bytes).ToLowerInvariant();

    [GeneratedRegex(@"^AWS4-HMAC-SHA256 Credential=(?<key>[^/\s]+)/(?<date>\d{8})/(?<region>[^/\s]+)/(?<service>[^/\s]+)/aws4_request, ?SignedHeaders=(?<headers>[a-z0-9;-]+), ?Signature=(?<signature>[0-9a-f]{64})$")]
    private static partial Regex AuthorizationPattern();

    [GeneratedRegex(" +")]
    private static partial Regex Spaces();
}
