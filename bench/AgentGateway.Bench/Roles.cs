using System.Globalization;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Configuration;

namespace AgentGateway.Bench;

/// <summary>The process the benchmark starts from its own binary: bare YARP, the baseline.</summary>
internal static class Roles
{
    /// <summary>What the upstream answers an MCP <c>tools/call</c>.</summary>
    public const string ToolResult = """{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"customer 42: Ada Lovelace"}]}}""";

    /// <summary><c>--role yarp UPSTREAM HTTP-PORT H2C-PORT</c>.</summary>
    public static async Task<int> RunAsync(string role, string[] args)
    {
        if (role != "yarp" || args.Length != 3)
        {
            await Console.Error.WriteLineAsync($"unknown role '{role}' or wrong arguments");
            return 2;
        }

        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            // As the gateway listens: HTTP/1.1 on one port, HTTP/2 cleartext on another.
            kestrel.Listen(IPAddress.Loopback, int.Parse(args[1], CultureInfo.InvariantCulture), listen => listen.Protocols = HttpProtocols.Http1);
            kestrel.Listen(IPAddress.Loopback, int.Parse(args[2], CultureInfo.InvariantCulture), listen => listen.Protocols = HttpProtocols.Http2);
        });
        builder.Logging.ClearProviders();
        // The ceiling for a YARP-based gateway: one catch-all route, one static header.
        builder.Services.AddReverseProxy().LoadFromMemory(
            [new RouteConfig
            {
                RouteId = "all",
                ClusterId = "c",
                Match = new RouteMatch { Path = "/{**rest}" },
                Transforms = [new Dictionary<string, string> { ["RequestHeader"] = "Authorization", ["Set"] = "Bearer static-hop-token" }],
            }],
            [new ClusterConfig { ClusterId = "c", Destinations = new Dictionary<string, DestinationConfig> { ["d"] = new() { Address = args[0] } } }]);
        var app = builder.Build();
        app.MapReverseProxy();
        await app.StartAsync();
        Console.WriteLine("listening");

        // The parent holds standard input open for as long as this target is wanted.
        await Console.In.ReadToEndAsync();
        await app.StopAsync();
        return 0;
    }
}
