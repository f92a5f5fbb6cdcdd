namespace AgentGateway.Proxy.Policy;

/// <summary>A weekly window in a time zone: on <see cref="Days"/> from <see cref="From"/> to
/// <see cref="To"/>, running past midnight into the next day when <see cref="To"/> is not after <see cref="From"/>.</summary>
public sealed record TimeWindow(IReadOnlySet<DayOfWeek> Days, TimeOnly From, TimeOnly To, TimeZoneInfo Zone)
{
    public bool Contains(DateTimeOffset instant)
    {
        var local = TimeZoneInfo.ConvertTime(instant, Zone);
        var time = TimeOnly.FromDateTime(local.DateTime);
        if (From < To)
        {
            return Days.Contains(local.DayOfWeek) && time >= From && time < To;
        }

        // Overnight: the evening part belongs to today's window, the morning part to yesterday's.
        return (time >= From && Days.Contains(local.DayOfWeek))
            || (time < To && Days.Contains(local.AddDays(-1).DayOfWeek));
    }

    public override string ToString() => $"{string.Join(',', Days.Order().Select(d => d.ToString()[..3]))} {From:HH\\:mm}-{To:HH\\:mm} {Zone.Id}";
}
