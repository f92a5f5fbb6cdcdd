using AgentGateway.Credentials.Secrets;
using Microsoft.Extensions.Configuration;

namespace AgentGateway.Credentials.Configuration;

/// <summary>The validated <c>Gateway:Cache</c> section: where the sealing keys live (not the keys).</summary>
/// <param name="EncryptionKey">Seals and opens; null only without a shared cache.</param>
/// <param name="PreviousEncryptionKeys">Open only.</param>
public sealed record CacheDefinition(SecretReference? EncryptionKey, IReadOnlyList<SecretReference> PreviousEncryptionKeys)
{
    public static CacheDefinition LocalOnly { get; } = new(null, []);

    /// <summary>No hop token is kept longer than this, whatever its issuer says.</summary>
    public TimeSpan MaxTokenLifetime { get; init; } = TimeSpan.FromHours(1);
}

public static class CacheConfigReader
{
    /// <param name="section">The <c>Gateway:Cache</c> section.</param>
    /// <param name="shared">Whether a shared cache (Redis) is configured: the key is then required,
    /// because tokens must never sit in Redis in the clear.</param>
    /// <param name="problems">Where every problem goes, with its path.</param>
    public static CacheDefinition Read(IConfigurationSection section, bool shared, ConfigProblems problems)
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

        return new CacheDefinition(current, previous) { MaxTokenLifetime = settings.MaxTokenLifetime };
    }
}
