using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace AgentGateway.Proxy.Telemetry;

/// <summary>The one <see cref="ActivitySource"/> and one <see cref="Meter"/> of the gateway, both
/// named <c>AgentGateway</c> (the README's outside contract), and the attribute names SREs query by.</summary>
public static class GatewayTelemetry
{
    public const string Name = "AgentGateway";

    public static readonly ActivitySource Source = new(Name);

    public static readonly Meter Meter = new(Name);

    /// <summary>Every decision the gateway takes on a request, by reason (<c>forwarded</c> or a refusal reason).</summary>
    public static readonly Counter<long> Decisions = Meter.CreateCounter<long>("agentgateway.decisions", unit: "{request}", description: "Requests by gateway decision");

    /// <summary>Every hop credential injected, by kind and source (<c>Static</c>, <c>LocalCache</c>,
    /// <c>SharedCache</c>, <c>Fetched</c>): the cache hit ratio by level.</summary>
    public static readonly Counter<long> CredentialUses = Meter.CreateCounter<long>("agentgateway.credential.uses", unit: "{use}", description: "Hop credentials injected, by kind and cache level");

    /// <summary>Upstream answers to forwarded requests, by route and status code.</summary>
    public static readonly Counter<long> UpstreamResponses = Meter.CreateCounter<long>("agentgateway.upstream.responses", unit: "{response}", description: "Upstream responses by route and status");

    /// <summary>Agents revoked.</summary>
    public static readonly Counter<long> Revocations = Meter.CreateCounter<long>("agentgateway.revocations", unit: "{revocation}", description: "Agent revocations");

    /// <summary>Database connections by decision: <c>opened</c>, a refusal reason, <c>cancel</c> or <c>cancel-refused</c>.</summary>
    public static readonly Counter<long> DatabaseDecisions = Meter.CreateCounter<long>("agentgateway.database.decisions", unit: "{connection}", description: "Database connections by gateway decision");

    /// <summary>Database sessions open now, by database.</summary>
    public static readonly UpDownCounter<long> DatabaseSessions = Meter.CreateUpDownCounter<long>("agentgateway.database.sessions", unit: "{session}", description: "Open database sessions");

    /// <summary>Database sessions ended, by why (agent-revoked, session-expired, grant-removed, client-closed, ...).</summary>
    public static readonly Counter<long> DatabaseSessionEnds = Meter.CreateCounter<long>("agentgateway.database.session.ends", unit: "{session}", description: "Database sessions ended, by reason");

    /// <summary>The one span of a credential use: acquired (token-endpoint calls, on a cache miss,
    /// are its children) and put into the hop.</summary>
    public const string CredentialSpan = "agentgateway.credential";

    /// <summary>The event a refusal adds to the request's span.</summary>
    public const string RefusalEvent = "agentgateway.refusal";

    /// <summary>The request's server span when it is recorded for an exporter, else null. ASP.NET
    /// Core makes a request activity when logs are exported or a trace is sampled out (for log
    /// scopes and to pass <c>traceparent</c> on); attributes set on it would be work for nobody.</summary>
    public static Activity? RequestSpan(HttpContext context) => Recorded(context.Features.Get<IHttpActivityFeature>()?.Activity);

    /// <summary><paramref name="activity"/> when a listener asked for its data (sampled in), else null.</summary>
    public static Activity? Recorded(Activity? activity) => activity is { IsAllDataRequested: true } ? activity : null;

    /// <summary>Marks the request's span with a refusal: the decision, the error status and an
    /// event with the reason, the status code and the detail (the problem body's, never a secret).</summary>
    public static void Refused(Activity? span, string reason, int status, string detail)
    {
        if (span is null)
        {
            return;
        }

        span.SetTag(Tags.Decision, reason);
        span.SetStatus(ActivityStatusCode.Error, reason);
        span.AddEvent(new ActivityEvent(RefusalEvent, tags: new ActivityTagsCollection
        {
            [Tags.Decision] = reason,
            [Tags.HttpStatusCode] = status,
            [Tags.RefusalDetail] = detail,
        }));
    }

    public static readonly Counter<long> SessionsEnded = Meter.CreateCounter<long>("agentgateway.sessions.ended", unit: "{session}", description: "Live sessions (streams, tunnels, long requests) the gateway ended, by reason");

    /// <summary>Marks <paramref name="activity"/> with who acts: the agent and, when it acts for a
    /// user, the user and the chain (user first, then each actor), so any one span answers
    /// "who triggered this?". Once per span: the attributes are appended, not searched for.</summary>
    public static void Stamp(Activity? activity, string agentId, string? user)
    {
        if (activity is null)
        {
            return;
        }

        activity.AddTag(Tags.AgentId, agentId);
        if (user is not null)
        {
            StampUser(activity, agentId, user);
        }
    }

    /// <summary>Adds to a span already stamped with its agent the user it acts for and the chain.</summary>
    public static void StampUser(Activity? activity, string agentId, string user)
    {
        if (activity is null)
        {
            return;
        }

        activity.AddTag(Tags.OnBehalfOf, user);
        activity.AddTag(Tags.DelegationChain, new[] { user, agentId });
    }

    public static class Tags
    {
        public const string AgentId = "agentgateway.agent.id";
        public const string AgentIssuer = "agentgateway.agent.issuer";

        /// <summary>The user (subject) the agent acts for, from a verified delegation.</summary>
        public const string OnBehalfOf = "agentgateway.delegation.user";

        /// <summary>Who acts, outermost first: the user, then the agent acting for them.</summary>
        public const string DelegationChain = "agentgateway.delegation.chain";
        public const string RouteId = "agentgateway.route.id";
        public const string Grant = "agentgateway.policy.grant";
        public const string Decision = "agentgateway.decision";

        /// <summary>On the refusal event: the problem body's detail.</summary>
        public const string RefusalDetail = "agentgateway.refusal.detail";
        public const string CredentialName = "agentgateway.credential.name";
        public const string CredentialKind = "agentgateway.credential.kind";
        public const string CredentialSource = "agentgateway.credential.source";
        public const string CredentialFingerprint = "agentgateway.credential.fingerprint";
        public const string CredentialHeader = "agentgateway.credential.header";
        public const string CredentialExpiresAt = "agentgateway.credential.expires_at";

        // OpenTelemetry semantic conventions, where one fits.
        public const string ServerAddress = "server.address";
        public const string ServerPort = "server.port";
        public const string ErrorType = "error.type";
        public const string HttpStatusCode = "http.response.status_code";
        public const string ConfigRevision = "agentgateway.config.revision";

        /// <summary>The policy outcome: <c>allowed</c> or the refusal reason.</summary>
        public const string PolicyDecision = "agentgateway.policy.decision";

        /// <summary>The separation rule that refused, if one did.</summary>
        public const string PolicyRule = "agentgateway.policy.rule";

        /// <summary>What shadow policy would have refused (recorded, not enforced).</summary>
        public const string PolicyShadow = "agentgateway.policy.shadow";

        /// <summary>The task the request belongs to.</summary>
        public const string Task = "agentgateway.task.id";

        /// <summary>OpenTelemetry's database system (<c>postgresql</c>) and namespace (the server's database name).</summary>
        public const string DatabaseSystem = "db.system.name";
        public const string DatabaseNamespace = "db.namespace";

        /// <summary>The gateway's database entry, and the upstream role a session logs in as.</summary>
        public const string DatabaseName = "agentgateway.database.name";
        public const string DatabaseRole = "agentgateway.database.role";

        /// <summary>Why a database session ended.</summary>
        public const string DatabaseEndReason = "agentgateway.database.end_reason";

        /// <summary>The trace id of the agent's own <c>traceparent</c>: its claim, not the request's trace.</summary>
        public const string AgentTraceId = "agentgateway.agent.trace_id";

        /// <summary>Why the gateway ended a live session (<c>agent-revoked</c>, <c>session-expired</c>, ...).</summary>
        public const string SessionEnd = "agentgateway.session.end";
    }
}
