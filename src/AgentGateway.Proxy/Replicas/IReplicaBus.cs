namespace AgentGateway.Proxy.Replicas;

/// <summary>
/// What the replicas of a gateway share through Redis (<c>Gateway:Redis</c>): records in named
/// hashes (durable across restarts) and messages on named channels. Registered only when Redis is
/// configured; without it the revocation, ephemeral-agent and cancel-key stores keep to this
/// process.
/// </summary>
/// <remarks>The stores name only this interface, never a StackExchange.Redis type: the runtime maps
/// an assembly when it loads a type that names it or compiles a method that does (a field's type, a
/// call, a <c>catch</c> clause), so a gateway without Redis never maps the client library (about
/// 1 MB resident). <see cref="RedisReplicaBus"/> is the one implementation.</remarks>
public interface IReplicaBus
{
    /// <summary>Whether <paramref name="exception"/> says Redis is unreachable or did not answer in
    /// time (the failures a store logs and survives), rather than a fault of the gateway.</summary>
    bool IsUnavailable(Exception exception);

    /// <summary>Whether Redis answers, within <paramref name="timeout"/>; false when it does not.</summary>
    Task<bool> PingAsync(TimeSpan timeout, CancellationToken cancellationToken);

    Task SetAsync(string hash, string field, string value);

    /// <summary>The value of <paramref name="field"/> in <paramref name="hash"/>, or null when there is none.</summary>
    Task<string?> GetAsync(string hash, string field);

    Task<IReadOnlyList<KeyValuePair<string, string>>> GetAllAsync(string hash);

    Task DeleteAsync(string hash, string field);

    Task PublishAsync(string channel, string message);

    Task PublishAsync(string channel, byte[] message);

    /// <summary>Calls <paramref name="received"/> with every text message on <paramref name="channel"/>.</summary>
    Task SubscribeAsync(string channel, Action<string> received);

    /// <summary>Calls <paramref name="received"/> with every message on <paramref name="channel"/> as
    /// bytes (null for an empty one).</summary>
    Task SubscribeAsync(string channel, Action<byte[]?> received);
}
