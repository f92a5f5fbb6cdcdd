using AgentGateway.Proxy.Policy;

namespace AgentGateway.Proxy.Tests.Policy;

public sealed class PatternAndWindowTests
{
    [Theory]
    [InlineData("/accounts/*", "/accounts/42", true)]
    [InlineData("/accounts/*", "/accounts/42/orders", false)]
    [InlineData("/accounts/**", "/accounts/42/orders", true)]
    [InlineData("/accounts/**", "/accountsX", false)]
    [InlineData("/accounts/*/orders", "/accounts/7/orders", true)]
    [InlineData("/accounts/*/orders", "/accounts/7/x/orders", false)]
    [InlineData("/a.b", "/aXb", false)]
    [InlineData("/Accounts", "/accounts", false)]
    public void Path_patterns_keep_single_stars_within_a_segment(string pattern, string path, bool expected) =>
        Assert.Equal(expected, GlobPattern.ForPath(pattern).IsMatch(path));

    [Theory]
    [InlineData("lookup_*", "lookup_customer", true)]
    [InlineData("lookup_*", "xlookup_customer", false)]
    [InlineData("lookup_*", "Lookup_customer", false)]
    [InlineData("gpt-4.1*", "gpt-4.1-nano", true)]
    [InlineData("gpt-4.1*", "gpt-401", false)]
    [InlineData("*", "anything/at.all", true)]
    public void Name_patterns_are_exact_except_for_stars(string pattern, string name, bool expected) =>
        Assert.Equal(expected, GlobPattern.ForName(pattern).IsMatch(name));

    [Theory]
    [InlineData("/a//b", true)]
    [InlineData("/a/%2F/b", true)]
    [InlineData("/a/%2e%2e/b", true)]
    [InlineData("/a/%252F", true)]
    [InlineData("/a\\b", true)]
    [InlineData("/a;x=1", true)]
    [InlineData("/a/../b", true)]
    [InlineData("/a/./b", true)]
    [InlineData("/a/b\u0000", true)]
    [InlineData("/a/b.json", false)]
    [InlineData("/a/b-c_d~e", false)]
    public void Ambiguous_paths_are_named(string path, bool ambiguous) =>
        Assert.Equal(ambiguous, PolicyEngine.AmbiguousPath(path) is not null);

    [Fact]
    public void An_overnight_window_belongs_to_the_day_it_starts()
    {
        var window = new TimeWindow(new HashSet<DayOfWeek> { DayOfWeek.Friday }, new TimeOnly(22, 0), new TimeOnly(6, 0), TimeZoneInfo.Utc);

        Assert.True(window.Contains(new DateTimeOffset(2026, 11, 20, 23, 0, 0, TimeSpan.Zero)));  // Friday night
        Assert.True(window.Contains(new DateTimeOffset(2026, 11, 21, 5, 59, 0, TimeSpan.Zero)));  // Saturday morning, Friday's window
        Assert.False(window.Contains(new DateTimeOffset(2026, 11, 21, 23, 0, 0, TimeSpan.Zero))); // Saturday night
        Assert.False(window.Contains(new DateTimeOffset(2026, 11, 20, 5, 0, 0, TimeSpan.Zero)));  // Friday morning is Thursday's
    }

    [Fact]
    public void A_window_is_read_in_its_time_zone()
    {
        var berlin = TimeZoneInfo.FindSystemTimeZoneById("Europe/Berlin");
        var window = new TimeWindow(new HashSet<DayOfWeek> { DayOfWeek.Monday }, new TimeOnly(9, 0), new TimeOnly(17, 0), berlin);

        Assert.True(window.Contains(new DateTimeOffset(2026, 11, 23, 8, 30, 0, TimeSpan.Zero)));   // 09:30 in Berlin
        Assert.False(window.Contains(new DateTimeOffset(2026, 11, 23, 16, 30, 0, TimeSpan.Zero))); // 17:30 in Berlin
    }
}
