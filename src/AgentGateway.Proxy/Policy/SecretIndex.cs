using System.Collections.Concurrent;
using AgentGateway.Credentials;
using AgentGateway.Proxy.Configuration;

namespace AgentGateway.Proxy.Policy;

/// <summary>
/// Recognises the gateway's own secrets in what an agent sends: the configured long-lived ones
/// (API keys, client secrets), searched for anywhere in the text, and the hop tokens the gateway
/// has injected lately, found as whole token-shaped runs (a token has no use cut in half). An agent
/// never legitimately holds either; one that sends one has seen it somewhere it leaked.
/// </summary>
public sealed class SecretIndex
{
    /// <summary>Shorter strings are not searched for: they would match by chance.</summary>
    private const int MinimumLength = 12;

    /// <summary>How many injected tokens are remembered; the oldest are forgotten first.</summary>
    private const int TokenCapacity = 10_000;

    private readonly ConcurrentDictionary<string, byte> _tokens = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<string> _order = new();
    private StaticSecrets _static = new(0, []);

    /// <summary>The configured secrets of <paramref name="revision"/>, collected once per revision.</summary>
    private string[] Static(GatewayRevision revision)
    {
        var cached = Volatile.Read(ref _static);
        if (cached.Revision == revision.Number)
        {
            return cached.Secrets;
        }

        string[] secrets = [.. revision.Credentials.Sources.SelectMany(s => s.Secrets).Select(s => s.Reveal()).Where(s => s.Length >= MinimumLength).Distinct(StringComparer.Ordinal)];
        Volatile.Write(ref _static, new StaticSecrets(revision.Number, secrets));
        return secrets;
    }

    /// <summary>Remembers a hop credential the gateway injected (its token part, without the scheme).</summary>
    public void Remember(HopCredential credential)
    {
        if (credential.HeaderValue is not { } value)
        {
            return;
        }

        var space = value.LastIndexOf(' ');
        var token = space >= 0 ? value[(space + 1)..] : value;
        if (token.Length < MinimumLength || !_tokens.TryAdd(token, 0))
        {
            return;
        }

        _order.Enqueue(token);
        while (_tokens.Count > TokenCapacity && _order.TryDequeue(out var oldest))
        {
            _tokens.TryRemove(oldest, out _);
        }
    }

    /// <summary>Whether <paramref name="text"/> contains one of the gateway's secrets (those of
    /// <paramref name="revision"/>, and the tokens injected lately).</summary>
    public bool Contains(GatewayRevision revision, string? text)
    {
        if (string.IsNullOrEmpty(text) || text.Length < MinimumLength)
        {
            return false;
        }

        foreach (var secret in Static(revision))
        {
            if (text.Contains(secret, StringComparison.Ordinal))
            {
                return true;
            }
        }

        return ContainsToken(text);
    }

    /// <summary>Whether <paramref name="text"/> holds, as a whole token-shaped run, a hop token injected lately.</summary>
    public bool ContainsToken(string text)
    {
        if (_tokens.IsEmpty || text.Length < MinimumLength)
        {
            return false;
        }

        var span = text.AsSpan();
        var start = -1;
        for (var i = 0; i <= span.Length; i++)
        {
            var inRun = i < span.Length && IsTokenChar(span[i]);
            if (inRun && start < 0)
            {
                start = i;
            }
            else if (!inRun && start >= 0)
            {
                if (i - start >= MinimumLength && _tokens.GetAlternateLookup<ReadOnlySpan<char>>().ContainsKey(span[start..i]))
                {
                    return true;
                }

                start = -1;
            }
        }

        return false;
    }

    /// <summary>The characters of JWTs and opaque tokens (base64url, plus '.', '~', '+', '/').</summary>
    private static bool IsTokenChar(char c) => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or '~' or '+' or '/';

    private sealed record StaticSecrets(long Revision, string[] Secrets);
}
