using System.Text;
using AgentGateway.FunctionalTests.Infrastructure;

namespace AgentGateway.FunctionalTests.Policy;

/// <summary>
/// An agent never legitimately holds one of the gateway's secrets; one that sends one has seen it
/// where it leaked, and the request is refused wherever the secret travels: the path and the query
/// (as sent, and percent-decoded however often an upstream might decode it), header names and
/// values. Requests are written byte for byte, so no client library re-encodes the target.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class SecretInRequestTests(GatewayFixture fx) : IAsyncLifetime
{
    private string _token = "";

    public async Task InitializeAsync()
    {
        await fx.ResetAsync();
        _token = await fx.AgentTokenAsync();
    }

    public Task DisposeAsync() => Task.CompletedTask;

    [Theory]
    [InlineData("path")]
    [InlineData("path percent-encoded")]
    [InlineData("path percent-encoded twice")]
    [InlineData("path after a dot segment")]
    [InlineData("query percent-encoded twice")]
    [InlineData("header name")]
    [InlineData("header value percent-encoded")]
    [InlineData("client secret in the path")]
    [InlineData("path in lower-case percent-encoding")]
    [InlineData("path partly percent-encoded")]
    [InlineData("path parameter after a semicolon")]
    [InlineData("path behind an encoded slash")]
    [InlineData("absolute-form target")]
    [InlineData("query parameter name")]
    [InlineData("header value percent-encoded twice")]
    [InlineData("method")]
    public async Task A_configured_secret_anywhere_in_the_request_is_refused_and_nothing_is_forwarded(string where)
    {
        await using var gateway = await GatewayInstance.StartAsync(fx.Config(withRedis: false));
        var key = fx.OpenAiKey;
        var (target, headers) = where switch
        {
            "path" => ($"/crm/accounts/{key}", ""),
            "path percent-encoded" => ($"/crm/accounts/{Encode(key)}", ""),
            "path percent-encoded twice" => ($"/crm/accounts/{Encode(key).Replace("%", "%25", StringComparison.Ordinal)}", ""),
            "path after a dot segment" => ($"/crm/accounts/x/../{key}", ""),
            "query percent-encoded twice" => ($"/crm/accounts?note={Encode(key).Replace("%", "%25", StringComparison.Ordinal)}", ""),
            "header name" => ("/crm/accounts", $"X-{key}: 1\r\n"),
            "header value percent-encoded" => ("/crm/accounts", $"X-Note: {Encode(key)}\r\n"),
            "client secret in the path" => ($"/crm/accounts/{fx.CrmSecret}", ""),
            "path in lower-case percent-encoding" => ($"/crm/accounts/{Encode(key).ToLowerInvariant()}", ""),
            "path partly percent-encoded" => ($"/crm/accounts/{PartlyEncode(key)}", ""),
            "path parameter after a semicolon" => ($"/crm/accounts;key={key}/x", ""),
            "path behind an encoded slash" => ($"/crm/accounts%2F{key}", ""),
            "absolute-form target" => ($"http://gateway.test/crm/accounts/{key}", ""),
            "query parameter name" => ($"/crm/accounts?{key}=1", ""),
            "header value percent-encoded twice" => ("/crm/accounts", $"X-Note: {Encode(key).Replace("%", "%25", StringComparison.Ordinal)}\r\n"),
            "method" => ("/crm/accounts", ""),
            _ => throw new ArgumentOutOfRangeException(nameof(where)),
        };

        var response = await RawHttp.SendAsync(gateway, where == "method" ? Request(key, target, headers) : Get(target, headers));

        Assert.StartsWith("HTTP/1.1 403", response, StringComparison.Ordinal);
        Assert.Contains("secret-in-request", response, StringComparison.Ordinal);
        Assert.DoesNotContain(key, response, StringComparison.Ordinal);
        Assert.Empty(fx.Crm.Received);
        Assert.Contains(gateway.Logs.Lines, l => l.Contains("SECURITY: agent support-bot sent a secret the gateway holds", StringComparison.Ordinal));
        Assert.DoesNotContain(gateway.Logs.Lines, l => l.Contains(key, StringComparison.Ordinal) || l.Contains(fx.CrmSecret, StringComparison.Ordinal));
    }

    /// <summary>A hop token the gateway injected lately, sent back in the path, is recognised too.</summary>
    [Fact]
    public async Task A_hop_token_sent_back_in_the_path_is_refused()
    {
        await using var gateway = await GatewayInstance.StartAsync(fx.Config(withRedis: false));
        var first = await RawHttp.SendAsync(gateway, Get("/crm/accounts"));
        Assert.StartsWith("HTTP/1.1 200", first, StringComparison.Ordinal);
        var hopToken = fx.Crm.Header(0, "Authorization")!["Bearer ".Length..];

        var again = await RawHttp.SendAsync(gateway, Get($"/crm/accounts/{hopToken}"));
        var encoded = await RawHttp.SendAsync(gateway, Get($"/crm/accounts/{Encode(hopToken)}/notes"));
        var inQuery = await RawHttp.SendAsync(gateway, Get($"/crm/accounts?next=/crm/{hopToken}/x"));

        foreach (var response in new[] { again, encoded, inQuery })
        {
            Assert.StartsWith("HTTP/1.1 403", response, StringComparison.Ordinal);
            Assert.Contains("secret-in-request", response, StringComparison.Ordinal);
        }

        Assert.Single(fx.Crm.Received);
        fx.Crm.AssertNeverSaw(_token);
    }

    /// <summary>Every byte percent-encoded, as no client would but every server decodes.</summary>
    private static string Encode(string text) => string.Concat(Encoding.UTF8.GetBytes(text).Select(b => $"%{b:X2}"));

    /// <summary>Every other byte percent-encoded: a spelling a deny-list of encodings would miss.</summary>
    private static string PartlyEncode(string text) => string.Concat(text.Select((c, i) => i % 2 == 0 ? $"%{(int)c:X2}" : c.ToString()));

    private string Get(string target, string headers = "") => Request("GET", target, headers);

    private string Request(string method, string target, string headers = "") =>
        $"{method} {target} HTTP/1.1\r\nHost: gateway.test\r\nAuthorization: Bearer {_token}\r\n{headers}Connection: close\r\n\r\n";
}
