using AgentGateway.Configuration;

namespace AgentGateway.Proxy.Policy;

// These records are bound from configuration and then validated and compiled into a
// GatewayRevision; nothing on the request path reads them directly. No array here has a non-empty
// default: the configuration binder appends to an existing array, so a default of [A, B] plus an
// operator's [C] would silently allow A, B and C. Defaults for lists are applied when compiled.

/// <summary><c>Gateway:Grants:{name}</c>: a named permission, re-checked on every request. Every
/// restriction below is optional: absent means "not restricted by this grant"; present (even as an
/// empty list) means "only these".</summary>
[Setting("A named permission, re-checked on every request. Each restriction is optional: absent means not restricted by this grant; present, even empty, means only what it lists.", Rule = """{"anyOf": [{"required": ["Routes"]}, {"required": ["Databases"]}]}""")]
public sealed record GrantSettings
{
    /// <summary>Ids of <c>ReverseProxy:Routes</c> entries this grant opens.</summary>
    [Setting(MinItems = 1)]
    public string[] Routes { get; init; } = [];

    /// <summary><c>Gateway:Databases</c> entries this grant opens, each as one upstream role.</summary>
    [Setting("Gateway:Databases entries this grant opens, each as one upstream role. Of the grant's restrictions only Hours applies to them.")]
    public Dictionary<string, Database.DatabaseGrantSettings>? Databases { get; init; }

    /// <summary>HTTP methods allowed (upper case, e.g. GET).</summary>
    [Setting(AllowedValues = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])]
    public string[]? Methods { get; init; }

    /// <summary>Path patterns on the path as forwarded (after the route's transforms): <c>*</c>
    /// matches within one segment, <c>**</c> across segments.</summary>
    [Setting("On the path as forwarded (after the route's transforms). '*' within a segment, '**' across segments. Ambiguous paths (//, \\, ;, %2F, %2E, %5C, %25, dot segments and segments of dots and spaces, control characters, non-ASCII other than letters, marks and digits) are refused where a grant has path rules.", Pattern = @"^/")]
    public string[]? Paths { get; init; }

    /// <summary>MCP restrictions, on routes with <c>Metadata:Inspect = Mcp</c>.</summary>
    public McpGrantSettings? Mcp { get; init; }

    /// <summary>LLM model patterns (<c>*</c> wildcard), on routes with <c>Metadata:Inspect = Llm</c>.</summary>
    [Setting("On routes with Metadata:Inspect = Llm: every model the request names, where the route's Metadata:LlmProvider reads it (body model/modelId and batch entries, the path, a model or deployment query parameter); those naming the request's own model must agree. '*' within a '/'-separated segment, '**' across. A request with a body that names no model is refused.", Pattern = @"^[A-Za-z0-9._:@/+*-]{1,256}$")]
    public string[]? Models { get; init; }

    /// <summary>At most this many requests per agent in each window, across replicas.</summary>
    public RateLimitSettings? RateLimit { get; init; }

    /// <summary>The request must carry a valid delegation: a human the agent acts for.</summary>
    [Setting("The request must carry a verified delegation (a human the agent acts for).")]
    public bool RequireDelegation { get; init; }

    /// <summary>When the grant may be used; absent means always.</summary>
    public TimeWindowSettings[]? Hours { get; init; }

    /// <summary>Shadow mode: the grant's restrictions are evaluated and every would-be refusal is
    /// recorded, but not enforced (the routes it opens are).</summary>
    [Setting("A trial grant: it opens nothing and allows nothing. On requests the agent's enforced grants allow on its routes, its restrictions and rate limit (counted apart) are evaluated and every would-be refusal is logged and put on the span.")]
    public bool Shadow { get; init; }

    /// <summary>Names separation rules can refer to besides the grant's own (e.g. <c>untrusted-input</c>, <c>write</c>).</summary>
    [Setting("Names separation rules can use besides the grant's own.", MinLength = 1)]
    public string[] Labels { get; init; } = [];
}

/// <summary><c>Grants:{name}:Mcp</c>: what an MCP client may call, decided on each call's own body.</summary>
[Setting("On routes with Metadata:Inspect = Mcp; decided on each JSON-RPC message itself, in both directions. Present (even empty), it restricts MCP: only client methods MCP defines, and only the listed ServerRequests from the server.")]
public sealed record McpGrantSettings
{
    /// <summary><c>tools/call</c> by <c>params.name</c> (<c>*</c> wildcard).</summary>
    [Setting("tools/call by params.name; '*' wildcard.", Pattern = @"^[A-Za-z0-9_.*-]{1,128}$")]
    public string[]? Tools { get; init; }

    /// <summary><c>prompts/get</c> by <c>params.name</c>.</summary>
    [Setting("prompts/get (and completion/complete of a prompt) by params.name; '*' within a '/'-separated segment, '**' across. Names that could be read two ways (dot segments, \\, %, ;, ?, #, surrounding spaces, invisible characters) are refused 400.")]
    public string[]? Prompts { get; init; }

    /// <summary><c>resources/read</c> and <c>resources/subscribe</c> by <c>params.uri</c>.</summary>
    [Setting("resources/read, subscribe, unsubscribe by params.uri, completion/complete by its resource template; absolute URI patterns. '*' within a path segment, '**' across segments, neither into the query; after a literal '?', '*' is one query value. URIs a resolver could read otherwise than the pattern (dot segments, encoded delimiters or dots, %25, backslashes, empty segments, fragments, userinfo, control or invisible characters) are refused 400.")]
    public string[]? Resources { get; init; }

    /// <summary>The requests the MCP server may send the agent on this grant's streams
    /// (<c>sampling/createMessage</c>, <c>elicitation/create</c>, <c>roots/list</c>, ...). When the
    /// grant restricts MCP, anything not listed is kept from the agent and refused to the server.</summary>
    [Setting("Requests the MCP server may send the agent on this grant's SSE streams. Where the grant has an Mcp section, any other server request is kept from the agent and answered to the server with a JSON-RPC error; ping always passes. Without an Mcp section, MCP is not restricted.", AllowedValues = ["ping", "sampling/createMessage", "elicitation/create", "roots/list", "tasks/get", "tasks/result", "tasks/list", "tasks/cancel"])]
    public string[]? ServerRequests { get; init; }

    /// <summary>Remove the tools this grant does not allow from <c>tools/list</c> answers (default on).</summary>
    [Setting("Remove tools this grant does not allow from tools/list answers.")]
    public bool FilterToolList { get; init; } = true;
}

/// <summary>A fixed-window rate limit.</summary>
[Setting("Per agent, across replicas (Redis); per replica without Redis or while it is away.")]
public sealed record RateLimitSettings
{
    [Setting(Required = true, Minimum = 1)]
    public int Requests { get; init; }

    public TimeSpan Window { get; init; } = TimeSpan.FromMinutes(1);
}

/// <summary>A weekly time window, in a time zone: <c>From</c> to <c>To</c> (overnight when <c>To</c> is earlier).</summary>
public sealed record TimeWindowSettings
{
    /// <summary>Mon, Tue, Wed, Thu, Fri, Sat, Sun; absent means every day. The day is the one the window starts on.</summary>
    [Setting(AllowedValues = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"])]
    public string[]? Days { get; init; }

    /// <summary>HH:mm.</summary>
    [Setting(Required = true, Pattern = @"^\d{2}:\d{2}$")]
    public string? From { get; init; }

    /// <summary>HH:mm.</summary>
    [Setting("Not after From: the window runs past midnight.", Required = true, Pattern = @"^\d{2}:\d{2}$")]
    public string? To { get; init; }

    /// <summary>IANA time zone id. Default UTC.</summary>
    [Setting("IANA id, e.g. Europe/Berlin.")]
    public string TimeZone { get; init; } = "UTC";
}

/// <summary><c>Gateway:Policy</c>: what the grants alone cannot say.</summary>
public sealed record PolicySettings
{
    /// <summary>Largest MCP or LLM body inspected; larger bodies are refused (413) on inspected routes, never forwarded uninspected.</summary>
    [Setting("Larger MCP/LLM bodies get 413 and are never forwarded uninspected.", Minimum = 1024, Maximum = 67108864)]
    public int MaxInspectedBodyBytes { get; init; } = 1024 * 1024;

    /// <summary>Largest server-sent event read from an MCP stream on a grant that restricts MCP; a
    /// larger event ends the stream, since it can be neither inspected nor passed on uninspected.</summary>
    [Setting("Largest server-sent event read from an MCP stream on a grant that restricts MCP, and largest WebSocket message from an upstream; a larger one ends the stream or tunnel, never forwarded uninspected.", Minimum = 1024, Maximum = 67108864)]
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
    [Setting("Where agents name their task; stripped before forwarding.", Format = SettingFormat.HeaderName)]
    public string Header { get; init; } = "Agent-Task";

    [Setting("A claim of the agent's token naming the task. When set, it is the only source: a header must agree with it, and a header without it is refused (400).")]
    public string? Claim { get; init; }

    /// <summary>How long a step history (an agent instance's, a task's) is kept after its latest step.</summary>
    [Setting("How long a step history (an agent instance's, a task's) lives after its latest step.")]
    public TimeSpan Ttl { get; init; } = TimeSpan.FromHours(1);
}

/// <summary><c>Gateway:Policy:Separation:{name}</c>: once an agent instance (or a task it names) has
/// used a grant matching <see cref="After"/>, it may not use one matching <see cref="Deny"/>.
/// Entries are grant names or labels.</summary>
public sealed record SeparationRuleSettings
{
    [Setting("Grant names or labels.", Required = true, MinItems = 1)]
    public string[] After { get; init; } = [];

    [Setting("Grant names or labels refused (403 toxic-combination) once the agent instance, or a task it names, used one of After.", Required = true, MinItems = 1)]
    public string[] Deny { get; init; } = [];

    /// <summary>Record violations without refusing them.</summary>
    [Setting("Record would-be refusals (in a history of its own) without enforcing them.")]
    public bool Shadow { get; init; }

    /// <summary>Refuse requests allowed by a grant in <see cref="After"/> or <see cref="Deny"/>
    /// that name no task (403 <c>task-required</c>).</summary>
    [Setting("Requests allowed by a grant in After or Deny must name a task (Task:Claim or Task:Header); without one, 403 task-required.")]
    public bool RequireTask { get; init; }
}
