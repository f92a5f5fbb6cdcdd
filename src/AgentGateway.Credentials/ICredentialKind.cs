using AgentGateway.Configuration;
using AgentGateway.Credentials.Caching;
using Microsoft.Extensions.Configuration;

namespace AgentGateway.Credentials;

/// <summary>
/// One kind of hop credential, as the broker sees it: how an entry of <c>Gateway:Credentials</c>
/// with this <c>Kind</c> is read and validated into <see cref="CredentialOptions"/>, and how a
/// revision's <see cref="ICredentialSource"/> is built from those. A kind is one folder and one
/// registration (<c>TryAddEnumerable</c>, see <c>AddCredentialBroker</c>); nothing else in the broker
/// lists the kinds.
/// </summary>
public interface ICredentialKind
{
    /// <summary>The configuration's <c>Kind</c> value.</summary>
    CredentialKind Kind { get; }

    /// <summary>The record an entry is bound to: the configuration schema describes entries of
    /// this kind from it.</summary>
    Type SettingsType { get; }

    /// <summary>Reads and validates one entry: every problem is added with its path. Resolves no
    /// secret and makes no network call, so <c>validate</c> can run it anywhere.</summary>
    /// <returns>The validated form, or null when anything is wrong.</returns>
    CredentialOptions? Read(IConfigurationSection entry, ConfigProblems problems);

    /// <summary>Builds the source that serves <paramref name="options"/> for one configuration
    /// revision, resolving the secrets they reference: a missing or unusable one is a problem at
    /// its path, not a failing request later.</summary>
    ICredentialSource? Build(CredentialOptions options, CredentialBuildContext context, ConfigProblems problems);
}

/// <summary>A credential validated from configuration (the <c>*Options</c> of a kind): what to
/// fetch and where its secrets live, never the secrets. Built once per revision.</summary>
/// <param name="Name">The credential's name, as routes refer to it.</param>
public abstract record CredentialOptions(string Name)
{
    public abstract CredentialKind Kind { get; }
}

/// <summary>What a revision gives the sources it builds.</summary>
/// <param name="Path">The entry's configuration path, for problems (<c>Gateway:Credentials:crm</c>).</param>
/// <param name="Cache">The revision's token cache, sealed with its keys.</param>
public sealed record CredentialBuildContext(string Path, TokenCache Cache);

/// <summary>
/// The usual shape of a kind: bind <typeparamref name="TSettings"/> (unknown keys and unreadable
/// values are problems, see <see cref="SectionReader"/>), validate them into
/// <typeparamref name="TOptions"/>, build a source from those.
/// </summary>
/// <typeparam name="TSettings">The entry as written (<c>*Settings</c>, bound from configuration).</typeparam>
/// <typeparam name="TOptions">The entry validated (<c>*Options</c>).</typeparam>
public abstract class CredentialKindBase<TSettings, TOptions> : ICredentialKind
    where TSettings : class, new()
    where TOptions : CredentialOptions
{
    public abstract CredentialKind Kind { get; }

    public Type SettingsType => typeof(TSettings);

    public CredentialOptions? Read(IConfigurationSection entry, ConfigProblems problems) =>
        Validate(entry.Key, entry.Path, SectionReader.Read<TSettings>(entry, problems), problems);

    public ICredentialSource? Build(CredentialOptions options, CredentialBuildContext context, ConfigProblems problems) =>
        Build((TOptions)options, context, problems);

    /// <param name="name">The credential's name.</param>
    /// <param name="path">The entry's configuration path: each problem names the setting under it.</param>
    /// <param name="settings">The entry as bound.</param>
    /// <param name="problems">Where every problem goes.</param>
    protected abstract TOptions? Validate(string name, string path, TSettings settings, ConfigProblems problems);

    protected abstract ICredentialSource? Build(TOptions options, CredentialBuildContext context, ConfigProblems problems);
}
