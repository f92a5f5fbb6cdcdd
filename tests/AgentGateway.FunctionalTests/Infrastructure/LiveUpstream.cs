using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace AgentGateway.FunctionalTests.Infrastructure;

/// <summary>
/// A real upstream for long-lived connections (ASP.NET Core on a loopback Kestrel socket):
/// <list type="bullet">
/// <item><c>/events</c> — a server-sent event stream, one event every 50 ms until the client goes;</item>
/// <item><c>/ws</c> — a WebSocket (ASP.NET Core WebSockets) that echoes each message, and on
/// <c>headers</c> answers with the Authorization header its handshake carried (an upstream
/// echoing the hop credential back down the tunnel);</item>
/// <item><c>/download</c> — a long response, 1 KB every 50 ms.</item>
/// </list>
/// It records every handshake and request (headers included), every WebSocket message it
/// received, and when each stream or tunnel ended.
/// </summary>
public sealed class LiveUpstream : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<Seen> _requests = new();
    private readonly ConcurrentQueue<string> _messages = new();
    private readonly ConcurrentQueue<string> _closed = new();

    private LiveUpstream(WebApplication app, string url)
    {
        _app = app;
        Url = url;
    }

    public string Url { get; }

    /// <summary>Every request (and WebSocket handshake) as it arrived.</summary>
    public IReadOnlyList<Seen> Requests => [.. _requests];

    /// <summary>Every WebSocket message received, as text.</summary>
    public IReadOnlyList<string> Messages => [.. _messages];

    /// <summary>The paths whose stream or tunnel has ended (the gateway let go of it).</summary>
    public IReadOnlyList<string> Closed => [.. _closed];

    public static async Task<LiveUpstream> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        LiveUpstream? upstream = null;
        app.UseWebSockets();
        app.Use(async (context, next) =>
        {
            upstream!._requests.Enqueue(new Seen(
                context.Request.Method,
                context.Request.Path + context.Request.QueryString,
                context.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase)));
            try
            {
                await next(context);
            }
            finally
            {
                upstream._closed.Enqueue(context.Request.Path.Value ?? "");
            }
        });
        app.Map("/events", async context =>
        {
            context.Response.ContentType = "text/event-stream";
            await context.Response.StartAsync();
            try
            {
                for (var i = 0; !context.RequestAborted.IsCancellationRequested; i++)
                {
                    await context.Response.WriteAsync($"data: tick {i}\n\n", context.RequestAborted);
                    await context.Response.Body.FlushAsync(context.RequestAborted);
                    await Task.Delay(50, context.RequestAborted);
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or IOException)
            {
            }
        });
        app.Map("/download", async context =>
        {
            context.Response.ContentType = "application/octet-stream";
            var chunk = Encoding.ASCII.GetBytes(new string('x', 1024));
            try
            {
                while (!context.RequestAborted.IsCancellationRequested)
                {
                    await context.Response.Body.WriteAsync(chunk, context.RequestAborted);
                    await context.Response.Body.FlushAsync(context.RequestAborted);
                    await Task.Delay(50, context.RequestAborted);
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or IOException)
            {
            }
        });
        app.Map("/ws", async context =>
        {
            if (!context.WebSockets.IsWebSocketRequest)
            {
                context.Response.StatusCode = StatusCodes.Status400BadRequest;
                return;
            }

            var authorization = context.Request.Headers.Authorization.ToString();
            using var socket = await context.WebSockets.AcceptWebSocketAsync();
            var buffer = new byte[64 * 1024];
            try
            {
                while (true)
                {
                    var received = 0;
                    WebSocketReceiveResult result;
                    do
                    {
                        result = await socket.ReceiveAsync(new ArraySegment<byte>(buffer, received, buffer.Length - received), context.RequestAborted);
                        received += result.Count;
                    }
                    while (!result.EndOfMessage);

                    if (result.MessageType == WebSocketMessageType.Close)
                    {
                        await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None);
                        return;
                    }

                    var text = Encoding.UTF8.GetString(buffer, 0, received);
                    upstream!._messages.Enqueue(text);
                    var answer = text == "headers" ? "authorization: " + authorization : "echo: " + text;
                    await socket.SendAsync(Encoding.UTF8.GetBytes(answer), WebSocketMessageType.Text, endOfMessage: true, context.RequestAborted);
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or WebSocketException or IOException)
            {
            }
        });
        await app.StartAsync();
        upstream = new LiveUpstream(app, app.Urls.First());
        return upstream;
    }

    /// <summary>Waits until a stream or tunnel on <paramref name="path"/> has ended at the upstream.</summary>
    public async Task<bool> WaitClosedAsync(string path, TimeSpan within)
    {
        var deadline = DateTime.UtcNow + within;
        while (DateTime.UtcNow < deadline)
        {
            if (Closed.Contains(path))
            {
                return true;
            }

            await Task.Delay(20);
        }

        return Closed.Contains(path);
    }

    /// <summary>Asserts nothing the upstream received contains <paramref name="secret"/>.</summary>
    public void AssertNeverSaw(string secret)
    {
        Canary.AssertAbsent(secret, Requests.Select(r => (r.PathAndQuery, r.Headers)));
        Assert.DoesNotContain(Messages, m => m.Contains(secret, StringComparison.Ordinal));
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    public sealed record Seen(string Method, string PathAndQuery, IReadOnlyDictionary<string, string> Headers);
}
