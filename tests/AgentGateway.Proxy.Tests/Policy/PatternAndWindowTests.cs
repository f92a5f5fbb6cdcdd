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
    [InlineData("/accounts", "/accounts\n")]
    [InlineData("/accounts/*/orders", "/accounts/7/orders\n")]
    [InlineData("/accounts/**/orders", "/accounts/7/orders\n")]
    public void A_trailing_line_feed_is_not_the_end_of_a_value(string pattern, string value) =>
        Assert.False(GlobPattern.ForPath(pattern).IsMatch(value));

    public static TheoryData<string, string> PatternsOfEveryKind()
    {
        string[] paths = ["/v1/models", "/crm/**", "/crm/*", "/crm/*/orders", "*", "**", "/a.b*", "/a/**/z", "/x?y*"];
        string[] names = ["lookup_*", "delete_all", "*", "a*b", "gpt-4.1*"];
        string[] uris = ["file:///docs/*", "file:///docs/**", "res://x?id=*", "res://x?id=*&y=1", "res://exact", "res://a/*?q=**"];
        var data = new TheoryData<string, string>();
        foreach (var p in paths)
        {
            data.Add("path", p);
        }

        foreach (var p in names)
        {
            data.Add("name", p);
        }

        foreach (var p in uris)
        {
            data.Add("uri", p);
        }

        return data;
    }

    /// <summary>The shapes decided without the regular expression decide as it does, on values
    /// that end where the pattern does, run on, cross a segment, a query or a fragment, or a line end.</summary>
    [Theory]
    [MemberData(nameof(PatternsOfEveryKind))]
    public void Every_pattern_decides_as_its_regular_expression(string kind, string text)
    {
        var pattern = kind switch
        {
            "path" => GlobPattern.ForPath(text),
            "name" => GlobPattern.ForName(text),
            _ => GlobPattern.ForUri(text),
        };
        var expression = new System.Text.RegularExpressions.Regex(pattern.Expression, GlobPattern.Options);
        var literal = text.Replace("*", "", StringComparison.Ordinal);
        string[] tails = ["", "x", "x/y", "/", "x?q=1", "x#f", "x&y=2", "x=1", "\n", "x\n", "ß/é", "*"];
        string[] values = [literal, text, "", "/", "X" + literal, .. tails.Select(t => literal + t), .. tails.Select(t => text.Replace("*", t, StringComparison.Ordinal))];
        foreach (var value in values)
        {
            Assert.True(expression.IsMatch(value) == pattern.IsMatch(value), $"'{text}' ({kind}) on '{value}': the expression says {expression.IsMatch(value)}");
        }
    }

    /// <summary>The same, over generated patterns and values: literals of the characters the
    /// wildcards stop at (and a line end, a capital, a non-ASCII letter), ending in no wildcard, one
    /// or two stars, or with one inside; values that repeat the literal, cut it, change its case and
    /// run on with any of those characters. Seeded, so a failure names a case that repeats.</summary>
    [Fact]
    public void Generated_patterns_decide_as_their_regular_expressions()
    {
        const string alphabet = "ab/?#&=.\nAé%";
        var random = new Random(20261129);
        string Run(int max)
        {
            var chars = new char[random.Next(max + 1)];
            for (var i = 0; i < chars.Length; i++)
            {
                chars[i] = alphabet[random.Next(alphabet.Length)];
            }

            return new string(chars);
        }

        var decidedWithout = 0;
        for (var n = 0; n < 3000; n++)
        {
            var literal = Run(5);
            var text = random.Next(6) switch
            {
                0 => literal,
                1 or 2 => literal + "*",
                3 or 4 => literal + "**",
                _ => literal + "*" + Run(2),
            };
            var kind = n % 3;
            var pattern = kind switch
            {
                0 => GlobPattern.ForPath(text),
                1 => GlobPattern.ForName(text),
                _ => GlobPattern.ForUri(text),
            };
            decidedWithout += pattern.RunsExpression ? 0 : 1;
            var expression = new System.Text.RegularExpressions.Regex(pattern.Expression, GlobPattern.Options);
            for (var v = 0; v < 40; v++)
            {
                var value = random.Next(5) switch
                {
                    0 => Run(7),
                    1 => literal[..random.Next(literal.Length + 1)] + Run(2),
                    2 => literal.ToUpperInvariant() + Run(3),
                    _ => literal + Run(4),
                };
                Assert.True(
                    expression.IsMatch(value) == pattern.IsMatch(value),
                    $"'{text}' (kind {kind}) on '{value}': the expression says {expression.IsMatch(value)}");
            }
        }

        // Most generated shapes take the comparisons, so this is their test, not the expression's.
        Assert.True(decidedWithout > 2000, $"{decidedWithout} of 3000 patterns decided without the expression");
    }

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
