using System.Diagnostics;
using AgentGateway.Proxy.Audit;
using AgentGateway.Proxy.Configuration;
using AgentGateway.Proxy.Identity;
using AgentGateway.Proxy.Inventory;
using AgentGateway.Proxy.Policy;
using AgentGateway.Proxy.Sessions;
using Microsoft.AspNetCore.Http;

namespace AgentGateway.Proxy.Pipeline;

/// <summary>
/// A proxied request as a live session, from the moment its agent is known to its last byte —
/// whatever it turns into: an answer of a few milliseconds, an event stream, a long upload or
/// download, an HTTP/2 stream, a WebSocket tunnel. Every request is one, because which of them
/// will last cannot be known in advance. Ending it ends the exchange at once: a tunnel gets a
/// close frame first (<see cref="Tunnel"/>); anything else is aborted (HTTP/1.1 connection closed,
/// HTTP/2 stream reset), since a response already under way cannot honestly be finished.
/// </summary>
internal sealed class HttpSession(HttpContext context, AuthenticatedAgent agent, string routeId, AgentResolver resolver, AuditLog audit, TimeProvider time) : ILiveSession
{
    private readonly string _traceId = Activity.Current?.TraceId.ToHexString() ?? "";

    public string AgentId => agent.Agent.Id;

    public string? Instance => agent.Instance;

    /// <summary>What was decided about the request, once the middleware has read it.</summary>
    public GatewayRequestFeature? Feature { get; set; }

    /// <summary>The session's place in the registry (deadlines are set on it).</summary>
    public SessionRegistration? Registration { get; set; }

    /// <summary>Set while the request is a tunnel: ends it with a close frame instead of an abort.</summary>
    public Action<SessionEnd>? Tunnel { get; set; }

    /// <summary>Why the gateway ended it, if it did.</summary>
    public SessionEnd? EndedBy { get; private set; }

    /// <summary>The grant that allowed the request, by <paramref name="decidedBy"/> (the revision
    /// its route was built from): a session it opened within its hours ends with them, and one a newer
    /// revision no longer allows ends now.</summary>
    public void Allowed(Grant grant, GatewayRevision decidedBy)
    {
        if (grant.Hours is { Count: > 0 } hours && HoursEnd(hours, time.GetUtcNow()) is { } end)
        {
            Registration?.EndNoLaterThan(end, SessionEnd.OutsideHours(grant.Name));
        }

        Registration?.Decided(decidedBy);
    }

    /// <summary>When the windows of <paramref name="hours"/> that contain <paramref name="now"/> end
    /// (the latest of them), or null when none does. A window runs to its <c>To</c> on the day it
    /// started; past midnight when <c>To</c> is not after <c>From</c>.</summary>
    internal static DateTimeOffset? HoursEnd(IReadOnlyList<TimeWindow> hours, DateTimeOffset now)
    {
        DateTimeOffset? latest = null;
        foreach (var window in hours)
        {
            if (!window.Contains(now))
            {
                continue;
            }

            var local = TimeZoneInfo.ConvertTime(now, window.Zone).DateTime;
            var overnightEvening = window.To <= window.From && TimeOnly.FromDateTime(local) >= window.From;
            var endLocal = DateTime.SpecifyKind(local.Date.AddDays(overnightEvening ? 1 : 0) + window.To.ToTimeSpan(), DateTimeKind.Unspecified);
            while (window.Zone.IsInvalidTime(endLocal))
            {
                // The clock skips that time (a daylight-saving change): the window ends when it resumes.
                endLocal = endLocal.AddMinutes(1);
            }

            var end = new DateTimeOffset(TimeZoneInfo.ConvertTimeToUtc(endLocal, window.Zone), TimeSpan.Zero);
            if (latest is null || end > latest)
            {
                latest = end;
            }
        }

        return latest;
    }

    public SessionEnd? Recheck(GatewayRevision revision)
    {
        if (!resolver.TryGet(revision, AgentId, out var current))
        {
            return SessionEnd.GrantRemoved($"agent '{AgentId}' is no longer in the inventory");
        }

        if (current!.ExpiresAt is { } expiresAt)
        {
            Registration?.EndNoLaterThan(expiresAt, SessionEnd.AgentExpired(AgentId));
        }

        if (!current.RouteGrants.TryGetValue(routeId, out var grants) || grants.Count == 0)
        {
            return SessionEnd.GrantRemoved($"agent '{AgentId}' holds no grant for route '{routeId}' any more");
        }

        // Not decided yet (still reading the body): the agent still holds the route, which is what
        // the gateway had checked so far.
        if (Feature?.Decision?.Grant is not { } opened)
        {
            return null;
        }

        var now = grants.FirstOrDefault(g => string.Equals(g.Name, opened.Name, StringComparison.OrdinalIgnoreCase));
        return now is not null && Structural.Equal(now, opened)
            ? null
            : SessionEnd.GrantRemoved($"grant '{opened.Name}', which opened this session, was removed or changed");
    }

    public void End(SessionEnd end)
    {
        EndedBy = end;
        if (end == SessionEnd.Shutdown && Tunnel is null)
        {
            // An ordinary request finishes within the server's graceful stop.
            return;
        }

        // The queue waits rather than drops when full; the session ends now either way.
        _ = audit.SessionEndedAsync(_traceId, AgentId, Feature?.Delegation?.Subject, routeId, Feature?.Grant, context.Request.Method, end.Reason, end.Message).AsTask();
        if (Tunnel is { } tunnel)
        {
            tunnel(end);
        }
        else
        {
            context.Abort();
        }
    }
}
