namespace AgentGateway.Proxy.Policy;

// These records are bound from configuration and then validated and compiled into a
// GatewayRevision; nothing on the request path reads them directly. No array here has a non-empty
// default: the configuration binder appends to an existing array, so a default of [A, B] plus an
// operator's [C] would silently allow A, B and C. Defaults for lists are applied when compiled.

/// <summary><c>Gateway:Grants:{name}</c>: a named permission, re-checked on every request. Every
/// restriction below is optional: absent means "not restricted by this grant"; present (even as an
/// empty list) means "only these".</summary>
public sealed record GrantSettings
{
    /// <summary>Ids of <c>ReverseProxy:Routes</c> entries this grant opens.</summary>
    public string[] Routes { get; init; } = [];

    /// <summary><c>Gateway:Databases</c> entries this grant opens, each as one upstream role.</summary>
    public Dictionary<string, Database.DatabaseGrantSettings>? Databases { get; init; }

    /// <summary>HTTP methods allowed (upper case, e.g. GET).</summary>
    public string[]? Methods { get; init; }

    /// <summary>Path patterns on the path as forwarded (after the route's transforms): <c>*</c>
    /// matches within one segment, <c>**</c> across segments.</summary>
    public string[]? Paths { get; init; }

    /// <summary>MCP restrictions, on routes with <c>Metadata:Inspect = Mcp</c>.</summary>
    public McpGrantSettings? Mcp { get; init; }

    /// <summary>LLM model patterns (<c>*</c> wildcard), on routes with <c>Metadata:Inspect = Llm</c>.</summary>
    public string[]? Models { get; init; }

    /// <summary>At most this many requests per agent in each window, across replicas.</summary>
    public RateLimitSettings? RateLimit { get; init; }

    /// <summary>The request must carry a valid delegation: a human the agent acts for.</summary>
    public bool RequireDelegation { get; init; }

    /// <summary>When the grant may be used; absent means always.</summary>
    public TimeWindowSettings[]? Hours { get; init; }

    /// <summary>Shadow mode: the grant's restrictions are evaluated and every would-be refusal is
    /// recorded, but not enforced (the routes it opens are).</summary>
    public bool Shadow { get; init; }

    /// <summary>Names separation rules can refer to besides the grant's own (e.g. <c>untrusted-input</c>, <c>write</c>).</summary>
    public string[] Labels { get; init; } = [];
}

/// <summary><c>Grants:{name}:Mcp</c>: what an MCP client may call, decided on each call's own body.</summary>
public sealed record McpGrantSettings
{
    /// <summary><c>tools/call</c> by <c>params.name</c> (<c>*</c> wildcard).</summary>
    public string[]? Tools { get; init; }

    /// <summary><c>prompts/get</c> by <c>params.name</c>.</summary>
    public string[]? Prompts { get; init; }

    /// <summary><c>resources/read</c> and <c>resources/subscribe</c> by <c>params.uri</c>.</summary>
    public string[]? Resources { get; init; }

    /// <summary>The requests the MCP server may send the agent on this grant's streams
    /// (<c>sampling/createMessage</c>, <c>elicitation/create</c>, <c>roots/list</c>, ...). When the
    /// grant restricts MCP, anything not listed is kept from the agent and refused to the server.</summary>
    public string[]? ServerRequests { get; init; }

    /// <summary>Remove the tools this grant does not allow from <c>tools/list</c> answers (default on).</summary>
    public bool FilterToolList { get; init; } = true;
}

/// <summary>A fixed-window rate limit.</summary>
public sealed record RateLimitSettings
{
    public int Requests { get; init; }

    public TimeSpan Window { get; init; } = TimeSpan.FromMinutes(1);
}

/// <summary>A weekly time window, in a time zone: <c>From</c> to <c>To</c> (overnight when <c>To</c> is earlier).</summary>
public sealed record TimeWindowSettings
{
    /// <summary>Mon, Tue, Wed, Thu, Fri, Sat, Sun; absent means every day. The day is the one the window starts on.</summary>
    public string[]? Days { get; init; }

    /// <summary>HH:mm.</summary>
    public string? From { get; init; }

    /// <summary>HH:mm.</summary>
    public string? To { get; init; }

    /// <summary>IANA time zone id. Default UTC.</summary>
    public string TimeZone { get; init; } = "UTC";
}

/// <summary><c>Gateway:Policy</c>: what the grants alone cannot say.</summary>
public sealed record PolicySettings
{
    /// <summary>Largest MCP or LLM body inspected; larger bodies are refused (413) on inspected routes, never forwarded uninspected.</summary>
    public int MaxInspectedBodyBytes { get; init; } = 1024 * 1024;

    /// <summary>Largest server-sent event read from an MCP stream on a grant that restricts MCP; a
    /// larger event ends the stream, since it can be neither inspected nor passed on uninspected.</summary>
    public int MaxServerEventBytes { get; init; } = 4 * 1024 * 1024;

    /// <summary>How requests name the task they belong to.</summary>
    public TaskSettings Task { get; init; } = new();

    /// <summary>Separation rules: combinations of grants one task may not use.</summary>
    public Dictionary<string, SeparationRuleSettings> Separation { get; init; } = [];
}

/// <summary><c>Gateway:Policy:Task</c>. A request's task is the <see cref="Claim"/> of the agent's
/// token when one is configured (signed: the agent cannot change it per request; a token without it
/// names no task, and the header is then refused), else the <see cref="Header"/>. The header is
/// stripped before forwarding.</summary>
public sealed record TaskSettings
{
    public string Header { get; init; } = "Agent-Task";

    public string? Claim { get; init; }

    /// <summary>How long a step history (an agent instance's, a task's) is kept after its latest step.</summary>
    public TimeSpan Ttl { get; init; } = TimeSpan.FromHours(1);
}

/// <summary><c>Gateway:Policy:Separation:{name}</c>: once an agent instance (or a task it names) has
/// used a grant matching <see cref="After"/>, it may not use one matching <see cref="Deny"/>.
/// Entries are grant names or labels.</summary>
public sealed record SeparationRuleSettings
{
    public string[] After { get; init; } = [];

    public string[] Deny { get; init; } = [];

    /// <summary>Record violations without refusing them.</summary>
    public bool Shadow { get; init; }

    /// <summary>Refuse requests allowed by a grant in <see cref="After"/> or <see cref="Deny"/>
    /// that name no task (403 <c>task-required</c>).</summary>
    public bool RequireTask { get; init; }
}
