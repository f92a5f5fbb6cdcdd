using AgentGateway.Proxy.Stripping;

namespace AgentGateway.Proxy.Tests.Stripping;

public sealed class ForwardHeadersTests
{
    private static readonly string[] Control = ["Subject-Token", "Agent-Task"];

    [Fact]
    public void A_list_allows_exactly_its_names_in_any_case_and_what_http_needs()
    {
        var allowed = ForwardHeaders.Parse("Accept, anthropic-version;X-Tenant", Control, out var errors);

        Assert.Empty(errors);
        Assert.NotNull(allowed);
        Assert.True(allowed.Allows("accept"));
        Assert.True(allowed.Allows("ANTHROPIC-VERSION"));
        Assert.True(allowed.Allows("Content-Type"));
        Assert.True(allowed.Allows("Content-Length"));
        Assert.False(allowed.Allows("X_Tenant"));
        Assert.False(allowed.Allows("User-Agent"));
    }

    [Theory]
    [InlineData("Authorization", "credentials or identity")]
    [InlineData("X-Api-Key", "credentials or identity")]
    [InlineData("X-WebAuth-User", "credentials or identity")]
    [InlineData("x_forwarded_user", "credentials or identity")]
    [InlineData("X-HTTP-Method-Override", "credentials or identity")]
    [InlineData("subject_token", "credentials or identity")]
    [InlineData("Agent-Task", "addressed to the gateway")]
    [InlineData("Bad Name", "not a header name")]
    [InlineData(" , ;", "names no header")]
    public void A_list_naming_what_is_never_forwarded_is_refused(string value, string why)
    {
        var allowed = ForwardHeaders.Parse(value, Control, out var errors);

        Assert.Null(allowed);
        Assert.Contains(errors, e => e.Contains(why, StringComparison.Ordinal));
    }
}
