namespace AgentGateway.FunctionalTests.Infrastructure;

/// <summary>Searches what an upstream received for a secret that must never reach it.</summary>
public static class Canary
{
    public static void AssertAbsent(string secret, IEnumerable<(string PathAndQuery, IReadOnlyDictionary<string, string> Headers)> received)
    {
        foreach (var (pathAndQuery, headers) in received)
        {
            Assert.DoesNotContain(secret, pathAndQuery, StringComparison.Ordinal);
            foreach (var (name, value) in headers)
            {
                Assert.DoesNotContain(secret, name, StringComparison.Ordinal);
                Assert.DoesNotContain(secret, value, StringComparison.Ordinal);
            }
        }
    }
}
