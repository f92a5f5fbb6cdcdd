using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using AgentGateway.FunctionalTests.Infrastructure;
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
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

// The suite's scenarios speak MCP 2025-11-25: logging and stateful sessions (with an event store
// for resumable streams) are deprecated from 2026-07-28 but are what those scenarios exercise.
#pragma warning disable MCP9005, MCP9006

namespace AgentGateway.FunctionalTests.Conformance;

/// <summary>
/// The server the official MCP conformance suite's server scenarios expect (its tools, resources,
/// prompts, logging, completion and subscriptions, under the names the scenarios call), written with
/// ModelContextProtocol.AspNetCore: stateful Streamable HTTP with an event store, so streams can be
/// resumed. Like a real remote MCP server it accepts only tokens from the test authorization server
/// whose audience is its own resource URI, and, being a loopback server, refuses a non-loopback
/// <c>Host</c> or <c>Origin</c> (DNS rebinding). It records every request it receives.
/// </summary>
public sealed class ConformanceServer : IAsyncDisposable
{
    // A 1×1 PNG and a minimal WAV, as the scenarios ask for "a minimal test image/audio".
    private const string Png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
    private const string Wav = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=";

    private readonly WebApplication _app;
    private readonly ConcurrentQueue<McpToolServer.SeenRequest> _requests = new();

    private ConformanceServer(WebApplication app, string url)
    {
        _app = app;
        Url = url;
    }

    public string Url { get; }

    /// <summary>The MCP endpoint, which is also its resource identifier.</summary>
    public string Resource => Url + "mcp";

    public IReadOnlyList<McpToolServer.SeenRequest> Requests => [.. _requests];

    public static async Task<ConformanceServer> StartAsync(AuthorizationServer auth, int port)
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
                options.TokenValidationParameters = new TokenValidationParameters { ValidIssuer = auth.Issuer, ValidAudience = resource };
            })
            .AddMcp(options => options.ResourceMetadata = new ProtectedResourceMetadata
            {
                Resource = resource,
                AuthorizationServers = { auth.Issuer },
            });
        builder.Services.AddAuthorization();
        builder.Services.AddDistributedMemoryCache();
        var subscriptions = new ConcurrentDictionary<(string Session, string Uri), bool>();
        builder.Services.AddMcpServer()
            .WithHttpTransport(options => options.Stateless = false)
            .WithDistributedCacheEventStreamStore()
            .WithTools(Tools())
            .WithResources(Resources())
            .WithPrompts(Prompts())
            .WithCompleteHandler((_, _) => ValueTask.FromResult(new CompleteResult { Completion = new Completion { Values = [], Total = 0, HasMore = false } }))
            .WithSetLoggingLevelHandler(async (context, cancellationToken) =>
            {
                await LogAsync(context.Server, $"Log level set to: {context.Params?.Level}", cancellationToken);
                return new EmptyResult();
            })
            .WithSubscribeToResourcesHandler((context, _) =>
            {
                subscriptions[(context.Server.SessionId ?? "", context.Params?.Uri ?? "")] = true;
                return ValueTask.FromResult(new EmptyResult());
            })
            .WithUnsubscribeFromResourcesHandler((context, cancellationToken) =>
            {
                subscriptions.TryRemove((context.Server.SessionId ?? "", context.Params?.Uri ?? ""), out _);
                return ValueTask.FromResult(new EmptyResult());
            });

        var app = builder.Build();
        var server = new ConformanceServer(app, url);
        app.Use(async (context, next) =>
        {
            context.Request.EnableBuffering();
            var body = await new StreamReader(context.Request.Body, leaveOpen: true).ReadToEndAsync();
            context.Request.Body.Position = 0;
            var authenticated = await context.AuthenticateAsync();
            server._requests.Enqueue(new McpToolServer.SeenRequest(
                context.Request.Method,
                context.Request.Path + context.Request.QueryString,
                context.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase),
                authenticated.Succeeded ? authenticated.Principal!.FindFirst("sub")?.Value : null,
                body));
            if (!IsLoopback(context.Request.Host.Host) || (context.Request.Headers.Origin is [{ } origin] && !IsLoopbackOrigin(origin)))
            {
                context.Response.StatusCode = StatusCodes.Status403Forbidden;
                return;
            }

            // The pending server-sse-polling and the server-sse-multiple-streams scenarios send
            // 'MCP-Protocol-Version: 2025-03-26' inside a session that negotiated 2025-11-25, which
            // the SDK refuses. 2025-03-26 predates the header, so its clients never send it: this
            // server takes it as absent (the session's own version) to let those scenarios run.
            if (context.Request.Headers["MCP-Protocol-Version"] == "2025-03-26")
            {
                context.Request.Headers.Remove("MCP-Protocol-Version");
            }

            await next(context);
        });
        app.UseAuthentication();
        app.UseAuthorization();
        app.MapMcp("/mcp").RequireAuthorization();
        await app.StartAsync();
        return server;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private static bool IsLoopback(string host) => host is "localhost" or "127.0.0.1" or "[::1]";

    private static bool IsLoopbackOrigin(string origin) => Uri.TryCreate(origin, UriKind.Absolute, out var uri) && IsLoopback(uri.Host);

    private static IEnumerable<McpServerTool> Tools()
    {
        yield return Tool("test_simple_text", "Tests simple text content response", () => "This is a simple text response for testing.");
        yield return Tool("test_image_content", "Tests image content response", () => ImageContentBlock.FromBytes(Convert.FromBase64String(Png), "image/png"));
        yield return Tool("test_audio_content", "Tests audio content response", () => AudioContentBlock.FromBytes(Convert.FromBase64String(Wav), "audio/wav"));
        yield return Tool("test_embedded_resource", "Tests embedded resource content response", () => new EmbeddedResourceBlock
        {
            Resource = new TextResourceContents { Uri = "test://embedded-resource", MimeType = "text/plain", Text = "This is an embedded resource content." },
        });
        yield return Tool("test_multiple_content_types", "Tests response with multiple content types (text, image, resource)", () => new ContentBlock[]
        {
            new TextContentBlock { Text = "Multiple content types test:" },
            ImageContentBlock.FromBytes(Convert.FromBase64String(Png), "image/png"),
            new EmbeddedResourceBlock
            {
                Resource = new TextResourceContents { Uri = "test://mixed-content-resource", MimeType = "application/json", Text = """{"test":"data","value":123}""" },
            },
        });
        yield return Tool("test_tool_with_logging", "Tests tool that emits log messages during execution", async (McpServer mcp, CancellationToken cancellationToken) =>
        {
            await LogAsync(mcp, "Tool execution started", cancellationToken);
            await Task.Delay(50, cancellationToken);
            await LogAsync(mcp, "Tool processing data", cancellationToken);
            await Task.Delay(50, cancellationToken);
            await LogAsync(mcp, "Tool execution completed", cancellationToken);
            return "Tool with logging executed successfully";
        });
        yield return Tool("test_tool_with_progress", "Tests tool that reports progress notifications", async (McpServer mcp, RequestContext<CallToolRequestParams> request, CancellationToken cancellationToken) =>
        {
            var token = request.Params?.ProgressToken;
            foreach (var step in (int[])[0, 50, 100])
            {
                if (token is { } progressToken)
                {
                    await mcp.NotifyProgressAsync(progressToken, new() { Progress = step, Total = 100, Message = $"Completed step {step} of 100" }, cancellationToken: cancellationToken);
                }

                if (step < 100)
                {
                    await Task.Delay(50, cancellationToken);
                }
            }

            return token?.ToString() ?? "no progress token";
        });
        yield return Tool("test_error_handling", "Tests error response handling", string () =>
            throw new InvalidOperationException("This tool intentionally returns an error for testing"));
        yield return Tool("test_reconnection", "Tests SSE stream disconnection and client reconnection (SEP-1699)", async (RequestContext<CallToolRequestParams> request, CancellationToken cancellationToken) =>
        {
            // SEP-1699: the call's stream is closed mid-call, so the client comes back with GET and
            // Last-Event-ID. (This SDK ends that GET once it has replayed what is stored, before the
            // answer: the suite's resume check stays a warning, but the GET is made.)
            await request.EnablePollingAsync(TimeSpan.FromMilliseconds(500), cancellationToken);
            await Task.Delay(100, cancellationToken);
            return "Reconnection test completed successfully. If you received this, the client properly reconnected after stream closure.";
        });
        yield return Tool("test_sampling", "Tests server-initiated sampling (LLM completion request)", async (McpServer mcp, string prompt, CancellationToken cancellationToken) =>
        {
            var answer = await AskAsync(mcp, "sampling/createMessage", new JsonObject
            {
                ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = new JsonObject { ["type"] = "text", ["text"] = prompt } }),
                ["maxTokens"] = 100,
            }, cancellationToken);
            return "LLM response: " + (answer?["content"]?["text"]?.GetValue<string>() ?? "No response");
        });
        yield return Tool("test_elicitation", "Tests server-initiated elicitation (user input request)", (McpServer mcp, string message, CancellationToken cancellationToken) =>
            ElicitAsync(mcp, "User response", new JsonObject
            {
                ["message"] = message,
                ["requestedSchema"] = JsonNode.Parse("""
                    {"type":"object","properties":{"response":{"type":"string","description":"User's response"}},"required":["response"]}
                    """),
            }, cancellationToken));
        yield return Tool("test_elicitation_sep1034_defaults", "Tests elicitation with default values per SEP-1034", (McpServer mcp, CancellationToken cancellationToken) =>
            ElicitAsync(mcp, "Elicitation completed", new JsonObject
            {
                ["message"] = "Please review and update the form fields with defaults",
                ["requestedSchema"] = JsonNode.Parse("""
                    {"type":"object","properties":{
                      "name":{"type":"string","description":"User name","default":"John Doe"},
                      "age":{"type":"integer","description":"User age","default":30},
                      "score":{"type":"number","description":"User score","default":95.5},
                      "status":{"type":"string","description":"User status","enum":["active","inactive","pending"],"default":"active"},
                      "verified":{"type":"boolean","description":"Verification status","default":true}},
                     "required":[]}
                    """),
            }, cancellationToken));
        yield return Tool("test_elicitation_sep1330_enums", "Tests elicitation with enum schema improvements per SEP-1330", (McpServer mcp, CancellationToken cancellationToken) =>
            ElicitAsync(mcp, "Elicitation completed", new JsonObject
            {
                ["message"] = "Please select options from the enum fields",
                ["requestedSchema"] = JsonNode.Parse("""
                    {"type":"object","properties":{
                      "untitledSingle":{"type":"string","description":"Select one option","enum":["option1","option2","option3"]},
                      "titledSingle":{"type":"string","description":"Select one option with titles","oneOf":[
                        {"const":"value1","title":"First Option"},{"const":"value2","title":"Second Option"},{"const":"value3","title":"Third Option"}]},
                      "legacyEnum":{"type":"string","description":"Select one option (legacy)","enum":["opt1","opt2","opt3"],"enumNames":["Option One","Option Two","Option Three"]},
                      "untitledMulti":{"type":"array","description":"Select multiple options","minItems":1,"maxItems":3,"items":{"type":"string","enum":["option1","option2","option3"]}},
                      "titledMulti":{"type":"array","description":"Select multiple options with titles","minItems":1,"maxItems":3,"items":{"anyOf":[
                        {"const":"value1","title":"First Choice"},{"const":"value2","title":"Second Choice"},{"const":"value3","title":"Third Choice"}]}}},
                     "required":[]}
                    """),
            }, cancellationToken));

        // SEP-1613: the schema is published as written, with $schema, $defs and additionalProperties.
        var schemaTool = Tool("json_schema_2020_12_tool", "Tool with JSON Schema 2020-12 features for conformance testing (SEP-1613)", () => "JSON Schema 2020-12 tool called");
        schemaTool.ProtocolTool.InputSchema = JsonElement.Parse("""
            {"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object",
             "$defs":{"address":{"type":"object","properties":{"street":{"type":"string"},"city":{"type":"string"}}}},
             "properties":{"name":{"type":"string"},"address":{"$ref":"#/$defs/address"}},
             "additionalProperties":false}
            """);
        yield return schemaTool;
    }

    private static IEnumerable<McpServerResource> Resources()
    {
        yield return McpServerResource.Create(() => new TextResourceContents { Uri = "test://static-text", MimeType = "text/plain", Text = "This is the content of the static text resource." },
            new McpServerResourceCreateOptions { UriTemplate = "test://static-text", Name = "static-text", Title = "Static Text Resource", Description = "A static text resource for testing", MimeType = "text/plain" });
        yield return McpServerResource.Create(() => BlobResourceContents.FromBytes(Convert.FromBase64String(Png), "test://static-binary", "image/png"),
            new McpServerResourceCreateOptions { UriTemplate = "test://static-binary", Name = "static-binary", Title = "Static Binary Resource", Description = "A static binary resource (image) for testing", MimeType = "image/png" });
        yield return McpServerResource.Create((string id) => new TextResourceContents
            {
                Uri = $"test://template/{id}/data",
                MimeType = "application/json",
                Text = new JsonObject { ["id"] = id, ["templateTest"] = true, ["data"] = $"Data for ID: {id}" }.ToJsonString(),
            },
            new McpServerResourceCreateOptions { UriTemplate = "test://template/{id}/data", Name = "template", Title = "Resource Template", Description = "A resource template with parameter substitution", MimeType = "application/json" });
        yield return McpServerResource.Create(() => new TextResourceContents { Uri = "test://watched-resource", MimeType = "text/plain", Text = "Watched resource content" },
            new McpServerResourceCreateOptions { UriTemplate = "test://watched-resource", Name = "watched-resource", Title = "Watched Resource", Description = "A resource that can be subscribed to", MimeType = "text/plain" });
    }

    private static IEnumerable<McpServerPrompt> Prompts()
    {
        yield return McpServerPrompt.Create(() => "This is a simple prompt for testing.",
            new McpServerPromptCreateOptions { Name = "test_simple_prompt", Title = "Simple Test Prompt", Description = "A simple prompt without arguments" });
        yield return McpServerPrompt.Create(
            ([System.ComponentModel.Description("First test argument")] string arg1, [System.ComponentModel.Description("Second test argument")] string arg2) =>
                $"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'",
            new McpServerPromptCreateOptions { Name = "test_prompt_with_arguments", Title = "Prompt With Arguments", Description = "A prompt with required arguments" });
        yield return McpServerPrompt.Create(
            ([System.ComponentModel.Description("URI of the resource to embed")] string resourceUri) => new PromptMessage[]
            {
                new() { Role = Role.User, Content = new EmbeddedResourceBlock { Resource = new TextResourceContents { Uri = resourceUri, MimeType = "text/plain", Text = "Embedded resource content for testing." } } },
                new() { Role = Role.User, Content = new TextContentBlock { Text = "Please process the embedded resource above." } },
            },
            new McpServerPromptCreateOptions { Name = "test_prompt_with_embedded_resource", Title = "Prompt With Embedded Resource", Description = "A prompt that includes an embedded resource" });
        yield return McpServerPrompt.Create(() => new PromptMessage[]
            {
                new() { Role = Role.User, Content = ImageContentBlock.FromBytes(Convert.FromBase64String(Png), "image/png") },
                new() { Role = Role.User, Content = new TextContentBlock { Text = "Please analyze the image above." } },
            },
            new McpServerPromptCreateOptions { Name = "test_prompt_with_image", Title = "Prompt With Image", Description = "A prompt that includes image content" });
    }

    private static McpServerTool Tool(string name, string description, Delegate method) =>
        McpServerTool.Create(method, new McpServerToolCreateOptions { Name = name, Description = description });

    private static Task LogAsync(McpServer mcp, string message, CancellationToken cancellationToken) =>
        mcp.SendNotificationAsync(NotificationMethods.LoggingMessageNotification, new LoggingMessageNotificationParams
        {
            Level = LoggingLevel.Info,
            Logger = "conformance-test-server",
            Data = JsonSerializer.SerializeToElement(message),
        }, cancellationToken: cancellationToken);

    /// <summary>Sends the request exactly as the scenario describes it (the SDK's typed helpers
    /// would reshape the elicitation schemas) on the calling request's stream.</summary>
    private static async Task<JsonNode?> AskAsync(McpServer mcp, string method, JsonObject parameters, CancellationToken cancellationToken)
    {
        var response = await mcp.SendRequestAsync(new JsonRpcRequest { Method = method, Params = parameters }, cancellationToken);
        return response.Result;
    }

    private static async Task<string> ElicitAsync(McpServer mcp, string prefix, JsonObject parameters, CancellationToken cancellationToken)
    {
        var answer = await AskAsync(mcp, "elicitation/create", parameters, cancellationToken);
        return $"{prefix}: action={answer?["action"]}, content={answer?["content"]?.ToJsonString() ?? "{}"}";
    }
}
