namespace AgentGateway.Proxy.Problems;

/// <summary>
/// Why the gateway answered instead of forwarding. <see cref="Reason"/> is the stable,
/// machine-readable part of the outside contract; <see cref="Detail"/> is for people and must
/// never carry a secret (no token, no header value, no issuer response body).
/// </summary>
public readonly record struct Refusal(int Status, string Reason, string Title, string Detail)
{
    // 400
    public static Refusal BadRequest(string detail) => new(400, "bad-request", "The request cannot be forwarded as sent", detail);

    // 401: the agent's identity
    public static Refusal Unauthenticated(string detail) => new(401, "unauthenticated", "The agent's identity could not be verified", detail);

    public static Refusal AgentUnknown(string detail) => new(401, "agent-unknown", "The identity is valid but names no agent of the inventory", detail);

    public static Refusal AgentExpired(string detail) => new(401, "agent-expired", "The agent is past its expiry", detail);

    public static Refusal DelegationInvalid(string detail) => new(401, "delegation-invalid", "The delegation the agent presented could not be verified", detail);

    // 403: policy
    public static Refusal DelegationRequired(string detail) => new(403, "delegation-required", "This hop acts on behalf of a user, and the request names none", detail);

    public static Refusal GrantMissing(string detail) => new(403, "grant-missing", "No grant of this agent opens this route", detail);

    // 404
    public static Refusal NoRoute() => new(404, "route-unknown", "No route matches this request", "the gateway forwards only configured routes");

    // 502/503: something the gateway depends on failed; never forwarded without its credential
    public static Refusal CredentialUnavailable(string detail) => new(503, "credential-unavailable", "The hop credential could not be obtained", detail);

    public static Refusal IdentityUnavailable(string detail) => new(503, "identity-unavailable", "The agent's issuer keys could not be obtained", detail);

    public static Refusal ConfigurationChanging(string detail) => new(503, "configuration-changing", "The configuration changed while the request was in flight", detail);
}
