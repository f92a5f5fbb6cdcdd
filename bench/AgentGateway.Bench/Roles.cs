using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Configuration;

namespace AgentGateway.Bench;

/// <summary>The processes the benchmark starts from its own binary: the upstream and bare YARP.</summary>
internal static class Roles
{
    /// <summary>What the upstream answers an MCP <c>tools/call</c>.</summary>
    public const string ToolResult = """{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"customer 42: Ada Lovelace"}]}}""";

    public static async Task<int> RunAsync(string role, string[] args)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        switch (role)
        {
            case "upstream":
                break;
            case "yarp":
                // The ceiling for a YARP-based gateway: the same routes, one static header.
                builder.Services.AddReverseProxy().LoadFromMemory(
                    [new RouteConfig
                    {
                        RouteId = "all",
                        ClusterId = "c",
                        Match = new RouteMatch { Path = "/{**rest}" },
                        Transforms = [new Dictionary<string, string> { ["RequestHeader"] = "Authorization", ["Set"] = "Bearer static-hop-token" }],
                    }],
                    [new ClusterConfig { ClusterId = "c", Destinations = new Dictionary<string, DestinationConfig> { ["d"] = new() { Address = args[0] } } }]);
                break;
            default:
                await Console.Error.WriteLineAsync($"unknown role '{role}'");
                return 2;
        }

        var app = builder.Build();
        if (role == "upstream")
        {
            app.MapGet("/{**path}", () => "ok");
            app.MapPost("/mcp", async (HttpContext context) =>
            {
                // Read what was sent, as a real server would, then answer the call.
                await context.Request.Body.CopyToAsync(Stream.Null);
                return Results.Text(ToolResult, "application/json");
            });
        }
        else
        {
            app.MapReverseProxy();
        }

        await app.StartAsync();
        Console.WriteLine("listening " + app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First().TrimEnd('/') + "/");

        // The parent holds standard input open for as long as this target is wanted.
        await Console.In.ReadToEndAsync();
        await app.StopAsync();
        return 0;
    }
}
