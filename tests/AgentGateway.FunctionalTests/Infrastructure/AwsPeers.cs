using System.Collections.Concurrent;
using System.Globalization;
using System.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;

namespace AgentGateway.FunctionalTests.Infrastructure;

/// <summary>
/// An AWS API played by ASP.NET Core on a loopback Kestrel socket: it keeps every request as it
/// arrived — method, raw request target, each header line, body bytes — for
/// <see cref="SigV4Verifier"/> to check, and answers 200 with a small JSON body.
/// </summary>
public sealed class AwsUpstream : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<SigV4Verifier.Received> _received = new();

    private AwsUpstream(WebApplication app) => _app = app;

    public string Url => _app.Urls.First();

    public IReadOnlyList<SigV4Verifier.Received> Received => [.. _received];

    public static async Task<AwsUpstream> StartAsync()
    {
        var app = Slim();
        var upstream = new AwsUpstream(app);
        app.Run(async context =>
        {
            using var body = new MemoryStream();
            await context.Request.Body.CopyToAsync(body, context.RequestAborted);
            var headers = context.Request.Headers.SelectMany(h => h.Value.Select(v => new KeyValuePair<string, string>(h.Key, v ?? ""))).ToList();
            upstream._received.Enqueue(new SigV4Verifier.Received(
                context.Request.Method,
                context.Features.Get<IHttpRequestFeature>()!.RawTarget,
                headers,
                body.ToArray()));
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync("{\"ok\":true}", context.RequestAborted);
        });
        await app.StartAsync();
        return upstream;
    }

    /// <summary>Asserts that no byte of anything the upstream received contains <paramref name="secret"/>.</summary>
    public void AssertNeverSaw(string secret)
    {
        foreach (var request in Received)
        {
            Assert.DoesNotContain(secret, request.Target, StringComparison.Ordinal);
            Assert.DoesNotContain(secret, System.Text.Encoding.UTF8.GetString(request.Body), StringComparison.Ordinal);
            foreach (var header in request.Headers)
            {
                Assert.DoesNotContain(secret, header.Key + ": " + header.Value, StringComparison.Ordinal);
            }
        }
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();

    internal static WebApplication Slim()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        return builder.Build();
    }
}

/// <summary>
/// AWS STS on a loopback Kestrel socket, speaking its query protocol: a form-encoded POST of
/// <c>AssumeRoleWithWebIdentity</c> or <c>AssumeRole</c>, answered with the XML document STS
/// returns, carrying fresh temporary credentials (valid for an hour). Every call is kept.
/// </summary>
public sealed class TestSts : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<Call> _calls = new();

    private TestSts(WebApplication app) => _app = app;

    public string Url => _app.Urls.First();

    public IReadOnlyList<Call> Calls => [.. _calls];

    /// <summary>The credentials handed out, newest last.</summary>
    public IReadOnlyList<Issued> Handed => [.. _calls.Select(c => c.Answer)];

    public static async Task<TestSts> StartAsync()
    {
        var app = AwsUpstream.Slim();
        var sts = new TestSts(app);
        app.MapPost("/", async context =>
        {
            using var body = new MemoryStream();
            await context.Request.Body.CopyToAsync(body, context.RequestAborted);
            var bytes = body.ToArray();
            var form = Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(System.Text.Encoding.UTF8.GetString(bytes)).ToDictionary(p => p.Key, p => p.Value.ToString());
            var action = form.GetValueOrDefault("Action") ?? "";
            var issued = new Issued(
                "ASIA" + Guid.NewGuid().ToString("N")[..16].ToUpperInvariant(),
                "sts-secret-canary-" + Guid.NewGuid().ToString("N"),
                "sts-session-canary-" + Guid.NewGuid().ToString("N"),
                DateTimeOffset.UtcNow.AddHours(1));
            var headers = context.Request.Headers.SelectMany(h => h.Value.Select(v => new KeyValuePair<string, string>(h.Key, v ?? ""))).ToList();
            sts._calls.Enqueue(new Call(action, form, new SigV4Verifier.Received("POST", context.Features.Get<IHttpRequestFeature>()!.RawTarget, headers, bytes), issued));
            if (action is not ("AssumeRoleWithWebIdentity" or "AssumeRole"))
            {
                context.Response.StatusCode = 400;
                return;
            }

            context.Response.ContentType = "text/xml";
            await context.Response.WriteAsync(Answer(action, form.GetValueOrDefault("RoleArn") ?? "", issued), context.RequestAborted);
        });
        await app.StartAsync();
        return sts;
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();

    private static string Answer(string action, string roleArn, Issued issued)
    {
        var user = action == "AssumeRoleWithWebIdentity"
            ? "<SubjectFromWebIdentityToken>system:serviceaccount:gateway:agentgateway</SubjectFromWebIdentityToken><Audience>sts.amazonaws.com</Audience><Provider>oidc.example.test</Provider>"
            : "";
        return $"""
            <{action}Response xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
              <{action}Result>
                {user}
                <AssumedRoleUser>
                  <Arn>{SecurityElement.Escape(roleArn)}/agentgateway</Arn>
                  <AssumedRoleId>AROATESTROLE:agentgateway</AssumedRoleId>
                </AssumedRoleUser>
                <Credentials>
                  <SessionToken>{issued.SessionToken}</SessionToken>
                  <SecretAccessKey>{issued.SecretKey}</SecretAccessKey>
                  <Expiration>{issued.ExpiresAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture)}</Expiration>
                  <AccessKeyId>{issued.AccessKeyId}</AccessKeyId>
                </Credentials>
              </{action}Result>
              <ResponseMetadata><RequestId>{Guid.NewGuid()}</RequestId></ResponseMetadata>
            </{action}Response>
            """;
    }

    /// <param name="Action">The STS action asked for.</param>
    /// <param name="Form">The call's parameters.</param>
    /// <param name="Request">The call as received (to check an AssumeRole call's own signature).</param>
    /// <param name="Answer">The credentials it was given.</param>
    public sealed record Call(string Action, IReadOnlyDictionary<string, string> Form, SigV4Verifier.Received Request, Issued Answer);

    public sealed record Issued(string AccessKeyId, string SecretKey, string SessionToken, DateTimeOffset ExpiresAt);
}
