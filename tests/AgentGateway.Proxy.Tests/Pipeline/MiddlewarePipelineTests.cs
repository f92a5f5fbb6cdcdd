using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace AgentGateway.Proxy.Tests.Pipeline;

/// <summary>What ASP.NET Core adds to the gateway's request pipeline by itself.</summary>
public sealed class MiddlewarePipelineTests
{
    [Fact]
    public void No_AuthorizationMiddleware_is_added_to_the_proxys_pipeline()
    {
        var services = new ServiceCollection().AddLogging();
        services.AddAgentGateway(new ConfigurationBuilder().Build());
        using var provider = services.BuildServiceProvider();

        // WebApplication adds UseAuthorization to the pipeline exactly when the container can give
        // this service (its check, as written in WebApplicationBuilder); YARP registers it.
        Assert.False(provider.GetRequiredService<IServiceProviderIsService>().IsService(typeof(IAuthorizationHandlerProvider)));
        // What YARP's route validation asks for stays.
        Assert.NotNull(provider.GetService<IAuthorizationPolicyProvider>());
    }
}
