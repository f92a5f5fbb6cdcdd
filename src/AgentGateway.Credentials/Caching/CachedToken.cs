using System.ComponentModel;
using System.Text.Json.Serialization;

namespace AgentGateway.Credentials.Caching;

/// <summary>
/// A token as it lives in the cache. Immutable and marked so: HybridCache then hands out the
/// same in-process instance instead of deserialising a defensive copy on every hit.
/// </summary>
/// <param name="AccessToken">The token itself.</param>
/// <param name="ExpiresAt">When the issuer says it expires.</param>
/// <param name="UseUntil">When the gateway stops serving it (fixed at fetch, ahead of expiry).</param>
/// <param name="Fingerprint">The keyed fingerprint telemetry records instead of the token.</param>
[ImmutableObject(true)]
public sealed record CachedToken(string AccessToken, DateTimeOffset ExpiresAt, DateTimeOffset UseUntil, string Fingerprint)
{
    private string? _bearer;

    /// <summary>The <c>Authorization</c> value, built once per cached token rather than per request.</summary>
    [JsonIgnore]
    public string BearerHeaderValue => _bearer ??= "Bearer " + AccessToken;

    /// <summary>Builds a token fetched at <paramref name="now"/> that lives <paramref name="lifetime"/>.
    /// It is served until <paramref name="refreshBeforeExpiry"/> before expiry, but at least for
    /// half its life, so short-lived tokens are still worth caching.</summary>
    public static CachedToken Create(string accessToken, DateTimeOffset now, TimeSpan lifetime, TimeSpan refreshBeforeExpiry, string fingerprint)
    {
        var margin = refreshBeforeExpiry < lifetime / 2 ? refreshBeforeExpiry : lifetime / 2;
        return new CachedToken(accessToken, now + lifetime, now + lifetime - margin, fingerprint);
    }

    public override string ToString() => $"token {Fingerprint} expiring {ExpiresAt:O}";
}
