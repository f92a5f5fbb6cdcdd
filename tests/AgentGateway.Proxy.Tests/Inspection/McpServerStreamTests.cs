using System.Collections.Frozen;
using System.Net.ServerSentEvents;
using System.Text;
using AgentGateway.Proxy.Inspection;
using AgentGateway.Proxy.Policy;
using AgentGateway.Proxy.Tests.Policy;

namespace AgentGateway.Proxy.Tests.Inspection;

/// <summary>
/// The MCP event-stream guard, judged by what a real client parser
/// (System.Net.ServerSentEvents, which the MCP C# SDK reads streams with) sees in its output:
/// never a server request the grant does not allow, however the server frames it.
/// </summary>
public sealed class McpServerStreamTests
{
    private const string Sampling = """{"jsonrpc":"2.0","id":7,"method":"sampling/createMessage","params":{"messages":[],"maxTokens":5}}""";
    private const string Elicitation = """{"jsonrpc":"2.0","id":"e1","method":"elicitation/create","params":{"message":"Your password?"}}""";
    private const string Progress = """{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":0.5}}""";
    private const string Result = """{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"done"}]}}""";

    private static readonly Grant AllowsSampling = Restricting("sampling/createMessage");

    [Fact]
    public async Task Responses_and_notifications_pass_and_an_allowed_server_request_reaches_the_agent()
    {
        var (events, observer) = await RunAsync(AllowsSampling, $"event: message\ndata: {Progress}\n\ndata: {Sampling}\n\nid: 3\ndata: {Result}\n\n");

        Assert.Equal([Progress, Sampling, Result], events.Select(e => e.Data));
        Assert.Equal("3", events[2].EventId);
        Assert.Empty(observer.Refused);
        Assert.Null(observer.Broken);
    }

    [Fact]
    public async Task A_server_request_the_grant_does_not_list_is_kept_from_the_agent_and_refused_to_the_server()
    {
        var (events, observer) = await RunAsync(AllowsSampling, $"data: {Elicitation}\n\ndata: {Result}\n\n");

        Assert.Equal([Result], events.Select(e => e.Data));
        var refused = Assert.Single(observer.Refused);
        Assert.Equal(("elicitation/create", "\"e1\""), (refused.Method, refused.Id));
        Assert.Null(observer.Broken);
    }

    [Fact]
    public async Task Ping_always_passes_and_a_grant_without_an_mcp_section_restricts_nothing()
    {
        const string ping = """{"jsonrpc":"2.0","id":9,"method":"ping"}""";

        var (restricted, _) = await RunAsync(Restricting(), $"data: {ping}\n\ndata: {Sampling}\n\n");
        var (open, openObserver) = await RunAsync(PolicyEngineTests.Grant("open"), $"data: {Elicitation}\n\n");

        Assert.Equal([ping], restricted.Select(e => e.Data));
        Assert.Equal([Elicitation], open.Select(e => e.Data));
        Assert.Empty(openObserver.Refused);
    }

    /// <summary>Framings where a reader that split lines or events differently from the client
    /// would judge one thing while the client acts on another.</summary>
    public static TheoryData<string, string> Disguises => new()
    {
        { "lone CR ends a line: two data lines", $"data: {Progress}\rdata: {Sampling}\n\n" },
        { "lone CR ends the event", $"data: {Progress}\r\rdata: {Sampling}\r\r" },
        { "duplicate method, last one counts for most parsers", """data: {"jsonrpc":"2.0","id":1,"method":"ping","method":"sampling/createMessage"}""" + "\n\n" },
        { "duplicate method, one escaped", """data: {"jsonrpc":"2.0","id":1,"method":"ping","m\u0065thod":"sampling/createMessage"}""" + "\n\n" },
        { "batch", $"data: [{Sampling}]\n\n" },
        { "request and response at once", """data: {"jsonrpc":"2.0","id":1,"method":"elicitation/create","result":{}}""" + "\n\n" },
        { "comment inside JSON", """data: {"jsonrpc":"2.0","id":1,/*x*/"method":"elicitation/create"}""" + "\n\n" },
        { "byte-order mark inside data", "data: \uFEFF" + Sampling.Replace("sampling/createMessage", "elicitation/create", StringComparison.Ordinal) + "\n\n" },
        { "non-JSON data", "data: hello\n\n" },
        { "absolute legacy endpoint", "event: endpoint\ndata: https://attacker.example/messages\n\n" },
        { "scheme-relative legacy endpoint", "event: endpoint\ndata: //attacker.example/messages\n\n" },
        { "request under a custom event type", "event: endpoint\ndata: " + Elicitation + "\n\n" },
    };

    [Theory]
    [MemberData(nameof(Disguises))]
    public async Task A_frame_that_could_be_read_two_ways_never_brings_a_refused_request_to_the_agent(string _, string stream)
    {
        var (events, observer) = await RunAsync(Restricting(), stream);

        Assert.DoesNotContain(events, e => e.Data.Contains("elicitation/create", StringComparison.Ordinal) || e.Data.Contains("sampling/createMessage", StringComparison.Ordinal));
        Assert.True(observer.Broken is not null || observer.Refused.Count > 0);
    }

    [Fact]
    public async Task An_answer_whose_input_requests_the_grant_refuses_is_replaced_by_an_error_for_the_same_id()
    {
        const string asking = """{"jsonrpc":"2.0","id":3,"result":{"resultType":"input_required","inputRequests":{"a":{"method":"sampling/createMessage"},"b":{"method":"roots/list"}}}}""";

        var (events, observer) = await RunAsync(AllowsSampling, $"id: 9\ndata: {asking}\n\n");

        var error = System.Text.Json.Nodes.JsonNode.Parse(Assert.Single(events).Data)!;
        Assert.Equal(3, error["id"]!.GetValue<int>());
        Assert.Contains("'roots/list'", error["error"]!["message"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal("9", events[0].EventId);
        Assert.Single(observer.Refused);
    }

    [Fact]
    public async Task CR_LF_and_CRLF_are_all_line_ends_even_when_a_CRLF_is_split_across_writes()
    {
        var stream = $"data: {Progress}\r\n\r\ndata: {Result}\r\rdata: {Progress}\n\n";

        for (var cut = 1; cut < stream.Length; cut++)
        {
            var (events, observer) = await RunAsync(Restricting(), stream, [cut]);

            Assert.Equal([Progress, Result, Progress], events.Select(e => e.Data));
            Assert.Null(observer.Broken);
        }
    }

    [Fact]
    public async Task However_the_stream_is_cut_into_writes_the_agent_sees_the_same_events()
    {
        var stream = $"\uFEFF: keep-alive\nid: 1\ndata:\n\ndata: {Progress}\n\nData: ignored\nid: a\0b\nretry: 1x\nretry: 1500\ndata: {Elicitation}\n\nevent: message\ndata: {Result}\n\ndata: {Progress}";
        var (whole, _) = await RunAsync(Restricting(), stream);

        for (var seed = 0; seed < 200; seed++)
        {
            var random = new Random(seed);
            var cuts = Enumerable.Range(0, 6).Select(_ => random.Next(1, stream.Length)).Distinct().Order().ToArray();
            var (events, observer) = await RunAsync(Restricting(), stream, cuts);

            Assert.Equal(whole.Select(e => (e.EventType, e.EventId, e.Data)), events.Select(e => (e.EventType, e.EventId, e.Data)));
            Assert.Single(observer.Refused);
        }

        // The priming event's id, the notification, the result; the unfinished last event is not dispatched.
        Assert.Equal(["", Progress, Result], whole.Select(e => e.Data));
        Assert.Equal("1", whole[0].EventId);
    }

    [Fact]
    public async Task An_event_over_the_bound_ends_the_stream_and_nothing_of_it_reaches_the_agent()
    {
        var big = Result.Replace("done", new string('x', 3000), StringComparison.Ordinal);

        var (events, observer) = await RunAsync(Restricting(), $"data: {Progress}\n\ndata: {big}\n\n", maxEventBytes: 2048);

        Assert.Equal([Progress], events.Select(e => e.Data));
        Assert.Contains("larger than 2048", observer.Broken, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Keep_alive_comments_are_passed_on_and_never_count_toward_the_event_bound()
    {
        var keepAlives = string.Concat(Enumerable.Repeat(": ping\n", 1000));

        var (events, observer) = await RunAsync(Restricting(), $"{keepAlives}data: {Progress}\n\n", maxEventBytes: 2048);

        Assert.Equal([Progress], events.Select(e => e.Data));
        Assert.Null(observer.Broken);
    }

    [Fact]
    public async Task A_relative_legacy_endpoint_passes()
    {
        var (events, observer) = await RunAsync(Restricting(), "event: endpoint\ndata: /messages?sessionId=abc\n\n");

        Assert.Equal(("endpoint", "/messages?sessionId=abc"), (events.Single().EventType, events.Single().Data));
        Assert.Null(observer.Broken);
    }

    [Fact]
    public void The_refusal_answer_is_a_JSON_RPC_error_for_the_same_id_with_the_method_escaped()
    {
        var answer = Encoding.UTF8.GetString(McpErrors.RefusalAnswer(new ServerMessage(ServerMessageKind.Request, "x\"y", "\"e1\"")));

        var json = System.Text.Json.Nodes.JsonNode.Parse(answer)!;
        Assert.Equal("e1", json["id"]!.GetValue<string>());
        Assert.Equal(-32601, json["error"]!["code"]!.GetValue<int>());
        Assert.Contains("x\"y", json["error"]!["message"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    private const string ToolList = """{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"lookup_customer","inputSchema":{}},{"name":"delete_everything","inputSchema":{}},{"name":"lookup_order"},{"name":7}]}}""";

    /// <summary>Finding 12: the tool-list filter once split events on LF only, while clients (and
    /// this guard) also end lines at a lone CR; now it filters the events the guard reads, in the
    /// same pass, however they are framed and cut.</summary>
    [Theory]
    [InlineData("\n")]
    [InlineData("\r")]
    [InlineData("\r\n")]
    public async Task A_tool_list_loses_the_tools_the_grant_does_not_allow_whatever_the_line_ends_and_cuts(string end)
    {
        var stream = $"event: message{end}id: 4{end}data: {ToolList}{end}{end}";
        var bytes = Encoding.UTF8.GetByteCount(stream);

        foreach (var cuts in new[] { Array.Empty<int>(), [1], [bytes / 2], [bytes - 1], [.. Enumerable.Range(1, bytes - 1).Where(i => i % 7 == 0)] })
        {
            var (events, observer) = await RunAsync(AllowsSampling, stream, cuts, toolFilter: [GlobPattern.ForName("lookup_*")]);

            var item = Assert.Single(events);
            Assert.Equal("4", item.EventId);
            var tools = System.Text.Json.Nodes.JsonNode.Parse(item.Data)!["result"]!["tools"]!.AsArray();
            Assert.Equal(["lookup_customer", "lookup_order"], tools.Select(t => t!["name"]!.GetValue<string>()));
            Assert.Equal(2, observer.Filtered);
        }
    }

    [Fact]
    public async Task A_tool_list_is_filtered_in_every_response_on_the_stream_and_a_tools_value_that_is_no_list_ends_it()
    {
        var (events, _) = await RunAsync(AllowsSampling, $"data: {Progress}\n\ndata: {ToolList}\n\n", toolFilter: [GlobPattern.ForName("lookup_customer")]);
        var (broken, observer) = await RunAsync(AllowsSampling, """data: {"jsonrpc":"2.0","id":2,"result":{"tools":{"name":"delete_everything"}}}""" + "\n\n", toolFilter: [GlobPattern.ForName("lookup_*")]);

        Assert.Equal(Progress, events[0].Data);
        Assert.Equal("lookup_customer", System.Text.Json.Nodes.JsonNode.Parse(events[1].Data)!["result"]!["tools"]![0]!["name"]!.GetValue<string>());
        Assert.Single(System.Text.Json.Nodes.JsonNode.Parse(events[1].Data)!["result"]!["tools"]!.AsArray());
        Assert.Empty(broken);
        Assert.Contains("'tools' is not an array", observer.Broken, StringComparison.Ordinal);
    }

    private static Grant Restricting(params string[] serverRequests) =>
        PolicyEngineTests.Grant("g") with { Tools = [GlobPattern.ForName("*")], ServerRequests = serverRequests.ToFrozenSet(StringComparer.Ordinal) };

    /// <summary>Writes <paramref name="stream"/> through the guard, cut at <paramref name="cuts"/>,
    /// and parses what came out as a client would.</summary>
    private static async Task<(List<SseItem<string>> Events, Observer Observer)> RunAsync(
        Grant grant, string stream, int[]? cuts = null, int maxEventBytes = 1 << 20, IReadOnlyList<GlobPattern>? toolFilter = null)
    {
        using var sink = new MemoryStream();
        var observer = new Observer();
        var guard = new McpServerStream(sink, grant, maxEventBytes, observer, toolFilter);
        var bytes = Encoding.UTF8.GetBytes(stream);
        var at = 0;
        try
        {
            foreach (var cut in (cuts ?? []).Append(bytes.Length))
            {
                await guard.WriteAsync(bytes.AsMemory(at, cut - at));
                at = cut;
            }
        }
        catch (InvalidDataException)
        {
            Assert.NotNull(observer.Broken);
        }

        sink.Position = 0;
        var events = new List<SseItem<string>>();
        await foreach (var item in SseParser.Create(sink).EnumerateAsync())
        {
            events.Add(item);
        }

        return (events, observer);
    }

    private sealed class Observer : IMcpServerStreamObserver
    {
        public List<ServerMessage> Refused { get; } = [];

        public string? Broken { get; private set; }

        public ValueTask RefusedAsync(ServerMessage message, string method, CancellationToken cancellationToken)
        {
            Refused.Add(message);
            return ValueTask.CompletedTask;
        }

        public int Filtered { get; private set; }

        void IMcpServerStreamObserver.Broken(string why) => Broken = why;

        void IMcpServerStreamObserver.Filtered(int removed) => Filtered += removed;
    }
}
