using System.Collections.Frozen;
using AgentGateway.Proxy.Configuration;
using AgentGateway.Proxy.Identity;
using AgentGateway.Proxy.Tests.Configuration;
using Microsoft.AspNetCore.Http;

namespace AgentGateway.Proxy.Tests.Identity;

/// <summary>The cache of verified tokens is a security cache: its key is a fast, non-cryptographic
/// hash, so an entry must answer only for the very token it was made for.</summary>
public sealed class ValidationCacheTests
{
    private static readonly DateTimeOffset Now = DateTimeOffset.Parse("2026-11-28T10:00:00Z", System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public void A_cached_success_answers_only_for_the_token_it_was_made_for_even_under_the_same_key()
    {
        var cache = new ValidationCache();
        const string verified = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhZ2VudCJ9.c2lnbmF0dXJlLW9mLWFnZW50";
        var key = ValidationCache.Key(verified, revision: 1);
        cache.Add(key, verified, new TokenCheck(null, null, default, verified), Now.AddMinutes(1));

        // Another token that lands on the same key (a collision, by chance or by design): same
        // length, one character different, and a token differing only in its length.
        var forged = verified[..^1] + "X";
        Assert.False(cache.TryGet(key, forged, Now, out _, out _));
        Assert.False(cache.TryGet(key, verified + "A", Now, out _, out _));
        Assert.False(cache.TryGet(key, verified.AsSpan(0, verified.Length - 1), Now, out _, out _));

        // The token itself, read from another string (a later request's header), is answered with
        // the string kept when it was verified.
        var again = new string(verified.AsSpan());
        Assert.True(cache.TryGet(ValidationCache.Key(again, 1), again, Now, out var check, out var kept));
        Assert.Same(verified, kept);
        Assert.Same(verified, check.Token);
    }

    [Fact]
    public void The_constant_time_comparison_finds_a_difference_in_any_character_and_either_byte_of_it()
    {
        // Lengths around the 8-character (16-byte) blocks it compares at once, and one of a real
        // token's size; a difference at every position, in the low byte and in the high byte alone.
        foreach (var length in new[] { 0, 1, 7, 8, 9, 15, 16, 17, 31, 33, 812 })
        {
            var token = new string(Enumerable.Range(0, length).Select(i => (char)('a' + (i % 26))).ToArray());
            Assert.True(ValidationCache.SameToken(token, new string(token.AsSpan())));
            for (var at = 0; at < length; at++)
            {
                foreach (var other in new[] { (char)(token[at] ^ 1), (char)(token[at] | 0x0100) })
                {
                    var changed = token.ToCharArray();
                    changed[at] = other;
                    Assert.False(ValidationCache.SameToken(token, changed), $"length {length}, position {at}, U+{(int)other:X4}");
                }
            }

            Assert.False(ValidationCache.SameToken(token, token + "a"));
            Assert.False(ValidationCache.SameToken(token + "a", token));
        }
    }

    [Fact]
    public void An_entry_expires_and_belongs_to_its_revision()
    {
        var cache = new ValidationCache();
        const string token = "a.b.c";
        cache.Add(ValidationCache.Key(token, 1), token, new TokenCheck(null, null, default, token), Now.AddSeconds(30));

        Assert.True(cache.TryGet(ValidationCache.Key(token, 1), token, Now, out _, out _));
        Assert.False(cache.TryGet(ValidationCache.Key(token, 2), token, Now, out _, out _));
        Assert.False(cache.TryGet(ValidationCache.Key(token, 1), token, Now.AddSeconds(30), out _, out _));
        Assert.NotEqual(ValidationCache.Key("a.b.c", 1), ValidationCache.Key("a.b.d", 1));
    }

    [Fact]
    public void The_token_is_read_from_the_Authorization_header_in_place()
    {
        var context = new DefaultHttpContext();
        context.Request.Headers.Authorization = "Bearer eyJ.eyJ.sig";
        var header = context.Request.Headers.Authorization[0]!;

        var presented = AccessTokenRules.Read(context.Request, Revision());

        Assert.Same(header, presented.Header);
        Assert.Equal("eyJ.eyJ.sig", presented.Token.ToString());
        Assert.DoesNotContain("eyJ", presented.ToString(), StringComparison.Ordinal);
    }

    /// <summary>A revision that is only its inbound token size limit: what reading a header needs.</summary>
    private static GatewayRevision Revision() =>
        BareRevision.Of(1, new InboundOptions(FrozenDictionary<string, TrustedIssuer>.Empty, 16 * 1024, null!));
}
