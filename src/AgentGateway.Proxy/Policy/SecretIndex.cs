using System.Buffers;
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

    /// <summary>The characters of JWTs and opaque tokens (base64url, plus '.', '~', '+', '/').</summary>
    private static readonly SearchValues<char> TokenChars =
        SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~+/");

    /// <summary>Injected tokens, each with the forms an echo of it can take in a response, made once per token.</summary>
    private readonly ConcurrentDictionary<string, SecretForms> _tokens = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<string> _order = new();
    private StaticSecrets _static = new(0, [], SecretForms.None, null);

    /// <summary>The configured secrets of <paramref name="revision"/>, collected once per revision.</summary>
    private StaticSecrets Configured(GatewayRevision revision)
    {
        var cached = Volatile.Read(ref _static);
        if (cached.Revision == revision.Number)
        {
            return cached;
        }

        string[] secrets = [.. revision.Credentials.Sources.SelectMany(s => s.Secrets).Select(s => s.Reveal()).Where(s => s.Length >= MinimumLength).Distinct(StringComparer.Ordinal)];
        cached = new StaticSecrets(revision.Number, secrets, SecretForms.Of(secrets), secrets.Length == 0 ? null : SearchValues.Create(secrets, StringComparison.Ordinal));
        Volatile.Write(ref _static, cached);
        return cached;
    }

    /// <summary>The forms the configured secrets of <paramref name="revision"/> can take in a response.</summary>
    public SecretForms ConfiguredForms(GatewayRevision revision) => Configured(revision).Forms;

    /// <summary>The token part of an injected header value (after the scheme), or empty when there
    /// is none or it is too short to search for. A view, not a copy: this runs on every request.</summary>
    public static ReadOnlySpan<char> TokenOf(string? headerValue)
    {
        if (headerValue is null)
        {
            return default;
        }

        var token = headerValue.AsSpan(headerValue.LastIndexOf(' ') + 1);
        return token.Length >= MinimumLength ? token : default;
    }

    /// <summary>The forms the token in an injected header value can take in a response (none when
    /// there is no token); made once per token, when it is remembered.</summary>
    public SecretForms TokenForms(string? headerValue)
    {
        var token = TokenOf(headerValue);
        if (token.IsEmpty)
        {
            return SecretForms.None;
        }

        // Forgotten already (the oldest go first under load): made once more.
        return _tokens.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(token, out var forms) ? forms : SecretForms.Of([token.ToString()]);
    }

    /// <summary>Remembers a hop credential the gateway injected (its token part, without the scheme).</summary>
    public void Remember(HopCredential credential)
    {
        var span = TokenOf(credential.HeaderValue);
        if (span.IsEmpty || _tokens.GetAlternateLookup<ReadOnlySpan<char>>().ContainsKey(span))
        {
            // Most requests reuse a cached token: nothing to allocate.
            return;
        }

        var token = span.ToString();
        if (!_tokens.TryAdd(token, SecretForms.Of([token])))
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

        // One pass over the text for every configured secret at once, however many there are.
        var configured = Configured(revision);
        if (configured.Search is { } search && text.AsSpan().ContainsAny(search))
        {
            return true;
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

        // Run by run, each found by a vectorised search rather than a test of every character.
        var rest = text.AsSpan();
        while (rest.IndexOfAny(TokenChars) is var start and >= 0)
        {
            rest = rest[start..];
            var length = rest.IndexOfAnyExcept(TokenChars);
            if (length < 0)
            {
                length = rest.Length;
            }

            if (length >= MinimumLength && HoldsToken(rest[..length]))
            {
                return true;
            }

            rest = rest[length..];
        }

        return false;
    }

    /// <summary>Whether a token-shaped run is a remembered token, or holds one between its '/' —
    /// a path's separators are base64's characters too, so <c>/crm/accounts/{token}</c> is one run:
    /// every stretch from the run's start or a '/' to its end or a '/' is tried.</summary>
    private bool HoldsToken(ReadOnlySpan<char> run)
    {
        var lookup = _tokens.GetAlternateLookup<ReadOnlySpan<char>>();
        if (lookup.ContainsKey(run))
        {
            return true;
        }

        // Starts: 0 and after each '/'; ends: each '/' and the run's end. Paths have few slashes;
        // past 32 only the first 32 are cut at, which still finds a token in any early segment.
        Span<int> slashes = stackalloc int[32];
        var count = 0;
        for (var i = 0; i < run.Length && count < slashes.Length; i++)
        {
            if (run[i] == '/')
            {
                slashes[count++] = i;
            }
        }

        for (var s = -1; s < count; s++)
        {
            var from = s < 0 ? 0 : slashes[s] + 1;
            for (var e = s + 1; e <= count; e++)
            {
                var to = e == count ? run.Length : slashes[e];
                if (to - from >= MinimumLength && lookup.ContainsKey(run[from..to]))
                {
                    return true;
                }
            }
        }

        return false;
    }

    private sealed record StaticSecrets(long Revision, string[] Secrets, SecretForms Forms, SearchValues<string>? Search);
}
