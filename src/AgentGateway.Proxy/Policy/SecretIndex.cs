using System.Buffers;
using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using AgentGateway.Credentials;

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

    /// <summary>The lengths of the tokens remembered so far (never cleared: a length whose tokens
    /// were all forgotten only costs a lookup). A run of any other length is no remembered token, so
    /// it is not looked up: hashing the agent's own 800-character JWT twice was most of what this
    /// index cost per request. Longer tokens than this are always looked up.</summary>
    private readonly bool[] _lengths = new bool[4097];

    /// <summary>Header values remembered lately, with their token's forms, in slots chosen by the
    /// string object's identity. A warm route injects one cached credential, the same string object
    /// request after request, so it is recognised by reference instead of hashing its token (a JWT
    /// of about a kilobyte) twice per request, to remember it and to find its forms for the answer.
    /// A slot only ever holds a value whose token is in <see cref="_tokens"/>: written after the
    /// token is added, and every slot is cleared whenever a token is forgotten.</summary>
    private readonly Remembered?[] _recent = new Remembered?[16];

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
        if (headerValue is not null && Recent(headerValue) is { } recent)
        {
            return recent.Forms;
        }

        var token = TokenOf(headerValue);
        if (token.IsEmpty)
        {
            return SecretForms.None;
        }

        // Forgotten already (the oldest go first under load): made once more.
        return _tokens.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(token, out var forms) ? forms : SecretForms.Of([token.ToString()]);
    }

    /// <summary>The forms of the token in an injected header value that a route's answer guard
    /// searches for beyond those of the <paramref name="configured"/> secrets: none when the token is
    /// one of them (an API key), whose forms are searched for already — searching them twice would
    /// double the search of every answer. Found by the value's identity (<see cref="TokenForms"/>)
    /// like every other lookup of an injected value here: one cache of what was injected, not one
    /// per route besides this one.</summary>
    public SecretForms InjectedForms(string? headerValue, ConfiguredSecrets configured)
    {
        var token = TokenOf(headerValue);
        return token.IsEmpty || configured.Includes(token) ? SecretForms.None : TokenForms(headerValue);
    }

    /// <summary>Remembers a hop credential the gateway injected (its token part, without the scheme).</summary>
    public void Remember(HopCredential credential)
    {
        if (credential.HeaderValue is not { } headerValue || Recent(headerValue) is not null)
        {
            // The same value as last time: remembered already, nothing to hash.
            return;
        }

        var span = TokenOf(headerValue);
        if (span.IsEmpty)
        {
            return;
        }

        if (_tokens.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(span, out var known))
        {
            // Most requests reuse a cached token: nothing to allocate but the note of it.
            Note(headerValue, span, known);
            return;
        }

        var token = span.ToString();
        if (token.Length < _lengths.Length)
        {
            // Before the token is findable, so no search that could find it skips its length.
            Volatile.Write(ref _lengths[token.Length], true);
        }

        var forms = SecretForms.Of([token]);
        if (!_tokens.TryAdd(token, forms))
        {
            return;
        }

        _order.Enqueue(token);
        while (_tokens.Count > TokenCapacity && _order.TryDequeue(out var oldest))
        {
            _tokens.TryRemove(oldest, out _);
            for (var i = 0; i < _recent.Length; i++)
            {
                Volatile.Write(ref _recent[i], null);
            }
        }

        Note(headerValue, token, forms);
    }

    /// <summary>The slot's note of this very string object, if it has one.</summary>
    private Remembered? Recent(string headerValue) =>
        Volatile.Read(ref _recent[Slot(headerValue)]) is { } recent && ReferenceEquals(recent.HeaderValue, headerValue) ? recent : null;

    private int Slot(string headerValue) => RuntimeHelpers.GetHashCode(headerValue) & (_recent.Length - 1);

    /// <summary>Notes <paramref name="headerValue"/> as remembered, then checks that its token was
    /// not forgotten meanwhile: a forgetting either came first (seen here, and the note withdrawn)
    /// or clears the note after it was written.</summary>
    private void Note(string headerValue, ReadOnlySpan<char> token, SecretForms forms)
    {
        var slot = Slot(headerValue);
        // A full fence, not a release write: the check below must not be read before the note is
        // visible, or a forgetting that cleared the slots in between would be overwritten by this
        // note and its token never remembered again (a release store followed by a load may be
        // reordered, even on x64).
        Interlocked.Exchange(ref _recent[slot], new Remembered(headerValue, forms));
        if (!_tokens.GetAlternateLookup<ReadOnlySpan<char>>().ContainsKey(token))
        {
            Volatile.Write(ref _recent[slot], null);
        }
    }

    private sealed record Remembered(string HeaderValue, SecretForms Forms);

    /// <summary>Whether <paramref name="text"/> contains one of the gateway's secrets (the
    /// <paramref name="configured"/> ones of a revision, and the tokens injected lately).</summary>
    public bool Contains(ConfiguredSecrets configured, string? text) => Contains(configured, text.AsSpan());

    /// <inheritdoc cref="Contains(ConfiguredSecrets, string?)"/>
    public bool Contains(ConfiguredSecrets configured, ReadOnlySpan<char> text) =>
        text.Length >= MinimumLength && (configured.IsIn(text) || ContainsToken(text));

    /// <summary>Whether <paramref name="text"/> holds, as a whole token-shaped run, a hop token injected lately.</summary>
    public bool ContainsToken(string text) => ContainsToken(text.AsSpan());

    /// <inheritdoc cref="ContainsToken(string)"/>
    public bool ContainsToken(ReadOnlySpan<char> text)
    {
        if (_tokens.IsEmpty || text.Length < MinimumLength)
        {
            return false;
        }

        // Run by run, each found by a vectorised search rather than a test of every character.
        var rest = text;
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
        if (MayBeRemembered(run.Length) && lookup.ContainsKey(run))
        {
            return true;
        }

        if (!run.Contains('/'))
        {
            // One stretch, the whole run, looked up above: an agent's JWT is found so, with one
            // vectorised search instead of a test of each of its characters for a '/'.
            return false;
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
                // The whole run was looked up above (in a JWT, the only stretch there is).
                if (to - from >= MinimumLength && (from, to) != (0, run.Length) && MayBeRemembered(to - from) && lookup.ContainsKey(run[from..to]))
                {
                    return true;
                }
            }
        }

        return false;
    }

    private bool MayBeRemembered(int length) => length >= _lengths.Length || Volatile.Read(ref _lengths[length]);

    /// <summary>Whether <paramref name="text"/> is long enough to hold a secret at all.</summary>
    internal static bool CouldHold(ReadOnlySpan<char> text) => text.Length >= MinimumLength;
}

/// <summary>
/// The long-lived secrets one revision configures (API keys, client secrets), compiled once per
/// revision: one vectorised search for all of them at once, however many there are, and the forms
/// an echo of them can take in a response.
/// </summary>
public sealed class ConfiguredSecrets
{
    private readonly string[] _secrets;
    private readonly SearchValues<string>? _search;

    /// <summary>The fewest characters any of them has: shorter text holds none.</summary>
    private readonly int _shortest;

    private ConfiguredSecrets(string[] secrets)
    {
        _secrets = secrets;
        Forms = SecretForms.Of(secrets);
        _search = secrets.Length == 0 ? null : SearchValues.Create(secrets, StringComparison.Ordinal);
        _shortest = secrets.Length == 0 ? int.MaxValue : secrets.Min(s => s.Length);
    }

    public static ConfiguredSecrets None { get; } = new([]);

    /// <summary>The forms these secrets can take in a response.</summary>
    public SecretForms Forms { get; }

    /// <summary>The secrets of <paramref name="credentials"/>; those too short to search for without
    /// matching by chance are left out.</summary>
    public static ConfiguredSecrets Of(CredentialSet credentials) =>
        new([.. credentials.Sources.SelectMany(s => s.Secrets).Select(s => s.Reveal()).Where(s => SecretIndex.CouldHold(s)).Distinct(StringComparer.Ordinal)]);

    /// <summary>Whether <paramref name="text"/> holds one of these secrets.</summary>
    /// <remarks>With no secrets the shortest is <see cref="int.MaxValue"/>, so there is always a search when it is used.</remarks>
    public bool IsIn(ReadOnlySpan<char> text) => text.Length >= _shortest && text.ContainsAny(_search!);

    /// <summary>Whether <paramref name="secret"/> is exactly one of these secrets (whose
    /// <see cref="Forms"/> are then its forms too).</summary>
    public bool Includes(ReadOnlySpan<char> secret)
    {
        foreach (var configured in _secrets)
        {
            if (secret.SequenceEqual(configured))
            {
                return true;
            }
        }

        return false;
    }
}
