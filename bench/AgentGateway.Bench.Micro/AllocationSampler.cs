using System.Collections.Concurrent;
using System.Diagnostics.Tracing;

namespace AgentGateway.Bench.Micro;

/// <summary>
/// Which types a loop allocates, from the runtime's own allocation sampling (an event about every
/// 100 KB allocated, naming the type of the object that crossed the mark): over many requests the
/// share of samples per type is its share of the bytes. Listening in process costs no profiler and
/// no trace file; the figures are samples, so only types with many samples mean anything.
/// </summary>
internal sealed class AllocationSampler : EventListener
{
    private const string RuntimeSource = "Microsoft-Windows-DotNETRuntime";
    private const EventKeywords GcKeyword = (EventKeywords)0x1;
    private readonly ConcurrentDictionary<string, long> _bytes = new(StringComparer.Ordinal);
    private volatile bool _counting;

    public void Start() => _counting = true;

    /// <summary>The types with the most bytes sampled, as share of all sampled bytes, and bytes per request.</summary>
    public IEnumerable<string> Top(int count, long requests)
    {
        _counting = false;
        var total = Math.Max(1, _bytes.Values.Sum());
        return _bytes.OrderByDescending(p => p.Value).Take(count)
            .Select(p => FormattableString.Invariant($"{100.0 * p.Value / total,5:0.0} %  {p.Value / (double)requests,7:0} B/request  {p.Key}"));
    }

    protected override void OnEventSourceCreated(EventSource eventSource)
    {
        if (eventSource.Name == RuntimeSource)
        {
            EnableEvents(eventSource, EventLevel.Verbose, GcKeyword);
        }
    }

    protected override void OnEventWritten(EventWrittenEventArgs eventData)
    {
        // GCAllocationTick: AllocationAmount64 is what was allocated since the last event.
        if (!_counting || eventData.EventName?.StartsWith("GCAllocationTick", StringComparison.Ordinal) != true || eventData.PayloadNames is not { } names)
        {
            return;
        }

        var type = names.IndexOf("TypeName") is >= 0 and var t ? eventData.Payload![t] as string ?? "?" : "?";
        var amount = names.IndexOf("AllocationAmount64") is >= 0 and var a ? Convert.ToInt64(eventData.Payload![a], System.Globalization.CultureInfo.InvariantCulture) : 0;
        _bytes.AddOrUpdate(type, amount, (_, sum) => sum + amount);
    }
}
