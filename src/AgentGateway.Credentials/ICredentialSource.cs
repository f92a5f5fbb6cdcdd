namespace AgentGateway.Credentials;

/// <summary>Issues one configured credential. Built once per configuration revision; the hot path
/// is <see cref="GetAsync"/>, which makes no network call when its cache is warm.</summary>
public interface ICredentialSource
{
    string Name { get; }

    CredentialKind Kind { get; }

    /// <summary>The header this source writes; the injection point strips every spelling of it first.</summary>
    string HeaderName { get; }

    ValueTask<CredentialResult> GetAsync(CancellationToken cancellationToken);
}
