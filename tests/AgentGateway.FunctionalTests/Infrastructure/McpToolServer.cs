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
using ModelContextProtocol;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

// Sampling is deprecated from MCP 2026-07-28 (SEP-2577) but works for a year after, and servers
// speaking 2025-11-25 use it today: the gateway must still decide on it.
#pragma warning disable MCP9005

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
    private readonly ConcurrentQueue<string> _served = new();
    private readonly ConcurrentQueue<string> _prompts = new();
    private readonly ConcurrentQueue<string> _completions = new();

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

    /// <summary>The resources the server served, by the URI it resolved each request to.</summary>
    public IReadOnlyList<string> Served => [.. _served];

    /// <summary>The prompts the server rendered, by name.</summary>
    public IReadOnlyList<string> Prompts => [.. _prompts];

    /// <summary>The completions the server answered, as "type name".</summary>
    public IReadOnlyList<string> Completions => [.. _completions];

    /// <summary>A document anyone may read, and the text behind it that a grant keeps from agents.</summary>
    public const string Document = "demo://resource/static/document/readme";

    public const string Secret = "demo://resource/dynamic/text/1";

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
            // Stateful: a tool can then ask the client things on its own stream (sampling, elicitation).
            .WithHttpTransport(options => options.Stateless = false)
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
                // Tools that ask the client something in the middle of the call, on the call's own
                // event stream: the server-to-client traffic a gateway must also decide on.
                McpServerTool.Create(
                    async (McpServer mcp, string question, CancellationToken cancellationToken) =>
                    {
                        try
                        {
                            var answer = await mcp.SampleAsync(
                                new CreateMessageRequestParams
                                {
                                    Messages = [new SamplingMessage { Role = Role.User, Content = [new TextContentBlock { Text = question }] }],
                                    MaxTokens = 50,
                                },
                                cancellationToken);
                            var text = string.Concat(answer.Content.OfType<TextContentBlock>().Select(c => c.Text));
                            server!._toolCalls.Enqueue($"ask_model({question}) = {text}");
                            return "the model said: " + text;
                        }
                        catch (Exception ex)
                        {
                            server!._toolCalls.Enqueue($"ask_model({question}) failed: {ex.GetType().Name}: {ex.Message}");
                            throw;
                        }
                    },
                    new McpServerToolCreateOptions { Name = "ask_model", Description = "Asks the client's model (MCP sampling)." }),
                McpServerTool.Create(
                    async (McpServer mcp, string question, CancellationToken cancellationToken) =>
                    {
                        try
                        {
                            var answer = await mcp.ElicitAsync(
                                new ElicitRequestParams
                                {
                                    Message = question,
                                    RequestedSchema = new ElicitRequestParams.RequestSchema
                                    {
                                        Properties = { ["answer"] = new ElicitRequestParams.StringSchema() },
                                    },
                                },
                                cancellationToken);
                            server!._toolCalls.Enqueue($"ask_user({question}) = {answer.Action}");
                            return "the user chose: " + answer.Action;
                        }
                        catch (Exception ex)
                        {
                            server!._toolCalls.Enqueue($"ask_user({question}) failed: {ex.GetType().Name}: {ex.Message}");
                            throw;
                        }
                    },
                    new McpServerToolCreateOptions { Name = "ask_user", Description = "Asks the client's user (MCP elicitation)." }),
            ])
            // Resources served the way a file-like server resolves a URI against its root (the
            // reference server resolves with a URL parser): whatever reaches it is decoded, dot
            // segments removed, and then looked up — so a '..' that got through would be served.
            .WithListResourcesHandler((_, _) => ValueTask.FromResult(new ListResourcesResult
            {
                Resources = [new Resource { Uri = Document, Name = "readme" }, new Resource { Uri = Secret, Name = "secret" }],
            }))
            .WithListResourceTemplatesHandler((_, _) => ValueTask.FromResult(new ListResourceTemplatesResult
            {
                ResourceTemplates =
                [
                    new ResourceTemplate { UriTemplate = "demo://resource/static/document/{+path}", Name = "documents" },
                    new ResourceTemplate { UriTemplate = "demo://resource/dynamic/text/{id}", Name = "texts" },
                ],
            }))
            .WithReadResourceHandler((context, _) =>
            {
                var resolved = LenientUri.Resolve(context.Params!.Uri);
                string text;
                if (resolved.StartsWith("demo://resource/static/document/", StringComparison.Ordinal))
                {
                    text = "a public document";
                }
                else if (resolved.StartsWith("demo://resource/dynamic/text/", StringComparison.Ordinal))
                {
                    text = "SECRET text " + resolved["demo://resource/dynamic/text/".Length..];
                }
                else
                {
                    throw new McpException($"no resource {resolved}");
                }

                server!._served.Enqueue(resolved);
                return ValueTask.FromResult(new ReadResourceResult { Contents = [new TextResourceContents { Uri = context.Params.Uri, Text = text }] });
            })
            .WithPrompts(
            [
                McpServerPrompt.Create(
                    () =>
                    {
                        server!._prompts.Enqueue("summarize");
                        return "Summarize the ticket.";
                    },
                    new McpServerPromptCreateOptions { Name = "summarize" }),
                McpServerPrompt.Create(
                    () =>
                    {
                        server!._prompts.Enqueue("internal_notes");
                        return "SECRET internal notes.";
                    },
                    new McpServerPromptCreateOptions { Name = "internal_notes" }),
            ])
            .WithCompleteHandler((context, _) =>
            {
                server!._completions.Enqueue(context.Params!.Ref switch
                {
                    PromptReference prompt => "prompt " + prompt.Name,
                    ResourceTemplateReference template => "resource " + template.Uri,
                    var other => "other " + other.Type,
                });
                return ValueTask.FromResult(new CompleteResult { Completion = new Completion { Values = ["one"] } });
            });

        var app = builder.Build();
        server = new McpToolServer(app, url);
        app.Use(async (context, next) =>
        {
            var result = await context.AuthenticateAsync();
            context.Request.EnableBuffering();
            var body = await new StreamReader(context.Request.Body, leaveOpen: true).ReadToEndAsync();
            context.Request.Body.Position = 0;
            server._requests.Enqueue(new SeenRequest(
                context.Request.Method,
                context.Request.Path + context.Request.QueryString,
                context.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase),
                result.Succeeded ? result.Principal!.FindFirst("sub")?.Value : null,
                body));
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
        Canary.AssertAbsent(secret, Requests.Select(r => (r.PathAndQuery + "\n" + r.Body, r.Headers)));

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }


    /// <summary>The requests the server received that carry <paramref name="text"/> in their body.</summary>
    public IEnumerable<SeenRequest> BodiesWith(string text) => Requests.Where(r => r.Body.Contains(text, StringComparison.Ordinal));

    /// <param name="Subject">The <c>sub</c> of a token the server accepted, or null.</param>
    /// <param name="Body">The request body as text.</param>
    public sealed record SeenRequest(string Method, string PathAndQuery, IReadOnlyDictionary<string, string> Headers, string? Subject, string Body);
}
