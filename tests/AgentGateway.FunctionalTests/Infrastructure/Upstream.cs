using WireMock.Logging;
using WireMock.RequestBuilders;
using WireMock.ResponseBuilders;
using WireMock.Server;

namespace AgentGateway.FunctionalTests.Infrastructure;

/// <summary>A third-party upstream (an LLM provider, an enterprise API) played by WireMock, which
/// records every request it receives.</summary>
public sealed class Upstream : IDisposable
{
    private Upstream(WireMockServer server) => Server = server;

    public WireMockServer Server { get; }

    public string Url => Server.Url!;

    public IReadOnlyList<ILogEntry> Received => [.. Server.LogEntries];

    public static Upstream Start()
    {
        var server = WireMockServer.Start();
        // The lowest priority, so tests can put specific answers (faults, scenarios) in front.
        server.Given(Request.Create().UsingAnyMethod())
            .AtPriority(1000)
            .RespondWith(Response.Create().WithStatusCode(200).WithHeader("Content-Type", "application/json").WithBody("{\"ok\":true}"));
        return new Upstream(server);
    }

    /// <summary>The value of a header on request <paramref name="index"/>, or null.</summary>
    public string? Header(int index, string name)
    {
        var headers = Received[index].RequestMessage.Headers;
        var match = headers?.FirstOrDefault(h => string.Equals(h.Key, name, StringComparison.OrdinalIgnoreCase));
        return match is { Key: not null } found ? string.Join(", ", found.Value) : null;
    }

    /// <summary>Asserts that nothing the upstream received — any header name or value, the URL, the
    /// body — contains <paramref name="secret"/>.</summary>
    public void AssertNeverSaw(string secret)
    {
        foreach (var entry in Received)
        {
            var request = entry.RequestMessage;
            Assert.DoesNotContain(secret, request.AbsoluteUrl, StringComparison.Ordinal);
            Assert.DoesNotContain(secret, request.Body ?? string.Empty, StringComparison.Ordinal);
            foreach (var header in request.Headers ?? new Dictionary<string, WireMock.Types.WireMockList<string>>())
            {
                Assert.DoesNotContain(secret, header.Key, StringComparison.Ordinal);
                foreach (var value in header.Value)
                {
                    Assert.DoesNotContain(secret, value, StringComparison.Ordinal);
                }
            }
        }
    }

    public void Dispose()
    {
        Server.Stop();
        Server.Dispose();
    }
}
