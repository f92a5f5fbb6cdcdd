using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.Tokens;
using ModelContextProtocol.AspNetCore.Authentication;
using ModelContextProtocol.Authentication;
using ModelContextProtocol.Server;

namespace AgentGateway.FunctionalTests.Infrastructure;

/// <summary>
/// A real MCP server (ModelContextProtocol.AspNetCore, Streamable HTTP) protected the way the MCP
/// authorization spec says: it publishes RFC 9728 metadata naming its authorization server, answers
/// 401 with <c>resource_metadata</c>, and accepts only tokens from that server whose audience is
/// this server's own resource URI. It records every request and every tool call it executes.
/// </summary>
public sealed class McpToolServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<SeenRequest> _requests = new();
    private readonly ConcurrentQueue<string> _toolCalls = new();

    private McpToolServer(WebApplication app, string url)
    {
        _app = app;
        Url = url;
    }

    /// <summary>The server's base URL, with a trailing slash.</summary>
    public string Url { get; }

    /// <summary>The MCP endpoint, which is also its resource identifier.</summary>
    public string Resource => Url + "mcp";

    public IReadOnlyList<SeenRequest> Requests => [.. _requests];

    /// <summary>The tool calls the server actually executed, as "name(argument)".</summary>
    public IReadOnlyList<string> ToolCalls => [.. _toolCalls];

    /// <param name="auth">The authorization server whose tokens it accepts.</param>
    /// <param name="port">The loopback port to listen on.</param>
    /// <param name="advertisedAuthorizationServer">What its metadata names (default: <paramref name="auth"/>).</param>
    public static async Task<McpToolServer> StartAsync(AuthorizationServer auth, int port, string? advertisedAuthorizationServer = null)
    {
        var url = $"http://127.0.0.1:{port}/";
        var resource = url + "mcp";
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls(url);
        builder.Logging.ClearProviders();
        builder.Services.AddAuthentication(options =>
            {
                options.DefaultAuthenticateScheme = JwtBearerDefaults.AuthenticationScheme;
                options.DefaultChallengeScheme = McpAuthenticationDefaults.AuthenticationScheme;
            })
            .AddJwtBearer(options =>
            {
                options.Authority = auth.Issuer;
                options.RequireHttpsMetadata = false;
                options.MapInboundClaims = false;
                options.TokenValidationParameters = new TokenValidationParameters
                {
                    ValidIssuer = auth.Issuer,
                    // RFC 8707 / MCP authorization: a token for another resource is refused.
                    ValidAudience = resource,
                };
            })
            .AddMcp(options => options.ResourceMetadata = new ProtectedResourceMetadata
            {
                Resource = resource,
                AuthorizationServers = { advertisedAuthorizationServer ?? auth.Issuer },
            });
        builder.Services.AddAuthorization();
        McpToolServer? server = null;
        builder.Services.AddMcpServer()
            .WithHttpTransport()
            .WithTools(
            [
                McpServerTool.Create(
                    (string id) =>
                    {
                        server!._toolCalls.Enqueue($"lookup_customer({id})");
                        return $"customer {id}: Ada Lovelace, premium";
                    },
                    new McpServerToolCreateOptions { Name = "lookup_customer", Description = "Looks a customer up by id." }),
                McpServerTool.Create(
                    (string id) =>
                    {
                        server!._toolCalls.Enqueue($"delete_customer({id})");
                        return $"customer {id} deleted";
                    },
                    new McpServerToolCreateOptions { Name = "delete_customer", Description = "Deletes a customer." }),
            ]);

        var app = builder.Build();
        server = new McpToolServer(app, url);
        app.Use(async (context, next) =>
        {
            var result = await context.AuthenticateAsync();
            server._requests.Enqueue(new SeenRequest(
                context.Request.Method,
                context.Request.Path + context.Request.QueryString,
                context.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase),
                result.Succeeded ? result.Principal!.FindFirst("sub")?.Value : null));
            await next(context);
        });
        app.UseAuthentication();
        app.UseAuthorization();
        app.MapMcp("/mcp").RequireAuthorization();
        await app.StartAsync();
        return server;
    }

    /// <summary>Asserts nothing the server received contains <paramref name="secret"/>.</summary>
    public void AssertNeverSaw(string secret) =>
        Canary.AssertAbsent(secret, Requests.Select(r => (r.PathAndQuery, r.Headers)));

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <param name="Subject">The <c>sub</c> of a token the server accepted, or null.</param>
    public sealed record SeenRequest(string Method, string PathAndQuery, IReadOnlyDictionary<string, string> Headers, string? Subject);
}
