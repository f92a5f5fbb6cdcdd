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
/// <param name="RefreshAfter">From here on a request still gets this token, but a refresh starts
/// in the background, so in steady state no request waits for the token endpoint.</param>
/// <param name="Fingerprint">The keyed fingerprint telemetry records instead of the token.</param>
[ImmutableObject(true)]
public sealed record CachedToken(string AccessToken, DateTimeOffset ExpiresAt, DateTimeOffset UseUntil, DateTimeOffset RefreshAfter, string Fingerprint)
{
    private string? _bearer;

    /// <summary>The <c>Authorization</c> value, built once per cached token rather than per request.</summary>
    [JsonIgnore]
    public string BearerHeaderValue => _bearer ??= "Bearer " + AccessToken;

    /// <summary>
    /// Builds a token fetched at <paramref name="now"/> that lives <paramref name="lifetime"/>. It is
    /// served until <paramref name="refreshBeforeExpiry"/> before expiry, but at least for half its
    /// life, so short-lived tokens are still worth caching; and never past
    /// <paramref name="notAfter"/> (e.g. the expiry of the user token it was exchanged for).
    /// A background refresh starts at a random point between 75 % and 90 % of the usable time, so
    /// the many tokens fetched together (after a deploy, say) do not all refresh in the same second.
    /// </summary>
    /// <param name="jitter">A number in [0, 1) choosing that point; random when null.</param>
    public static CachedToken Create(
        string accessToken,
        DateTimeOffset now,
        TimeSpan lifetime,
        TimeSpan refreshBeforeExpiry,
        string fingerprint,
        DateTimeOffset? notAfter = null,
        double? jitter = null)
    {
        var margin = refreshBeforeExpiry < lifetime / 2 ? refreshBeforeExpiry : lifetime / 2;
        var useUntil = now + lifetime - margin;
        if (notAfter is { } bound && bound < useUntil)
        {
            useUntil = bound;
        }

        var usable = useUntil - now;
        var refreshAfter = usable > TimeSpan.Zero
            ? now + (usable * (0.75 + (0.15 * (jitter ?? Random.Shared.NextDouble()))))
            : useUntil;
        return new CachedToken(accessToken, now + lifetime, useUntil, refreshAfter, fingerprint);
    }

    public override string ToString() => $"token {Fingerprint} expiring {ExpiresAt:O}";
}

/// <summary>The serialised form sealed into the shared cache; source-generated, no reflection.</summary>
[JsonSerializable(typeof(CachedToken))]
internal sealed partial class CachedTokenJsonContext : JsonSerializerContext;
