using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using AgentGateway.FunctionalTests.Infrastructure;

namespace AgentGateway.FunctionalTests.Sessions;

/// <summary>
/// Long-lived connections are decided again: an event stream or a long download held open through
/// the gateway ends within a second of its agent's revocation (made at another replica), of the
/// agent's expiry, of the expiry of the token or client certificate it was opened with, and when a reload removes the
/// grant that opened it; a reload that leaves the grant alone leaves the stream alone. Each end is
/// an audit record, and the upstream sees its side closed.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class LiveSessionTests(GatewayFixture fx) : IAsyncLifetime
{
    private LiveUpstream _upstream = null!;
    private readonly string _audit = Path.Combine(Path.GetTempPath(), $"agentgateway-audit-{Guid.NewGuid():N}.jsonl");

    public async Task InitializeAsync()
    {
        await fx.ResetAsync();
        _upstream = await LiveUpstream.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _upstream.DisposeAsync();
        File.Delete(_audit);
    }

    [Theory]
    [InlineData("/live/events")]
    [InlineData("/live/download")]
    public async Task Revocation_at_one_replica_ends_a_stream_held_at_another_within_a_second(string path)
    {
        var config = Config(withRedis: true);
        var token = await fx.AgentTokenAsync();
        await using var first = await GatewayInstance.StartAsync(config);
        await using var second = await GatewayInstance.StartAsync(config);
        using var stream = await OpenAsync(second, path, token);
        var reading = ReadUntilEndAsync(stream.Body);
        await stream.FirstBytes;

        using var http = new HttpClient { BaseAddress = first.AdminAddress };
        using var revoke = new HttpRequestMessage(HttpMethod.Post, "/admin/agents/support-bot/revoke") { Content = new StringContent("{}", Encoding.UTF8, "application/json") };
        revoke.Headers.Authorization = new AuthenticationHeaderValue("Bearer", await fx.AgentTokenAsync(Clients.Operator));
        using var revoked = await http.SendAsync(revoke);
        var at = Stopwatch.StartNew();
        Assert.Equal(HttpStatusCode.OK, revoked.StatusCode);

        Assert.True(await Completes(reading, TimeSpan.FromSeconds(1)), $"the stream at the other replica was still open {at.Elapsed} after the revocation");
        Assert.True(await _upstream.WaitClosedAsync(path[5..], TimeSpan.FromSeconds(2)), "the upstream's side stayed open");
        using (var again = await second.GetAsAgentAsync(path, token))
        {
            await ProblemAssert.IsProblemAsync(again, HttpStatusCode.Unauthorized, "agent-revoked");
        }

        await AssertAuditedAsync("agent-revoked");
        Assert.Equal("Bearer", _upstream.Requests[0].Headers["Authorization"].Split(' ')[0]);
        _upstream.AssertNeverSaw(token);
    }

    [Fact]
    public async Task A_stream_ends_when_its_agent_expires_and_not_before()
    {
        var config = Config(withRedis: false);
        await using var gateway = await GatewayInstance.StartAsync(config);
        using var stream = await OpenAsync(gateway, "/live/events", await fx.AgentTokenAsync());
        var reading = ReadUntilEndAsync(stream.Body);
        await stream.FirstBytes;

        // A reload gives the agent an expiry two seconds from now; the grant is untouched.
        var expiresAt = DateTimeOffset.UtcNow.AddSeconds(2);
        config["Gateway"]!["Agents"]!["support-bot"]!["ExpiresAt"] = expiresAt.ToString("O");
        await gateway.RewriteConfigAsync(config);

        var ended = await EndedAtAsync(reading, expiresAt + TimeSpan.FromSeconds(1));
        Assert.NotNull(ended);
        Assert.True(ended >= expiresAt - TimeSpan.FromMilliseconds(50), $"ended at {ended:O}, before the agent's expiry {expiresAt:O}");
        await AssertAuditedAsync("agent-expired");
    }

    [Fact]
    public async Task A_stream_ends_when_the_token_it_was_opened_with_expires()
    {
        var config = Config(withRedis: false);
        config["Gateway"]!["Inbound"]!["ClockSkew"] = "00:00:00";
        fx.Auth.SetTokenLifetime(Clients.Alpha, TimeSpan.FromSeconds(4));
        var token = await fx.AgentTokenAsync();
        var expiresAt = DateTimeOffset.FromUnixTimeSeconds(JsonDocument.Parse(Base64Url(token.Split('.')[1])).RootElement.GetProperty("exp").GetInt64());
        await using var gateway = await GatewayInstance.StartAsync(config);
        using var stream = await OpenAsync(gateway, "/live/events", token);
        var reading = ReadUntilEndAsync(stream.Body);
        await stream.FirstBytes;

        var ended = await EndedAtAsync(reading, expiresAt + TimeSpan.FromSeconds(1));
        Assert.NotNull(ended);
        Assert.True(ended >= expiresAt - TimeSpan.FromMilliseconds(50), $"ended at {ended:O}, before the token's expiry {expiresAt:O}");
        await AssertAuditedAsync("session-expired");
    }

    [Fact]
    public async Task A_stream_opened_with_a_client_certificate_ends_when_the_certificate_expires()
    {
        using var serverCa = TestPki.Create("gateway server CA");
        using var agentCa = TestPki.Create("agent CA");
        // X.509 times are whole seconds.
        var expiresAt = DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.AddSeconds(4).ToUnixTimeSeconds());
        using var certificate = agentCa.IssueClient("bot.agents.example", notAfter: expiresAt);
        var config = Config(withRedis: false).WithHttps(serverCa);
        config["Gateway"]!["Inbound"]!["ClientCertificates"] = new JsonObject { ["TrustBundle"] = "file:" + agentCa.WriteAuthorityPem() };
        config["Gateway"]!["Agents"]!["support-bot"]!["Identities"]!.AsArray().Add(new JsonObject { ["CertificateSan"] = "dns:bot.agents.example" });
        await using var gateway = await GatewayInstance.StartAsync(config);

        using var handler = new SocketsHttpHandler();
        handler.SslOptions.RemoteCertificateValidationCallback = (_, server, _, _) => server is X509Certificate2 c && serverCa.Issued(c);
        handler.SslOptions.ClientCertificates = [certificate];
        using var http = new HttpClient(handler) { BaseAddress = gateway.Addresses.First(a => a.Scheme == Uri.UriSchemeHttps) };
        using var response = await http.SendAsync(new HttpRequestMessage(HttpMethod.Get, "/live/events"), HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = new FirstByteStream(await response.Content.ReadAsStreamAsync());
        var reading = ReadUntilEndAsync(body);
        await body.FirstBytes;

        var ended = await EndedAtAsync(reading, expiresAt + TimeSpan.FromSeconds(1));
        Assert.NotNull(ended);
        Assert.True(ended >= expiresAt - TimeSpan.FromMilliseconds(50), $"ended at {ended:O}, before the certificate's end {expiresAt:O}");
        await AssertAuditedAsync("session-expired");
        _upstream.AssertNeverSaw(Convert.ToBase64String(certificate.RawData));
    }

    [Fact]
    public async Task A_reload_that_removes_the_grant_ends_the_stream_and_one_that_leaves_it_alone_does_not()
    {
        var config = Config(withRedis: false);
        await using var gateway = await GatewayInstance.StartAsync(config);
        using var stream = await OpenAsync(gateway, "/live/events", await fx.AgentTokenAsync());
        var reading = ReadUntilEndAsync(stream.Body);
        await stream.FirstBytes;

        // An unrelated change: the stream goes on.
        config["Gateway"]!["Grants"]!["unrelated"] = new JsonObject { ["Routes"] = new JsonArray("billing") };
        await gateway.RewriteConfigAsync(config);
        Assert.False(await Completes(reading, TimeSpan.FromMilliseconds(500)), "a reload that left the grant alone ended the stream");

        // The grant narrowed to other methods: the stream was opened under what is gone.
        config["Gateway"]!["Grants"]!["live"]!["Methods"] = new JsonArray("POST");
        await gateway.RewriteConfigAsync(config);
        Assert.True(await Completes(reading, TimeSpan.FromSeconds(1)), "the stream outlived the grant that opened it");
        await AssertAuditedAsync("grant-removed");
    }

    /// <summary>Route <c>live</c> to the live upstream with the CRM hop, the audit trail and the admin API.</summary>
    private JsonObject Config(bool withRedis) =>
        fx.Config(withRedis).WithRoute("live", _upstream.Url).WithAudit(_audit).WithAdmin();

    private static async Task<OpenStream> OpenAsync(GatewayInstance gateway, string path, string token)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        var response = await gateway.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.Content.ReadAsStreamAsync();
        return new OpenStream(response, new FirstByteStream(body));
    }

    /// <summary>Reads until the stream ends or fails; the time it did.</summary>
    private static Task<DateTimeOffset> ReadUntilEndAsync(Stream body) => Task.Run(async () =>
    {
        var buffer = new byte[4096];
        try
        {
            using var cap = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            while (await body.ReadAsync(buffer, cap.Token) > 0)
            {
            }
        }
        catch (Exception ex) when (ex is IOException or HttpRequestException or OperationCanceledException)
        {
        }

        return DateTimeOffset.UtcNow;
    });

    private static async Task<bool> Completes(Task task, TimeSpan within) => await Task.WhenAny(task, Task.Delay(within)) == task;

    private static async Task<DateTimeOffset?> EndedAtAsync(Task<DateTimeOffset> reading, DateTimeOffset deadline)
    {
        var wait = deadline - DateTimeOffset.UtcNow;
        return await Completes(reading, wait > TimeSpan.Zero ? wait : TimeSpan.Zero) ? await reading : null;
    }

    private async Task AssertAuditedAsync(string reason)
    {
        // Written off the request path, in order; poll briefly.
        for (var i = 0; i < 100; i++)
        {
            if (File.Exists(_audit))
            {
                using var file = new FileStream(_audit, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
                var text = await new StreamReader(file).ReadToEndAsync();
                if (text.Split('\n').Any(l => l.Contains("\"event\":\"session-end\"", StringComparison.Ordinal) && l.Contains($"\"reason\":\"{reason}\"", StringComparison.Ordinal)))
                {
                    return;
                }
            }

            await Task.Delay(50);
        }

        Assert.Fail($"no session-end audit record with reason {reason}");
    }

    private static string Base64Url(string text) =>
        Encoding.UTF8.GetString(Convert.FromBase64String(text.Replace('-', '+').Replace('_', '/').PadRight(text.Length + ((4 - (text.Length % 4)) % 4), '=')));

    private sealed record OpenStream(HttpResponseMessage Response, FirstByteStream Body) : IDisposable
    {
        public Task FirstBytes => Body.FirstBytes;

        public void Dispose() => Response.Dispose();
    }

    /// <summary>Tells when the first bytes of a stream have arrived (the stream is really open).</summary>
    private sealed class FirstByteStream(Stream inner) : Stream
    {
        private readonly TaskCompletionSource _first = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task FirstBytes => _first.Task.WaitAsync(TimeSpan.FromSeconds(10));

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var read = await inner.ReadAsync(buffer, cancellationToken);
            if (read > 0)
            {
                _first.TrySetResult();
            }

            return read;
        }

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
