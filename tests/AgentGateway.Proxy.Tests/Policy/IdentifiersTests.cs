using AgentGateway.Proxy.Policy;

namespace AgentGateway.Proxy.Tests.Policy;

/// <summary>One rule for every identifier a grant decides on: what a resolver could read otherwise
/// than the glob is refused, and what real clients send is not.</summary>
public sealed class IdentifiersTests
{
    [Theory]
    // What MCP servers and clients really use.
    [InlineData("demo://resource/static/document/1", null)]
    [InlineData("test://static-text", null)]
    [InlineData("file:///Users/ada/My%20Notes/plan.md", null)]
    [InlineData("file:///Users/J%C3%B6rg/notes.md", null)]
    [InlineData("file:///Users/Jörg/notes.md", null)]
    [InlineData("https://crm.example.com:8443/accounts/42?fields=name,email", null)]
    [InlineData("postgres://db.internal/customers/schema", null)]
    [InlineData("urn:isbn:0451450523", null)]
    [InlineData("demo://resource/static/document/", null)]
    // Dot segments, raw, encoded in any case, mixed, or what Windows trims to one.
    [InlineData("demo://resource/static/document/../../dynamic/text/1", "dot segment")]
    [InlineData("demo://resource/static/document/./1", "dot segment")]
    [InlineData("demo://resource/static/document/%2e%2e/%2e%2e/dynamic/text/1", "percent-encoded")]
    [InlineData("demo://resource/static/document/%2E%2E/x", "percent-encoded")]
    [InlineData("demo://resource/static/document/.%2e/x", "percent-encoded")]
    [InlineData("demo://resource/static/document/.../x", "dot segment")]
    [InlineData("demo://resource/static/document/..%20/x", "dot segment")]
    [InlineData("demo:resource/../x", "dot segment")]
    // Encoded delimiters and double encoding.
    [InlineData("demo://resource/static/document/..%2F..%2Fdynamic%2Ftext%2F1", "percent-encoded")]
    [InlineData("demo://resource/static/document/..%2f..%2fx", "percent-encoded")]
    [InlineData("demo://resource/static/document/..%5C..%5Cx", "percent-encoded")]
    [InlineData("demo://resource/static/document/%252e%252e/x", "percent-encoded")]
    [InlineData("demo://resource/static/document/1%3F/x", "percent-encoded")]
    [InlineData("demo://resource/static/document/1%00", "percent-encoded")]
    [InlineData("demo://resource/static/document/%41", "percent-encoded")]
    [InlineData("demo://resource/static/document/1%", "starts no percent-encoding")]
    [InlineData("demo://resource/static/document/%C0%AE%C0%AE/x", "UTF-8")]
    [InlineData("demo://resource/static/document/%E0%80%AE/x", "UTF-8")]
    // Backslashes, empty segments, matrix parameters.
    [InlineData("demo://resource/static/document/..\\..\\dynamic", "raw")]
    [InlineData("demo://resource/static/document//x", "empty segment")]
    [InlineData("demo://resource/static/document/1;/../x", "matrix")]
    // Authority tricks, fragments, controls, spaces.
    [InlineData("demo://user@resource/static/document/1", "userinfo")]
    [InlineData("https://crm.example.com@evil.example/x", "userinfo")]
    [InlineData("https://crm%2Eexample.com/x", "authority")]
    [InlineData("https://crm．example.com/x", "authority")]
    [InlineData("demo://resource/static/document/1#/../../x", "fragment")]
    [InlineData("demo://resource/static/document/1\u0000", "control")]
    [InlineData("demo://resource/static/document/1\t", "control")]
    [InlineData("demo://resource/static/document/a b", "raw")]
    [InlineData("demo://resource/static/document/1\u0085", "invisible")]
    // Unicode that normalises into a delimiter, and invisible characters.
    [InlineData("demo://resource/static/document/．．/．．/dynamic", "punctuation")]
    [InlineData("demo://resource/static/document/%EF%BC%8E%EF%BC%8E/x", "punctuation")]
    [InlineData("demo://resource/static/document/a／b", "punctuation")]
    [InlineData("demo://resource/static/document/\u2025/x", "punctuation")]
    [InlineData("demo://resource/static/document/a\u200Bb", "invisible")]
    [InlineData("demo://resource/static/document/a\u2215b", "punctuation")]
    [InlineData("demo://resource/static/document/\u00A5..\u00A5x", "punctuation")]
    [InlineData("demo://resource/static/document/a\u202Eb", "invisible")]
    // Not a URI.
    [InlineData("", "empty")]
    [InlineData("/relative/path", "absolute")]
    [InlineData("1demo://x", "absolute")]
    [InlineData("demo://resource/{id}", "raw")]
    public void A_resource_uri_is_decided_only_with_one_reading(string uri, string? why)
    {
        var ambiguity = Identifiers.AmbiguousUri(uri);

        if (why is null)
        {
            Assert.Null(ambiguity);
        }
        else
        {
            Assert.NotNull(ambiguity);
            Assert.Contains(why, ambiguity, StringComparison.OrdinalIgnoreCase);
        }
    }

    [Theory]
    [InlineData("demo://resource/dynamic/text/{id}", true)]
    [InlineData("file:///{+path}", true)]
    [InlineData("demo://search{?q,limit}", true)]
    [InlineData("demo://resource/{id}/../x", false)]
    [InlineData("demo://resource/{id", false)]
    [InlineData("demo://resource/{i d}", false)]
    [InlineData("demo://resource/id}", false)]
    public void A_resource_template_is_read_with_each_expression_as_one_character(string template, bool decidable) =>
        Assert.Equal(decidable, Identifiers.AmbiguousUri(template, template: true) is null);

    [Theory]
    [InlineData("summarize", true)]
    [InlineData("code review", true)]
    [InlineData("git/commit", true)]
    [InlineData("résumé", true)]
    [InlineData("summarize/../internal_notes", false)]
    [InlineData("..", false)]
    [InlineData(" summarize", false)]
    [InlineData("summarize ", false)]
    [InlineData("summarize\u00A0", false)]
    [InlineData("a\\b", false)]
    [InlineData("a%2Fb", false)]
    [InlineData("a?b", false)]
    [InlineData("a//b", false)]
    [InlineData("sum\u200Bmarize", false)]
    [InlineData("", false)]
    public void A_prompt_name_is_decided_only_with_one_reading(string name, bool decidable) =>
        Assert.Equal(decidable, Identifiers.AmbiguousName(name) is null);

    [Theory]
    [InlineData("gpt-4o-mini", true)]
    [InlineData("ft:gpt-4o-mini-2024-07-18:org:custom:abc123", true)]
    [InlineData("anthropic.claude-3-5-sonnet-20240620-v1:0", true)]
    [InlineData("arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0", true)]
    [InlineData("claude-3-5-sonnet-v2@20241022", true)]
    [InlineData("meta-llama/Llama-3.1-8B-Instruct", true)]
    [InlineData("google/gemini-2.5-flash", true)]
    [InlineData("gpt-4o/../gpt-5", false)]
    [InlineData("gpt-4o%2F..%2Fgpt-5", false)]
    [InlineData("gpt 4o", false)]
    [InlineData("gpt-4o;x", false)]
    [InlineData("gpt-4o\\x", false)]
    [InlineData("/gpt-4o", false)]
    [InlineData("gpt-4o/", false)]
    [InlineData("ｇｐｔ-4o", false)]
    [InlineData("", false)]
    public void A_model_name_is_decided_only_with_one_reading(string model, bool decidable) =>
        Assert.Equal(decidable, Identifiers.AmbiguousModel(model) is null);

    [Theory]
    [InlineData("/a/.../b")]
    [InlineData("/a/.. /b")]
    [InlineData("/a/ /b")]
    [InlineData("/a/．．/b")]
    [InlineData("/a/b\u200B")]
    [InlineData("/a/\u2215b")]
    public void Paths_get_the_same_rule(string path) =>
        Assert.NotNull(Identifiers.AmbiguousPath(path));

    [Theory]
    [InlineData("demo://resource/static/document/*", "demo://resource/static/document/1", true)]
    [InlineData("demo://resource/static/document/*", "demo://resource/static/document/1/2", false)]
    [InlineData("demo://resource/static/document/*", "demo://resource/static/document/1?x", false)]
    [InlineData("demo://resource/static/document/*", "demo://resource/static/document/1#x", false)]
    [InlineData("demo://resource/static/**", "demo://resource/static/document/1", true)]
    [InlineData("demo://resource/static/**", "demo://resource/static/document/1?x=/", false)]
    [InlineData("demo://search?q=*", "demo://search?q=cats", true)]
    [InlineData("demo://search?q=*", "demo://search?q=cats&role=admin", false)]
    [InlineData("https://*.example.com/*", "https://evil.test?.example.com/x", false)]
    [InlineData("https://*.example.com/*", "https://evil.test#.example.com/x", false)]
    public void A_uri_pattern_keeps_stars_within_a_segment_and_out_of_the_query(string pattern, string uri, bool expected) =>
        Assert.Equal(expected, GlobPattern.ForUri(pattern).IsMatch(uri));
}
