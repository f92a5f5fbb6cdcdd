using AgentGateway.Configuration;
using AgentGateway.Credentials.Secrets;
using Microsoft.Extensions.Configuration;

namespace AgentGateway.Credentials.Caching;

/// <summary><c>Gateway:Cache</c>: how hop tokens are protected in the cache every replica shares.</summary>
[Setting("How hop tokens are protected in the cache the replicas share.")]
public sealed record CacheSettings
{
    /// <summary>Secret reference to 32 random bytes, base64-encoded: the AES-256-GCM key that seals
    /// every token written to Redis. Required when <c>Gateway:Redis</c> is set.</summary>
    [Setting("32 random bytes, base64 (openssl rand -base64 32): the AES-256-GCM key sealing every token written to Redis. Required with Redis.", Format = SettingFormat.SecretReference)]
    public string? EncryptionKey { get; init; }

    /// <summary>Secret references to keys being rotated out: entries sealed with them still open
    /// (until they expire), new entries use <see cref="EncryptionKey"/>.</summary>
    [Setting("Keys being rotated out: their entries still open until they expire.", Format = SettingFormat.SecretReference)]
    public string[] PreviousEncryptionKeys { get; init; } = [];

    /// <summary>No hop token is kept longer than this, whatever its issuer grants (default one hour).</summary>
    [Setting("No hop token is kept longer, whatever its issuer grants.")]
    public TimeSpan MaxTokenLifetime { get; init; } = TimeSpan.FromHours(1);
}

/// <summary>The validated <c>Gateway:Cache</c> section (<see cref="CacheSettings"/>): where the sealing keys live (not the keys).</summary>
/// <param name="EncryptionKey">Seals and opens; null only without a shared cache.</param>
/// <param name="PreviousEncryptionKeys">Open only.</param>
public sealed record CacheOptions(SecretReference? EncryptionKey, IReadOnlyList<SecretReference> PreviousEncryptionKeys)
{
    public static CacheOptions LocalOnly { get; } = new(null, []);

    /// <summary>No hop token is kept longer than this, whatever its issuer says.</summary>
    public TimeSpan MaxTokenLifetime { get; init; } = TimeSpan.FromHours(1);
}

public static class CacheConfigReader
{
    /// <param name="section">The <c>Gateway:Cache</c> section.</param>
    /// <param name="shared">Whether a shared cache (Redis) is configured: the key is then required,
    /// because tokens must never sit in Redis in the clear.</param>
    /// <param name="problems">Where every problem goes, with its path.</param>
    public static CacheOptions Read(IConfigurationSection section, bool shared, ConfigProblems problems)
    {
        var settings = SectionReader.Read<CacheSettings>(section, problems);
        SecretReference? current = null;
        if (settings.EncryptionKey is null)
        {
            if (shared)
            {
                problems.Add(section.Path + ":EncryptionKey", "is required when Gateway:Redis is set: hop tokens are encrypted before they reach Redis (a secret reference to 32 random bytes in base64, e.g. env:AGW_CACHE_KEY)");
            }
        }
        else if (SecretReference.TryParse(settings.EncryptionKey, out var parsed, out var error))
        {
            current = parsed;
        }
        else
        {
            problems.Add(section.Path + ":EncryptionKey", error);
        }

        var previous = new List<SecretReference>();
        for (var i = 0; i < settings.PreviousEncryptionKeys.Length; i++)
        {
            if (SecretReference.TryParse(settings.PreviousEncryptionKeys[i], out var parsed, out var error))
            {
                previous.Add(parsed.Value);
            }
            else
            {
                problems.Add($"{section.Path}:PreviousEncryptionKeys:{i}", error);
            }
        }

        if (settings.MaxTokenLifetime < TimeSpan.FromMinutes(1) || settings.MaxTokenLifetime > TimeSpan.FromDays(1))
        {
            problems.Add(section.Path + ":MaxTokenLifetime", "must be between 00:01:00 and 1.00:00:00");
        }

        return new CacheOptions(current, previous) { MaxTokenLifetime = settings.MaxTokenLifetime };
    }
}
