using AgentGateway.Proxy.Pipeline;
using AgentGateway.Proxy.Policy;

namespace AgentGateway.Proxy.Tests.Sessions;

/// <summary>A session opened within a grant's hours ends when they do: the end of the window that
/// holds the moment it was decided, in the window's own time zone.</summary>
public sealed class HoursEndTests
{
    private static readonly TimeZoneInfo Berlin = TimeZoneInfo.FindSystemTimeZoneById("Europe/Berlin");
    private static readonly HashSet<DayOfWeek> Weekdays = [DayOfWeek.Monday, DayOfWeek.Tuesday, DayOfWeek.Wednesday, DayOfWeek.Thursday, DayOfWeek.Friday];

    [Fact]
    public void A_day_window_ends_at_its_end_that_day_in_its_own_zone()
    {
        // Wednesday 2026-11-25 10:00 in Berlin (UTC+1).
        var now = new DateTimeOffset(2026, 11, 25, 9, 0, 0, TimeSpan.Zero);

        var end = HttpSession.HoursEnd([new TimeWindow(Weekdays, new TimeOnly(9, 0), new TimeOnly(17, 0), Berlin)], now);

        Assert.Equal(new DateTimeOffset(2026, 11, 25, 16, 0, 0, TimeSpan.Zero), end);
    }

    [Theory]
    [InlineData(21, 0, 26)] // the evening part: ends the next morning
    [InlineData(4, 0, 26)] // the morning part (of Tuesday's window): ends this morning
    public void An_overnight_window_ends_the_morning_after_it_began(int utcHour, int utcMinute, int endDay)
    {
        var now = new DateTimeOffset(2026, 11, utcHour >= 12 ? 25 : 26, utcHour, utcMinute, 0, TimeSpan.Zero);

        var end = HttpSession.HoursEnd([new TimeWindow(Weekdays, new TimeOnly(22, 0), new TimeOnly(6, 0), Berlin)], now);

        Assert.Equal(new DateTimeOffset(2026, 11, endDay, 5, 0, 0, TimeSpan.Zero), end);
    }

    [Fact]
    public void Outside_every_window_there_is_no_end_and_overlapping_windows_end_with_the_latest()
    {
        var now = new DateTimeOffset(2026, 11, 25, 9, 0, 0, TimeSpan.Zero);
        var morning = new TimeWindow(Weekdays, new TimeOnly(8, 0), new TimeOnly(12, 0), Berlin);
        var day = new TimeWindow(Weekdays, new TimeOnly(9, 0), new TimeOnly(18, 0), Berlin);
        var evening = new TimeWindow(Weekdays, new TimeOnly(19, 0), new TimeOnly(23, 0), Berlin);

        Assert.Null(HttpSession.HoursEnd([evening], now));
        Assert.Equal(new DateTimeOffset(2026, 11, 25, 17, 0, 0, TimeSpan.Zero), HttpSession.HoursEnd([morning, day, evening], now));
    }

    [Fact]
    public void A_window_ending_in_the_hour_a_clock_skips_ends_when_the_clock_resumes()
    {
        // Sunday 2027-03-28: Berlin goes from 02:00 to 03:00 (UTC+1 to UTC+2).
        var now = new DateTimeOffset(2027, 3, 28, 0, 30, 0, TimeSpan.Zero);

        var end = HttpSession.HoursEnd([new TimeWindow(new HashSet<DayOfWeek> { DayOfWeek.Sunday }, new TimeOnly(1, 0), new TimeOnly(2, 30), Berlin)], now);

        Assert.Equal(new DateTimeOffset(2027, 3, 28, 1, 0, 0, TimeSpan.Zero), end);
    }
}
