using AgentGateway.Credentials.Secrets;

namespace AgentGateway.Credentials.ApiKeys;

/// <summary>A static key for the hop (an LLM provider's API key). The header value and its
/// fingerprint are computed once per configuration revision; a request costs nothing.</summary>
internal sealed class ApiKeySource : ICredentialSource
{
    private readonly CredentialResult _result;

    public ApiKeySource(ApiKeyOptions options, SecretValue secret, CredentialFingerprint fingerprint)
    {
        Name = options.Name;
        Secrets = [secret];
        HeaderName = options.Header;
        var value = options.Format.Replace("{secret}", secret.Reveal(), StringComparison.Ordinal);
        _result = CredentialResult.Success(new HopCredential(
            options.Name, CredentialKind.ApiKey, options.Header, value, fingerprint.Of(secret.Reveal()), CredentialSource.Static, ExpiresAt: null));
    }

    public string Name { get; }

    public CredentialKind Kind => CredentialKind.ApiKey;

    public string HeaderName { get; }

    public IReadOnlyList<SecretValue> Secrets { get; }

    public ValueTask<CredentialResult> GetAsync(CredentialRequest request, CancellationToken cancellationToken) => new(_result);
}
