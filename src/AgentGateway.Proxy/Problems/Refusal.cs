namespace AgentGateway.Proxy.Problems;

/// <summary>
/// Why the gateway answered instead of forwarding. <see cref="Reason"/> is the stable,
/// machine-readable part of the outside contract; <see cref="Detail"/> is for people and must
/// never carry a secret (no token, no header value, no issuer response body).
/// </summary>
public readonly record struct Refusal(int Status, string Reason, string Title, string Detail)
{
    /// <summary>For 429: when the agent may try again (sent as <c>Retry-After</c>).</summary>
    public TimeSpan? RetryAfter { get; init; }

    // 400
    public static Refusal BadRequest(string detail) => new(400, "bad-request", "The request cannot be forwarded as sent", detail);

    public static Refusal MethodNotAllowed(string detail) => new(405, "method-not-allowed", "The gateway never forwards this method", detail);

    public static Refusal UpstreamUnavailable(string detail) => new(502, "upstream-unavailable", "The upstream could not be reached or gave no valid answer", detail);

    public static Refusal UpstreamTimeout(string detail) => new(504, "upstream-timeout", "The upstream did not answer in time", detail);

    // 401: the agent's identity
    public static Refusal Unauthenticated(string detail) => new(401, "unauthenticated", "The agent's identity could not be verified", detail);

    public static Refusal IdentityAmbiguous(string detail) => new(401, "identity-ambiguous", "The request carries more than one proof of identity", detail);

    public static Refusal AgentUnknown(string detail) => new(401, "agent-unknown", "The identity is valid but names no agent of the inventory", detail);

    public static Refusal AgentExpired(string detail) => new(401, "agent-expired", "The agent is past its expiry", detail);

    public static Refusal TokenLifetimeTooLong(string detail) => new(401, "token-lifetime-too-long", "The agent's token lives longer than this gateway accepts", detail);

    public static Refusal AgentRevoked(string detail) => new(401, "agent-revoked", "The agent has been revoked", detail);

    public static Refusal DelegationInvalid(string detail) => new(401, "delegation-invalid", "The delegation the agent presented could not be verified", detail);

    // 403: policy
    public static Refusal DelegationRequired(string detail) => new(403, "delegation-required", "This hop acts on behalf of a user, and the request names none", detail);

    public static Refusal AdminForbidden(string detail) => new(403, "admin-forbidden", "The caller may not use the admin API", detail);

    public static Refusal GrantMissing(string detail) => new(403, "grant-missing", "No grant of this agent opens this route", detail);

    public static Refusal MethodDenied(string detail) => new(403, "method-denied", "No grant allows this method here", detail);

    public static Refusal PathDenied(string detail) => new(403, "path-denied", "No grant allows this path", detail);

    public static Refusal McpMethodDenied(string detail) => new(403, "mcp-method-denied", "No grant allows this MCP method", detail);

    public static Refusal McpToolDenied(string detail) => new(403, "mcp-tool-denied", "No grant allows this MCP tool", detail);

    public static Refusal McpPromptDenied(string detail) => new(403, "mcp-prompt-denied", "No grant allows this MCP prompt", detail);

    public static Refusal McpResourceDenied(string detail) => new(403, "mcp-resource-denied", "No grant allows this MCP resource", detail);

    public static Refusal ModelDenied(string detail) => new(403, "model-denied", "No grant allows this model", detail);

    public static Refusal OutsideHours(string detail) => new(403, "outside-hours", "No grant allows this at this time", detail);

    public static Refusal ToxicCombination(string detail) => new(403, "toxic-combination", "This agent or task may not combine these steps", detail);

    public static Refusal TaskRequired(string detail) => new(403, "task-required", "A separation rule decides on this step per task, and the request names none", detail);

    public static Refusal SecretInRequest(string detail) => new(403, "secret-in-request", "The request carries a secret the gateway holds", detail);

    // 413 / 429
    public static Refusal BodyTooLarge(string detail) => new(413, "body-too-large", "The body is larger than the gateway accepts on this route", detail);

    public static Refusal RateLimited(string detail, TimeSpan retryAfter) =>
        new(429, "rate-limited", "The agent's rate limit for this grant is used up", detail) { RetryAfter = retryAfter };

    // 409 (admin API)
    public static Refusal Conflict(string detail) => new(409, "conflict", "The registration conflicts with an existing agent or identity", detail);

    // 404
    public static Refusal AgentUnknownInInventory(string id) => new(404, "agent-not-found", "No agent of the inventory has this id", $"no agent '{id}' is configured");

    public static Refusal NoRoute() => new(404, "route-unknown", "No route matches this request", "the gateway forwards only configured routes");

    // 502/503: something the gateway depends on failed; never forwarded without its credential
    public static Refusal CredentialUnavailable(string detail) => new(503, "credential-unavailable", "The hop credential could not be obtained", detail);

    public static Refusal IdentityUnavailable(string detail) => new(503, "identity-unavailable", "The agent's issuer keys could not be obtained", detail);

    public static Refusal RevocationNotStored(string detail) => new(503, "revocation-not-stored", "The revocation could not be stored for every replica", detail);

    public static Refusal RevocationsUnconfirmed(string detail) => new(503, "revocations-unconfirmed", "Revocations cannot be confirmed", detail);

    public static Refusal PolicyUnavailable(string detail) => new(503, "policy-unavailable", "The state a policy rule needs could not be read", detail);
}
