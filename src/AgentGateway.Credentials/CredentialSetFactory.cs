using System.Collections.Frozen;
using AgentGateway.Configuration;
using AgentGateway.Credentials.Caching;
using AgentGateway.Credentials.Secrets;
using Microsoft.Extensions.Caching.Hybrid;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;

namespace AgentGateway.Credentials;

/// <summary>
/// Reads <c>Gateway:Credentials</c> and builds a revision's sources, handing each entry to the
/// <see cref="ICredentialKind"/> its <c>Kind</c> names. It knows no kind itself: kinds are
/// registered services. It also wires the revision's token cache, sealed with the revision's keys.
/// </summary>
public sealed class CredentialSetFactory
{
    private readonly FrozenDictionary<string, ICredentialKind> _kinds;
    private readonly HybridCache _localCache;
    private readonly ISharedCacheStore _sharedCache;
    private readonly AgentTokenIndex _agentTokens;
    private readonly TimeProvider _time;
    private readonly ILoggerFactory _loggers;

    public CredentialSetFactory(
        IEnumerable<ICredentialKind> kinds,
        HybridCache localCache,
        ISharedCacheStore sharedCache,
        AgentTokenIndex agentTokens,
        TimeProvider time,
        ILoggerFactory loggers)
    {
        // Kind values are case-sensitive in configuration, as they always were.
        _kinds = kinds.ToFrozenDictionary(k => k.Kind.Name, StringComparer.Ordinal);
        _localCache = localCache;
        _sharedCache = sharedCache;
        _agentTokens = agentTokens;
        _time = time;
        _loggers = loggers;
    }

    /// <summary>The registered kinds' names, as configuration spells them.</summary>
    public IEnumerable<string> KindNames => _kinds.Keys.Order(StringComparer.Ordinal);

    /// <summary>Reads and validates every entry, reporting each problem with its path. Resolves
    /// no secret and makes no network call.</summary>
    public IReadOnlyList<CredentialOptions> Read(IConfigurationSection credentials, ConfigProblems problems)
    {
        var read = new List<CredentialOptions>();
        foreach (var entry in credentials.GetChildren())
        {
            if (!CredentialName.IsValid(entry.Key))
            {
                problems.Add(entry.Path, $"credential name '{entry.Key}' must be letters, digits, '-', '_' or '.'");
                continue;
            }

            var kindText = entry["Kind"];
            if (kindText is null || !_kinds.TryGetValue(kindText, out var kind))
            {
                problems.Add(entry.Path + ":Kind", $"'{kindText}' is not a credential kind; expected one of: {string.Join(", ", KindNames)}");
                continue;
            }

            if (kind.Read(entry, problems) is { } options)
            {
                read.Add(options);
            }
        }

        return read;
    }

    /// <summary>Builds the sources of a revision: each kind resolves its secrets (a missing one is a
    /// load problem with its path).</summary>
    public CredentialSet Build(IReadOnlyList<CredentialOptions> credentials, CacheOptions cacheOptions, string sectionPath, ConfigProblems problems)
    {
        var cache = BuildCache(cacheOptions, problems);
        var sources = new Dictionary<string, ICredentialSource>(StringComparer.OrdinalIgnoreCase);
        foreach (var options in credentials)
        {
            var context = new CredentialBuildContext($"{sectionPath}:{options.Name}", cache);
            if (_kinds.TryGetValue(options.Kind.Name, out var kind) && kind.Build(options, context, problems) is { } source)
            {
                sources[options.Name] = source;
            }
        }

        return new CredentialSet(sources.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase));
    }

    private TokenCache BuildCache(CacheOptions options, ConfigProblems problems)
    {
        TokenSealer? sealer = null;
        if (options.EncryptionKey is { } reference && ResolveKey(reference, "Gateway:Cache:EncryptionKey", problems) is { } current)
        {
            var previous = new List<byte[]>();
            for (var i = 0; i < options.PreviousEncryptionKeys.Count; i++)
            {
                if (ResolveKey(options.PreviousEncryptionKeys[i], $"Gateway:Cache:PreviousEncryptionKeys:{i}", problems) is { } old)
                {
                    previous.Add(old);
                }
            }

            sealer = new TokenSealer(current, previous);
        }

        return new TokenCache(_localCache, _sharedCache, sealer, _time, _agentTokens, _loggers.CreateLogger<TokenCache>()) { MaxLifetime = options.MaxTokenLifetime };
    }

    private static byte[]? ResolveKey(SecretReference reference, string path, ConfigProblems problems)
    {
        if (!SecretResolver.TryResolve(reference, out var value, out var error))
        {
            problems.Add(path, error!);
            return null;
        }

        var key = new byte[TokenSealer.KeyBytes + 1];
        if (!Convert.TryFromBase64String(value!.Reveal().Trim(), key, out var length) || length != TokenSealer.KeyBytes)
        {
            problems.Add(path, $"must hold exactly {TokenSealer.KeyBytes} bytes, base64-encoded (e.g. the output of 'openssl rand -base64 32')");
            return null;
        }

        return key[..TokenSealer.KeyBytes];
    }
}
