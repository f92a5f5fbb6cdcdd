namespace AgentGateway.Credentials;

/// <summary>
/// A hop credential that is a signature over the request itself (AWS Signature Version 4, say)
/// rather than a header value fixed in advance. It is applied last, by the HTTP client's handler,
/// to the request exactly as it leaves: final method, URL, host and body bytes, after every
/// transform. What the injection point needs to know of it is here; how it signs is its kind's.
/// </summary>
public interface IRequestSigner
{
    /// <summary>The largest body it signs, which is read into memory before the request is sent
    /// (a larger one is refused before anything is forwarded); null when it signs no body and the
    /// body streams as it is.</summary>
    long? MaxBodyBytes { get; }

    /// <summary>Removes whatever the agent brought that could sign or pre-sign the request, then
    /// signs it in place.</summary>
    /// <param name="request">The request as it is about to be sent.</param>
    /// <param name="body">The exact bytes the request carries (empty when it has none); unread
    /// when <see cref="MaxBodyBytes"/> is null.</param>
    /// <returns>Null when signed; otherwise why the request cannot be signed as it is (safe to show
    /// the agent) — then it must not be sent.</returns>
    string? Sign(HttpRequestMessage request, ReadOnlySpan<byte> body);
}
