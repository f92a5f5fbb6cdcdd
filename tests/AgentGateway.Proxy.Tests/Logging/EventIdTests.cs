using System.Reflection;
using Microsoft.Extensions.Logging;

namespace AgentGateway.Proxy.Tests.Logging;

/// <summary>Operators alert and filter on event ids: each one names one kind of event in the product.</summary>
public sealed class EventIdTests
{
    [Fact]
    public void Every_log_event_of_the_product_has_its_own_id()
    {
        Assembly[] product = [typeof(AgentGateway.Proxy.Configuration.GatewayConfigLoader).Assembly, typeof(AgentGateway.Credentials.CredentialSetFactory).Assembly];
        var events = product
            .SelectMany(static assembly => assembly.GetTypes())
            .SelectMany(static type => type.GetMethods(BindingFlags.Static | BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            .Select(static method => (Method: method, Attribute: method.GetCustomAttribute<LoggerMessageAttribute>()))
            .Where(static e => e.Attribute is not null)
            .Select(static e => (e.Attribute!.EventId, Name: $"{e.Method.DeclaringType!.FullName}.{e.Method.Name}"))
            .ToList();

        var shared = events.GroupBy(static e => e.EventId).Where(static g => g.Count() > 1)
            .Select(static g => $"{g.Key}: {string.Join(", ", g.Select(static e => e.Name))}")
            .ToList();

        Assert.True(events.Count > 50, $"only {events.Count} log events found; the scan is not looking where the product logs");
        Assert.True(shared.Count == 0, "event ids used more than once:\n" + string.Join("\n", shared));
    }
}
