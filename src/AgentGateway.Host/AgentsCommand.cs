using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace AgentGateway.Host;

/// <summary><c>agentgateway agents list|show|revoke</c>: the inventory, read and changed through
/// the admin API, printed for people.</summary>
internal static class AgentsCommand
{
    private const string Usage = "Usage: agentgateway agents list|show ID|revoke ID [--instance INSTANCE] [--reason TEXT] --admin URL [--token TOKEN]";

    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr)
    {
        var admin = Option(args, "--admin") ?? Environment.GetEnvironmentVariable("AGENTGATEWAY_ADMIN_URL");
        var token = Option(args, "--token") ?? Environment.GetEnvironmentVariable("AGENTGATEWAY_ADMIN_TOKEN");
        var verb = args.FirstOrDefault();
        var id = args.Length > 1 && !args[1].StartsWith('-') ? args[1] : null;
        if (admin is null || token is null || verb is not ("list" or "show" or "revoke") || (verb != "list" && id is null)
            || !Uri.TryCreate(admin, UriKind.Absolute, out var baseAddress))
        {
            await stderr.WriteLineAsync(Usage);
            return GatewayCommand.Usage;
        }

        using var http = new HttpClient { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(15) };
        using var request = verb switch
        {
            "list" => new HttpRequestMessage(HttpMethod.Get, "/admin/agents"),
            "show" => new HttpRequestMessage(HttpMethod.Get, $"/admin/agents/{Uri.EscapeDataString(id!)}"),
            _ => new HttpRequestMessage(
                HttpMethod.Post,
                Option(args, "--instance") is { } instance
                    ? $"/admin/agents/{Uri.EscapeDataString(id!)}/instances/{Uri.EscapeDataString(instance)}/revoke"
                    : $"/admin/agents/{Uri.EscapeDataString(id!)}/revoke")
            {
                Content = new StringContent(JsonSerializer.Serialize(new Dictionary<string, string?> { ["reason"] = Option(args, "--reason") }), Encoding.UTF8, "application/json"),
            },
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request);
        }
        catch (HttpRequestException ex)
        {
            await stderr.WriteLineAsync($"The admin API at {baseAddress} cannot be reached ({ex.HttpRequestError}).");
            return GatewayCommand.Unreachable;
        }
        catch (TaskCanceledException)
        {
            await stderr.WriteLineAsync($"The admin API at {baseAddress} did not answer within {http.Timeout.TotalSeconds:0} s.");
            return GatewayCommand.Unreachable;
        }

        using (response)
        {
            var body = await response.Content.ReadAsStringAsync();
            JsonDocument json;
            try
            {
                json = JsonDocument.Parse(body.Length == 0 ? "null" : body);
            }
            catch (JsonException)
            {
                // Something other than the admin API answered (a proxy's error page, say).
                await stderr.WriteLineAsync($"{(int)response.StatusCode}: the answer from {baseAddress} is not the admin API's JSON.");
                return response.IsSuccessStatusCode ? GatewayCommand.Unreachable : GatewayCommand.Refused;
            }

            using var _ = json;
            if (!response.IsSuccessStatusCode)
            {
                var reason = json.RootElement.ValueKind == JsonValueKind.Object && json.RootElement.TryGetProperty("reason", out var r) ? r.GetString() : null;
                var detail = json.RootElement.ValueKind == JsonValueKind.Object && json.RootElement.TryGetProperty("detail", out var d) ? d.GetString() : null;
                await stderr.WriteLineAsync($"{(int)response.StatusCode} {reason}: {detail}");
                return GatewayCommand.Refused;
            }

            switch (verb)
            {
                case "list":
                    await stdout.WriteAsync(Table(json.RootElement));
                    break;
                case "show":
                    await stdout.WriteAsync(Details(json.RootElement));
                    break;
                default:
                    if (Option(args, "--instance") is { } revokedInstance)
                    {
                        await stdout.WriteLineAsync($"{id} instance {revokedInstance} revoked; every replica refuses it now, the class's other instances go on.");
                        break;
                    }

                    var revoked = json.RootElement.GetProperty("revoked");
                    await stdout.WriteLineAsync($"{id} revoked by {revoked.GetProperty("by").GetString()} at {revoked.GetProperty("at").GetString()}; every replica refuses it now.");
                    break;
            }
        }

        return GatewayCommand.Ok;
    }

    private static string Table(JsonElement agents)
    {
        string[] header = ["AGENT", "KIND", "OWNER", "STATE", "GRANTS", "LAST SEEN", "EXPIRES"];
        var rows = agents.EnumerateArray().SelectMany(a => Instances(a).Prepend(new[]
        {
            a.GetProperty("id").GetString()!,
            Text(a, "kind") ?? "configured",
            a.GetProperty("owner").GetString()!,
            State(a),
            string.Join(",", a.GetProperty("grants").EnumerateArray().Select(g => g.GetString())),
            Text(a, "lastSeen") ?? "never",
            Text(a, "expiresAt") ?? "-",
        })).ToList();
        var widths = header.Select((h, i) => Math.Max(h.Length, rows.Count == 0 ? 0 : rows.Max(r => r[i].Length))).ToArray();
        var output = new StringBuilder();
        foreach (var row in rows.Prepend(header))
        {
            output.AppendLine(string.Join("  ", row.Select((cell, i) => cell.PadRight(widths[i]))).TrimEnd());
        }

        return output.ToString();
    }

    /// <summary>A class's instances, as indented rows under it.</summary>
    private static IEnumerable<string[]> Instances(JsonElement agent) =>
        agent.TryGetProperty("instances", out var instances) && instances.ValueKind == JsonValueKind.Array
            ? instances.EnumerateArray().Select(i => new[]
            {
                "  " + i.GetProperty("id").GetString(),
                "instance",
                "",
                i.TryGetProperty("revoked", out _) ? "revoked" : "active",
                "",
                Text(i, "lastSeen") ?? "never",
                "",
            })
            : [];

    private static string Details(JsonElement agent)
    {
        var output = new StringBuilder();
        output.AppendLine(CultureInfo.InvariantCulture, $"agent        {agent.GetProperty("id").GetString()}");
        output.AppendLine(CultureInfo.InvariantCulture, $"owner        {agent.GetProperty("owner").GetString()}");
        output.AppendLine(CultureInfo.InvariantCulture, $"description  {Text(agent, "description") ?? "-"}");
        output.AppendLine(CultureInfo.InvariantCulture, $"state        {State(agent)}");
        output.AppendLine(CultureInfo.InvariantCulture, $"strength     {agent.GetProperty("identityStrength").GetString()}");
        foreach (var identity in agent.GetProperty("identities").EnumerateArray())
        {
            output.AppendLine(CultureInfo.InvariantCulture, $"identity     {identity.GetProperty("issuer").GetString()}: {identity.GetProperty("subject").GetString()}");
        }

        output.AppendLine(CultureInfo.InvariantCulture, $"grants       {string.Join(", ", agent.GetProperty("grants").EnumerateArray().Select(g => g.GetString()))}");
        output.AppendLine(CultureInfo.InvariantCulture, $"expires      {Text(agent, "expiresAt") ?? "-"}");
        output.AppendLine(CultureInfo.InvariantCulture, $"last seen    {Text(agent, "lastSeen") ?? "never (on this replica)"}");
        foreach (var use in agent.GetProperty("credentialUses").EnumerateObject())
        {
            output.AppendLine(CultureInfo.InvariantCulture, $"uses         {use.Name}: {use.Value.GetInt64()}");
        }

        if (agent.TryGetProperty("revoked", out var revoked))
        {
            output.AppendLine(CultureInfo.InvariantCulture, $"revoked      {revoked.GetProperty("at").GetString()} by {revoked.GetProperty("by").GetString()}: {Text(revoked, "reason") ?? "-"}");
        }

        return output.ToString();
    }

    private static string State(JsonElement agent) =>
        agent.TryGetProperty("revoked", out _) ? "revoked"
        : agent.GetProperty("expired").GetBoolean() ? "expired"
        : agent.GetProperty("dormant").GetBoolean() ? "dormant"
        : "active";

    private static string? Text(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static string? Option(string[] args, string name)
    {
        var index = Array.IndexOf(args, name);
        return index >= 0 && index + 1 < args.Length ? args[index + 1] : null;
    }
}
