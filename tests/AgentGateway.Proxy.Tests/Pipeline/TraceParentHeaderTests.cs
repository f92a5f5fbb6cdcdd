using System.Diagnostics;
using AgentGateway.Proxy.Pipeline;

namespace AgentGateway.Proxy.Tests.Pipeline;

public sealed class TraceParentHeaderTests
{
    [Fact]
    public void The_header_carries_the_requests_trace_a_new_span_and_no_sampling_flag()
    {
        var trace = ActivityTraceId.CreateRandom();

        var first = HopTraceParent.Header(trace.ToHexString());
        var second = HopTraceParent.Header(trace.ToHexString());

        Assert.Matches("^00-[0-9a-f]{32}-[0-9a-f]{16}-00$", first);
        Assert.True(ActivityContext.TryParse(first, traceState: null, out var parsed));
        Assert.Equal(trace, parsed.TraceId);
        Assert.Equal(trace.ToHexString(), first.Split('-')[1]);
        Assert.NotEqual(first.Split('-')[2], second.Split('-')[2]);
    }
}
