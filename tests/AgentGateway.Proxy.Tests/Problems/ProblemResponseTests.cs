using AgentGateway.Configuration;
using AgentGateway.Proxy.Problems;
using Microsoft.AspNetCore.Http;

namespace AgentGateway.Proxy.Tests.Problems;

public sealed class ProblemResponseTests
{
    [Fact]
    public async Task A_401_advertises_exactly_the_DPoP_algorithms_the_gateway_accepts()
    {
        var context = new DefaultHttpContext();
        context.Response.Body = new MemoryStream();

        await ProblemResponse.WriteAsync(context, Refusal.Unauthenticated("no token"));

        var challenge = context.Response.Headers.WWWAuthenticate.ToString();
        var algs = challenge[(challenge.IndexOf("algs=\"", StringComparison.Ordinal) + 6)..].TrimEnd('"').Split(' ');
        Assert.StartsWith("Bearer realm=\"agentgateway\", DPoP algs=\"", challenge, StringComparison.Ordinal);
        Assert.Equal(SigningAlgorithm.All.Order(StringComparer.Ordinal), algs.Order(StringComparer.Ordinal));
    }
}
