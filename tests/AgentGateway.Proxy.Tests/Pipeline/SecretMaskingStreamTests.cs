using System.Text;
using AgentGateway.Proxy.Pipeline;
using AgentGateway.Proxy.Policy;

namespace AgentGateway.Proxy.Tests.Pipeline;

public sealed class SecretMaskingStreamTests
{
    private static readonly string[] Secrets = ["sk-live-0123456789abcdef", "eyJhbGciOi.payload.sig-xyz"];

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(7)]
    [InlineData(4096)]
    public async Task Secrets_are_masked_at_the_same_length_however_the_body_is_cut_into_writes(int seed)
    {
        var body = "{\"a\":\"sk-live-0123456789abcdef\",\"b\":\"sk-live-0123\",\"c\":\"ssk-live-0123456789abcdefg eyJhbGciOi.payload.sig-xyz\"}";
        var expected = body.Replace(Secrets[0], new string('*', Secrets[0].Length), StringComparison.Ordinal).Replace(Secrets[1], new string('*', Secrets[1].Length), StringComparison.Ordinal);

        var (output, masked) = await WriteInPiecesAsync(body, new Random(seed));

        Assert.Equal(expected, output);
        Assert.Equal(body.Length, output.Length);
        Assert.True(masked);
    }

    [Fact]
    public async Task A_body_ending_in_the_start_of_a_secret_is_written_whole_when_it_completes()
    {
        var (output, masked) = await WriteInPiecesAsync("data: hello sk-live-0123", new Random(3));

        Assert.Equal("data: hello sk-live-0123", output);
        Assert.False(masked);
    }

    [Fact]
    public async Task Only_a_possible_secret_start_is_held_back_so_a_streamed_event_goes_out_at_once()
    {
        using var sink = new MemoryStream();
        var stream = new SecretMaskingStream(sink, SecretForms.Of([Secrets[0]]), SecretForms.Of([Secrets[1]]), () => { });

        await stream.WriteAsync(Encoding.UTF8.GetBytes("data: {\"x\":1}\n\n"));
        Assert.Equal("data: {\"x\":1}\n\n", Encoding.UTF8.GetString(sink.ToArray()));

        await stream.WriteAsync(Encoding.UTF8.GetBytes("data: sk-li"));
        Assert.Equal("data: {\"x\":1}\n\ndata: ", Encoding.UTF8.GetString(sink.ToArray()));
    }

    [Fact]
    public async Task The_last_write_masks_what_it_completes_and_holds_nothing_back()
    {
        using var sink = new MemoryStream();
        var masked = false;
        var stream = new SecretMaskingStream(sink, SecretForms.Of([Secrets[0]]), SecretForms.Of([Secrets[1]]), () => masked = true);

        await stream.WriteAsync(Encoding.UTF8.GetBytes("a: sk-li"));
        await stream.WriteLastAsync(Encoding.UTF8.GetBytes("ve-0123456789abcdef, b: sk-live-0123"), CancellationToken.None);

        // Everything is out before CompleteAsync, the end that only looked like a secret's start too.
        Assert.Equal("a: " + new string('*', Secrets[0].Length) + ", b: sk-live-0123", Encoding.UTF8.GetString(sink.ToArray()));
        Assert.True(masked);
    }

    private static async Task<(string Output, bool Masked)> WriteInPiecesAsync(string body, Random random)
    {
        using var sink = new MemoryStream();
        var masked = false;
        var stream = new SecretMaskingStream(sink, SecretForms.Of([Secrets[0]]), SecretForms.Of([Secrets[1]]), () => masked = true);
        var bytes = Encoding.UTF8.GetBytes(body);
        for (var at = 0; at < bytes.Length;)
        {
            var length = Math.Min(bytes.Length - at, random.Next(1, 12));
            await stream.WriteAsync(bytes.AsMemory(at, length));
            at += length;
        }

        await stream.CompleteAsync(CancellationToken.None);
        return (Encoding.UTF8.GetString(sink.ToArray()), masked);
    }
}
