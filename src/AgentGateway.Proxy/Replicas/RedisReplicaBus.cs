using StackExchange.Redis;

namespace AgentGateway.Proxy.Replicas;

/// <summary>The replicas' shared records and messages in Redis, over the process's one connection.</summary>
internal sealed class RedisReplicaBus(IConnectionMultiplexer redis) : IReplicaBus
{
    public bool IsUnavailable(Exception exception) => exception is RedisException or TimeoutException;

    public async Task<bool> PingAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        try
        {
            await redis.GetDatabase().PingAsync().WaitAsync(timeout, cancellationToken);
            return true;
        }
        catch (Exception ex) when (IsUnavailable(ex))
        {
            return false;
        }
    }

    public Task SetAsync(string hash, string field, string value) => redis.GetDatabase().HashSetAsync(hash, field, value);

    public async Task<string?> GetAsync(string hash, string field)
    {
        var value = await redis.GetDatabase().HashGetAsync(hash, field);
        return value.HasValue ? (string?)value : null;
    }

    public async Task<IReadOnlyList<KeyValuePair<string, string>>> GetAllAsync(string hash) =>
        [.. (await redis.GetDatabase().HashGetAllAsync(hash)).Select(static e => new KeyValuePair<string, string>(e.Name!, e.Value!))];

    public Task DeleteAsync(string hash, string field) => redis.GetDatabase().HashDeleteAsync(hash, field);

    public Task PublishAsync(string channel, string message) => redis.GetSubscriber().PublishAsync(RedisChannel.Literal(channel), message);

    public Task PublishAsync(string channel, byte[] message) => redis.GetSubscriber().PublishAsync(RedisChannel.Literal(channel), message);

    public Task SubscribeAsync(string channel, Action<string> received) =>
        redis.GetSubscriber().SubscribeAsync(RedisChannel.Literal(channel), (_, message) => received(message!));

    public Task SubscribeAsync(string channel, Action<byte[]?> received) =>
        redis.GetSubscriber().SubscribeAsync(RedisChannel.Literal(channel), (_, message) => received(message.IsNull ? null : (byte[]?)message));
}
