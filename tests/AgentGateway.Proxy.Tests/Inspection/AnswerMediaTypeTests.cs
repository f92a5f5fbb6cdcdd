using AgentGateway.Proxy.Inspection;

namespace AgentGateway.Proxy.Tests.Inspection;

/// <summary>
/// Finding 4: spellings of a media type that clients read as JSON or as an event stream, and that a
/// comparison with one spelling missed. Each is judged as what it is, or refused; none is "other".
/// </summary>
public sealed class AnswerMediaTypeTests
{
    [Theory]
    [InlineData("text/event-stream", AnswerKind.EventStream)]
    [InlineData("Text/Event-Stream", AnswerKind.EventStream)]
    [InlineData("TEXT/EVENT-STREAM", AnswerKind.EventStream)]
    [InlineData("text/event-stream;", AnswerKind.EventStream)]
    [InlineData("text/event-stream ;", AnswerKind.EventStream)]
    [InlineData(" text/event-stream ; charset=UTF-8 ", AnswerKind.EventStream)]
    [InlineData("text/event-stream;;charset=\"utf-8\";", AnswerKind.EventStream)]
    [InlineData("text/event-stream; x=\"application/json\"", AnswerKind.EventStream)]
    [InlineData("application/json", AnswerKind.Json)]
    [InlineData("Application/Json", AnswerKind.Json)]
    [InlineData("application/json;", AnswerKind.Json)]
    [InlineData("application/json;charset=utf8", AnswerKind.Json)]
    [InlineData("application/json; x=\"a;b\\\"c\"", AnswerKind.Json)]
    [InlineData("application/json; x=\"text/event-stream\"", AnswerKind.Json)]
    [InlineData("application/problem+json", AnswerKind.Json)]
    [InlineData("Application/Vnd.Api+JSON", AnswerKind.Json)]
    [InlineData("text/plain", AnswerKind.Other)]
    [InlineData("application/json-seq", AnswerKind.Other)]
    [InlineData("application/jsonl", AnswerKind.Other)]
    [InlineData("text/html; x=\"text/event-stream\"", AnswerKind.Other)]
    [InlineData("application/json, text/event-stream", AnswerKind.Unreadable)]
    [InlineData("text/event-stream, application/json", AnswerKind.Unreadable)]
    [InlineData("application/json; charset=utf-16", AnswerKind.Unreadable)]
    [InlineData("text/event-stream; charset=\"iso-8859-1\"", AnswerKind.Unreadable)]
    [InlineData("application/json; charset=utf-8; charset=utf-16", AnswerKind.Unreadable)]
    [InlineData("application/json; Charset=utf-8; CHARSET=utf-16", AnswerKind.Unreadable)]
    [InlineData("application /json", AnswerKind.Unreadable)]
    [InlineData("application/ json", AnswerKind.Unreadable)]
    [InlineData("application/json x", AnswerKind.Unreadable)]
    [InlineData("application/json; x = y", AnswerKind.Unreadable)]
    [InlineData("application/json; x=\"unterminated", AnswerKind.Unreadable)]
    [InlineData("application/json; x=", AnswerKind.Unreadable)]
    [InlineData("application", AnswerKind.Unreadable)]
    [InlineData("/json", AnswerKind.Unreadable)]
    [InlineData("", AnswerKind.Unreadable)]
    [InlineData("application/json\u0000", AnswerKind.Unreadable)]
    public void A_content_type_is_read_as_clients_read_it_or_refused(string value, AnswerKind expected)
    {
        Assert.Equal(expected, AnswerMediaType.Of(value).Kind);
    }

    [Theory]
    [InlineData("application/json")]
    [InlineData("application/json; charset=utf-8")]
    [InlineData("text/event-stream")]
    public void The_spellings_taken_without_a_parse_are_judged_as_the_parse_judges_them(string value)
    {
        Assert.Equal(AnswerMediaType.Parsed(value), AnswerMediaType.Of(value));
    }

    [Fact]
    public void Two_content_type_headers_are_unreadable_and_none_is_absent()
    {
        using var two = new ByteArrayContent([]);
        two.Headers.TryAddWithoutValidation("Content-Type", "application/json");
        two.Headers.TryAddWithoutValidation("Content-Type", "text/event-stream");
        using var none = new ByteArrayContent([]);

        Assert.Equal(AnswerKind.Unreadable, AnswerMediaType.Of(two.Headers).Kind);
        Assert.Equal(AnswerKind.Absent, AnswerMediaType.Of(none.Headers).Kind);
    }
}
