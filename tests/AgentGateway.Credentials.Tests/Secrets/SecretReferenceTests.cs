using AgentGateway.Credentials.Secrets;

namespace AgentGateway.Credentials.Tests.Secrets;

public sealed class SecretReferenceTests
{
    [Theory]
    [InlineData("env:OPENAI_API_KEY", SecretStore.Environment, "OPENAI_API_KEY")]
    [InlineData("file:/run/secrets/key", SecretStore.File, "/run/secrets/key")]
    public void References_parse(string text, SecretStore store, string location)
    {
        Assert.True(SecretReference.TryParse(text, out var reference, out _));
        Assert.Equal(new SecretReference(store, location), reference);
    }

    [Theory]
    [InlineData("env:")]
    [InlineData("ENV:X")]
    [InlineData("")]
    [InlineData("sk-live-0123456789")]
    public void Anything_else_is_refused(string text)
    {
        Assert.False(SecretReference.TryParse(text, out _, out _));
    }

    [Fact]
    public void A_pasted_secret_is_not_echoed_in_the_error()
    {
        Assert.False(SecretReference.TryParse("sk-live-0123456789", out _, out var error));
        Assert.DoesNotContain("sk-live-0123456789", error, StringComparison.Ordinal);
    }

    [Fact]
    public void A_file_secret_is_read_without_its_trailing_newline_and_never_formats_as_itself()
    {
        var file = Path.GetTempFileName();
        File.WriteAllText(file, "file-secret\n");

        Assert.True(SecretResolver.TryResolve(new SecretReference(SecretStore.File, file), out var value, out _));
        Assert.Equal("file-secret", value!.Reveal());
        Assert.Equal("[secret]", value.ToString());
        Assert.Equal("[secret]", $"{value}");
    }

    [Fact]
    public void A_missing_environment_variable_is_an_error_naming_the_variable()
    {
        Assert.False(SecretResolver.TryResolve(new SecretReference(SecretStore.Environment, "AGW_SURELY_UNSET_" + Guid.NewGuid().ToString("N")), out _, out var error));
        Assert.Contains("is not set", error, StringComparison.Ordinal);
    }
}
