using System.Security.Cryptography;
using System.Text;
using AgentGateway.Credentials.Caching;

namespace AgentGateway.Credentials.Tests.Caching;

public sealed class TokenSealerTests
{
    private static readonly byte[] Plain = Encoding.UTF8.GetBytes("{\"AccessToken\":\"secret-hop-token\"}");

    private readonly byte[] _key = RandomNumberGenerator.GetBytes(TokenSealer.KeyBytes);

    [Fact]
    public void A_sealed_entry_opens_under_its_own_key_and_does_not_contain_the_plaintext()
    {
        var sealer = new TokenSealer(_key, []);

        var sealedBytes = sealer.Seal("agw:token:v1:a", Plain);

        Assert.Equal(Plain, sealer.TryOpen("agw:token:v1:a", sealedBytes));
        Assert.Equal(-1, sealedBytes.AsSpan().IndexOf("secret-hop-token"u8));
    }

    [Fact]
    public void Every_single_bit_flip_anywhere_in_an_entry_makes_it_a_miss()
    {
        var sealer = new TokenSealer(_key, []);
        var sealedBytes = sealer.Seal("k", Plain);

        for (var i = 0; i < sealedBytes.Length; i++)
        {
            for (var bit = 0; bit < 8; bit++)
            {
                var tampered = (byte[])sealedBytes.Clone();
                tampered[i] ^= (byte)(1 << bit);
                Assert.Null(sealer.TryOpen("k", tampered));
            }
        }
    }

    [Fact]
    public void An_entry_copied_under_another_cache_key_does_not_open()
    {
        var sealer = new TokenSealer(_key, []);

        var sealedBytes = sealer.Seal("agw:token:v1:for-agent-a", Plain);

        Assert.Null(sealer.TryOpen("agw:token:v1:for-agent-b", sealedBytes));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(36)]
    public void Truncated_or_empty_entries_are_misses(int length)
    {
        var sealer = new TokenSealer(_key, []);
        var sealedBytes = sealer.Seal("k", Plain);

        Assert.Null(sealer.TryOpen("k", sealedBytes.AsSpan(0, length)));
    }

    [Fact]
    public void An_entry_written_by_someone_without_the_key_does_not_open()
    {
        var foreign = new TokenSealer(RandomNumberGenerator.GetBytes(TokenSealer.KeyBytes), []);
        var sealer = new TokenSealer(_key, []);

        Assert.Null(sealer.TryOpen("k", foreign.Seal("k", Plain)));
    }

    [Fact]
    public void After_rotation_old_entries_still_open_and_new_ones_use_the_new_key()
    {
        var before = new TokenSealer(_key, []);
        var oldEntry = before.Seal("k", Plain);
        var newKey = RandomNumberGenerator.GetBytes(TokenSealer.KeyBytes);
        var after = new TokenSealer(newKey, [_key]);

        var newEntry = after.Seal("k", Plain);

        Assert.Equal(Plain, after.TryOpen("k", oldEntry));
        Assert.Null(before.TryOpen("k", newEntry));
        Assert.Null(new TokenSealer(newKey, []).TryOpen("k", oldEntry));
    }

    [Fact]
    public void Sealing_the_same_token_twice_gives_different_bytes()
    {
        var sealer = new TokenSealer(_key, []);

        Assert.NotEqual(sealer.Seal("k", Plain), sealer.Seal("k", Plain));
    }
}
