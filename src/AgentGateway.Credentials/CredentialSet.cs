using System.Collections.Frozen;

namespace AgentGateway.Credentials;

/// <summary>The credential sources of one configuration revision, by name.</summary>
public sealed class CredentialSet(FrozenDictionary<string, ICredentialSource> sources)
{
    public static CredentialSet Empty { get; } = new(FrozenDictionary<string, ICredentialSource>.Empty);

    public IReadOnlyCollection<string> Names => sources.Keys;

    public IEnumerable<ICredentialSource> Sources => sources.Values;

    public bool TryGet(string name, out ICredentialSource? source) => sources.TryGetValue(name, out source);
}
