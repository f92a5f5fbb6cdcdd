namespace AgentGateway.Credentials;

/// <summary>Issues one configured credential. Built once per configuration revision; the hot path
/// is <see cref="GetAsync"/>, which makes no network call when its cache is warm.</summary>
public interface ICredentialSource
{
    string Name { get; }

    CredentialKind Kind { get; }

    /// <summary>The header this source writes; the injection point strips every spelling of it first.
    /// Null when the credential travels outside headers (a client certificate, on the connection).</summary>
    string? HeaderName { get; }

    /// <summary>Whether the source needs a <see cref="Delegation"/>: a request without one is refused before proxying.</summary>
    bool RequiresDelegation => false;

    /// <summary>The long-lived secrets this source holds (API keys, client secrets), so the gateway
    /// can recognise one if an agent ever sends it — it should never have seen it.</summary>
    IReadOnlyList<Secrets.SecretValue> Secrets => [];

    ValueTask<CredentialResult> GetAsync(CredentialRequest request, CancellationToken cancellationToken);

    /// <summary>The upstream refused <paramref name="used"/> (401): drop it from every cache level,
    /// so the next request fetches a fresh one. Returns whether the next request gets another
    /// credential (dropped now, or already replaced): false for static credentials (nothing to
    /// drop) and when the same entry was dropped for a refusal moments ago and still holds the
    /// refused one (see <see cref="Caching.TokenCache.RefusalDropInterval"/>).</summary>
    ValueTask<bool> InvalidateAsync(CredentialRequest request, HopCredential used, CancellationToken cancellationToken) => ValueTask.FromResult(false);
}
