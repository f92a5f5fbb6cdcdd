using AgentGateway.Proxy.Configuration;

namespace AgentGateway.Proxy.Sessions;

/// <summary>
/// An agent's open long-lived connection — a WebSocket or other tunnel, an event stream, a long
/// request or response body, a database session — which the gateway must be able to end when the
/// agent is revoked or expires or its grant goes away. Implemented by each kind of connection;
/// the <see cref="LiveSessionRegistry"/> decides when.
/// </summary>
public interface ILiveSession
{
    string AgentId { get; }

    /// <summary>For an instance of an agent class, which one (an instance is revoked on its own).</summary>
    string? Instance { get; }

    /// <summary>Decides the session again on a new configuration revision: null when it may go on,
    /// else why not. Runs on the reload's thread; must not block.</summary>
    SessionEnd? Recheck(GatewayRevision revision);

    /// <summary>Ends the session, telling the agent why where its protocol can. Called at most once
    /// by the registry, from any thread (a timer, the revocation channel, a reload), and never after
    /// the session's registration was disposed; must not block (start the closing and return).</summary>
    void End(SessionEnd end);
}

/// <summary>Where live sessions are registered so that revocation, expiry and reloads reach them.</summary>
public interface ILiveSessionRegistry
{
    /// <summary>Registers <paramref name="session"/> until the returned registration is disposed
    /// (the connection closed by itself). Register before the last revocation check, so a revocation
    /// that lands in between still finds the session.</summary>
    SessionRegistration Register(ILiveSession session);
}
