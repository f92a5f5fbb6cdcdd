using AgentGateway.Proxy.Pipeline;

namespace AgentGateway.Proxy.Tests.Pipeline;

/// <summary>Task ids: 1–128 of ASCII letters, digits, '.', '_', ':' and '-' — nothing another
/// reader could take for something else.</summary>
public sealed class TaskIdTests
{
    [Theory]
    [InlineData("ticket-42")]
    [InlineData("a.b_c:d-e")]
    [InlineData("Z")]
    public void Ids_of_the_allowed_characters_are_task_ids(string id) => Assert.True(GatewayMiddleware.IsTaskId(id));

    [Theory]
    [InlineData("")]
    [InlineData(null)]
    [InlineData("a b")]
    [InlineData("a/b")]
    [InlineData("t\u00e2che")]
    [InlineData("\u0663")]
    [InlineData("\uFF21\uFF22")]
    [InlineData("ticket\u0000")]
    [InlineData("ticket\n")]
    public void Anything_else_is_not(string? id) => Assert.False(GatewayMiddleware.IsTaskId(id));

    [Fact]
    public void At_most_128_characters()
    {
        Assert.True(GatewayMiddleware.IsTaskId(new string('t', 128)));
        Assert.False(GatewayMiddleware.IsTaskId(new string('t', 129)));
    }
}
