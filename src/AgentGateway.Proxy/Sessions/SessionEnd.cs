namespace AgentGateway.Proxy.Sessions;

/// <summary>Why a live session ended: a stable reason (audit, metrics, the agent's error) and a
/// sentence for people. Never a secret.</summary>
public sealed record SessionEnd(string Reason, string Message)
{
    public static SessionEnd Revoked(string agentId) => new("agent-revoked", $"agent '{agentId}' was revoked");

    /// <summary>The replica could not confirm which agents are revoked (Redis unread for too long):
    /// every session ends, as a revocation it cannot see would end it.</summary>
    public static readonly SessionEnd RevocationsUnconfirmed = new("revocations-unconfirmed", "the gateway cannot confirm revocations (its shared store is unreachable); connect again later");

    public static SessionEnd AgentExpired(string agentId) => new("agent-expired", $"agent '{agentId}' is past its expiry");

    /// <summary>The proof the session was opened with (the agent's token, its user's token, its
    /// certificate) or the session's maximum lifetime ran out.</summary>
    public static readonly SessionEnd Expired = new("session-expired", "the agent's credential (or the session's maximum lifetime) has expired; connect again with a fresh token");

    /// <summary>A reload took away (or changed) the grant the session was opened under.</summary>
    public static SessionEnd GrantRemoved(string why) => new("grant-removed", why);

    /// <summary>The hours of the grant that opened the session ended.</summary>
    public static SessionEnd OutsideHours(string grant) => new("outside-hours", $"the hours of grant '{grant}', which opened this session, are over");

    /// <summary>A message on the session went over its grant's rate limit.</summary>
    public static SessionEnd RateLimited(string why) => new("rate-limited", why);

    /// <summary>A peer broke the protocol the session speaks (a malformed WebSocket frame, say).</summary>
    public static SessionEnd ProtocolError(string why) => new("protocol-error", why);

    /// <summary>A message was larger than the gateway reads whole before passing it on.</summary>
    public static SessionEnd MessageTooLarge(string why) => new("message-too-large", why);

    public static readonly SessionEnd ClientClosed = new("client-closed", "the agent closed the connection");

    public static readonly SessionEnd ServerClosed = new("server-closed", "the upstream closed the connection");

    public static readonly SessionEnd Shutdown = new("shutdown", "the gateway is shutting down");

    /// <summary>Whether the gateway ended it (and so owes the agent an explanation where the protocol has one).</summary>
    public bool ByGateway => Reason is not ("client-closed" or "server-closed");
}
