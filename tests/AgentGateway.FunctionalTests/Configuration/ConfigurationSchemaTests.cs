using System.Text.Json;
using AgentGateway.FunctionalTests.Infrastructure;
using AgentGateway.Host;
using AgentGateway.Proxy.Configuration;

namespace AgentGateway.FunctionalTests.Configuration;

/// <summary>config/gateway.schema.json is generated from the settings records
/// (<c>agentgateway schema</c>); these tests fail when the committed file is not what they produce.</summary>
public sealed class ConfigurationSchemaTests
{
    private static readonly string Committed = Path.Combine(Repository.Root, "config", "gateway.schema.json");

    [Fact]
    public async Task The_committed_schema_is_what_the_settings_records_produce()
    {
        var generated = await GenerateAsync();

        Assert.True(
            generated == File.ReadAllText(Committed).ReplaceLineEndings("\n"),
            "config/gateway.schema.json is stale; regenerate it: dotnet run --project src/AgentGateway.Host -- schema > config/gateway.schema.json");
    }

    [Fact]
    public async Task The_schema_names_exactly_the_sections_the_loader_reads()
    {
        using var schema = JsonDocument.Parse(await GenerateAsync());
        var sections = schema.RootElement.GetProperty("properties").GetProperty("Gateway").GetProperty("properties")
            .EnumerateObject().Select(p => p.Name);

        Assert.Equal(GatewayConfigLoader.GatewaySections.Order(), sections.Order());
    }

    private static async Task<string> GenerateAsync()
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        Assert.Equal(GatewayCommand.Ok, await GatewayCommand.RunAsync(["schema"], stdout, stderr));
        return stdout.ToString();
    }
}
