using System.Collections.Frozen;
using AgentGateway.Proxy.Configuration;
using AgentGateway.Proxy.Inventory;
using AgentGateway.Proxy.Policy;
using AgentGateway.Proxy.Sessions;
using AgentGateway.Proxy.Tests.Configuration;
using AgentGateway.Proxy.Tests.Policy;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace AgentGateway.Proxy.Tests.Sessions;

/// <summary>The registry that ends long-lived connections: deadlines timed by the registry's own
/// timer (driven here by a fake clock), revocations of agents and of instances, reloads.</summary>
public sealed class LiveSessionRegistryTests : IDisposable
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 28, 12, 0, 0, TimeSpan.Zero));
    private readonly LiveSessionRegistry _registry;

    public LiveSessionRegistryTests() => _registry = new LiveSessionRegistry(_time, NullLogger<LiveSessionRegistry>.Instance);

    public void Dispose() => _registry.Dispose();

    [Fact]
    public void A_session_ends_at_its_earliest_deadline_not_a_tick_before_and_only_once()
    {
        var session = new Session("a");
        using var registration = _registry.Register(session);
        registration.EndNoLaterThan(_time.GetUtcNow().AddSeconds(10), SessionEnd.Expired);
        registration.EndNoLaterThan(_time.GetUtcNow().AddSeconds(5), SessionEnd.AgentExpired("a"));
        // A later deadline changes nothing.
        registration.EndNoLaterThan(_time.GetUtcNow().AddSeconds(7), SessionEnd.Expired);

        _time.Advance(TimeSpan.FromSeconds(5) - TimeSpan.FromTicks(1));
        Assert.Empty(session.Ends);
        _time.Advance(TimeSpan.FromTicks(1));
        Assert.Equal(["agent-expired"], session.Ends);

        _time.Advance(TimeSpan.FromSeconds(10));
        _registry.Revoked(new Revocation("a", _time.GetUtcNow(), "ops", null));
        Assert.Equal(["agent-expired"], session.Ends);
        Assert.Equal(0, _registry.Count);
    }

    [Fact]
    public void One_timer_ends_many_sessions_each_at_its_own_deadline_also_when_an_earlier_one_arrives_later()
    {
        var start = _time.GetUtcNow();
        var sessions = Enumerable.Range(0, 20).Select(i => new Session("a" + i)).ToList();
        var registrations = sessions.Select(_registry.Register).ToList();
        for (var i = 0; i < sessions.Count; i++)
        {
            // Deadlines 20 s, 19 s, ... 1 s away: each one earlier than the timer is armed for.
            registrations[i].EndNoLaterThan(start.AddSeconds(20 - i), SessionEnd.Expired);
        }

        for (var second = 1; second <= 20; second++)
        {
            _time.Advance(TimeSpan.FromSeconds(1));
            Assert.Equal(second, sessions.Count(s => s.Ends.Count == 1));
            Assert.Single(sessions[20 - second].Ends);
        }

        registrations.ForEach(r => r.Dispose());
    }

    [Fact]
    public void A_deadline_already_past_ends_the_session_at_once()
    {
        var session = new Session("a");
        using var registration = _registry.Register(session);

        registration.EndNoLaterThan(_time.GetUtcNow().AddMilliseconds(-1), SessionEnd.Expired);

        Assert.Equal(["session-expired"], session.Ends);
        Assert.True(registration.Ended);
    }

    [Fact]
    public void A_revocation_ends_every_session_of_the_agent_and_an_instance_revocation_only_that_instance()
    {
        var first = new Session("support-bot");
        var second = new Session("Support-Bot");
        var other = new Session("billing-bot");
        var instanceOne = new Session("workers", "worker-1");
        var instanceTwo = new Session("workers", "worker-2");
        var registrations = new[] { first, second, other, instanceOne, instanceTwo }.Select(_registry.Register).ToList();

        _registry.Revoked(new Revocation("support-bot", _time.GetUtcNow(), "ops", "suspected"));
        _registry.Revoked(new Revocation(RevocationStore.InstanceKey("workers", "worker-1"), _time.GetUtcNow(), "ops", null));

        Assert.Equal(["agent-revoked"], first.Ends);
        Assert.Equal(["agent-revoked"], second.Ends);
        Assert.Empty(other.Ends);
        Assert.Equal(["agent-revoked"], instanceOne.Ends);
        Assert.Empty(instanceTwo.Ends);
        Assert.Equal(2, _registry.Count);

        // Revoking the class reaches every instance.
        _registry.Revoked(new Revocation("workers", _time.GetUtcNow(), "ops", null));
        Assert.Equal(["agent-revoked"], instanceTwo.Ends);
        registrations.ForEach(r => r.Dispose());
    }

    [Fact]
    public void A_session_that_closed_by_itself_is_never_ended_and_leaves_the_registry()
    {
        var session = new Session("a");
        var registration = _registry.Register(session);
        registration.EndNoLaterThan(_time.GetUtcNow().AddSeconds(1), SessionEnd.Expired);

        registration.Dispose();
        _registry.Revoked(new Revocation("a", _time.GetUtcNow(), "ops", null));
        _time.Advance(TimeSpan.FromSeconds(2));

        Assert.Empty(session.Ends);
        Assert.Equal(0, _registry.Count);
    }

    [Fact]
    public void A_reload_ends_the_sessions_it_no_longer_allows_and_those_it_cannot_decide()
    {
        var kept = new Session("a");
        var removed = new Session("b") { Verdict = SessionEnd.GrantRemoved("grant 'g' was removed") };
        var broken = new Session("c") { Throws = true };
        var registrations = new[] { kept, removed, broken }.Select(_registry.Register).ToList();

        _registry.Recheck(null!);

        Assert.Empty(kept.Ends);
        Assert.Equal(["grant-removed"], removed.Ends);
        Assert.Equal(["grant-removed"], broken.Ends);
        Assert.Equal(1, _registry.Count);
        registrations.ForEach(r => r.Dispose());
    }

    [Fact]
    public void A_session_decided_on_its_routes_older_revision_after_a_newer_one_was_swept_is_decided_again_on_the_newer()
    {
        // Revision 2 arrived after the requests' route was built from revision 1, and its sweep
        // passed before they were registered and decided.
        _registry.Recheck(Revision(2));
        var removedBy2 = new Session("a") { VerdictOn = r => r?.Number >= 2 ? SessionEnd.GrantRemoved("grant 'g' was removed") : null };
        var allowedBy2 = new Session("b") { VerdictOn = _ => null };
        using var removed = _registry.Register(removedBy2);
        using var allowed = _registry.Register(allowedBy2);

        removed.Decided(Revision(1));
        allowed.Decided(Revision(1));

        Assert.Equal(["grant-removed"], removedBy2.Ends);
        Assert.Empty(allowedBy2.Ends);

        // Decided by the newest revision swept: nothing to catch up on.
        var current = new Session("c") { VerdictOn = _ => SessionEnd.GrantRemoved("never asked") };
        using var registration = _registry.Register(current);
        registration.Decided(Revision(2));
        Assert.Empty(current.Ends);
    }

    [Fact]
    public void A_session_that_fails_while_being_ended_does_not_stop_the_others_from_ending()
    {
        var failing = new Session("a") { ThrowsOnEnd = true };
        var next = new Session("a");
        var registrations = new[] { failing, next }.Select(_registry.Register).ToList();

        _registry.Revoked(new Revocation("a", _time.GetUtcNow(), "ops", null));

        Assert.Equal(["agent-revoked"], next.Ends);
        Assert.Equal(0, _registry.Count);
        registrations.ForEach(r => r.Dispose());
    }

    [Fact]
    public void A_grant_compiled_again_from_the_same_settings_is_the_same_grant_and_any_change_is_not()
    {
        static Grant Compile() => PolicyEngineTests.Grant("g") with
        {
            Methods = FrozenSet.ToFrozenSet(["GET", "POST"], StringComparer.Ordinal),
            Tools = [GlobPattern.ForName("lookup_*")],
            RateLimit = new RateLimit(2, TimeSpan.FromMinutes(5)),
            Hours = [new TimeWindow(new HashSet<DayOfWeek> { DayOfWeek.Monday }, new TimeOnly(9, 0), new TimeOnly(17, 0), TimeZoneInfo.Utc)],
        };

        var original = Compile();
        var reordered = original with { Methods = FrozenSet.ToFrozenSet(["POST", "GET"], StringComparer.Ordinal) };

        Assert.True(Structural.Equal(original, Compile()));
        Assert.True(Structural.Equal(original, reordered));
        Assert.False(Structural.Equal(original, original with { Methods = FrozenSet.ToFrozenSet(["GET"], StringComparer.Ordinal) }));
        Assert.False(Structural.Equal(original, original with { Tools = [GlobPattern.ForName("lookup_customer")] }));
        Assert.False(Structural.Equal(original, original with { RateLimit = new RateLimit(3, TimeSpan.FromMinutes(5)) }));
        Assert.False(Structural.Equal(original, original with { Hours = [new TimeWindow(new HashSet<DayOfWeek> { DayOfWeek.Monday }, new TimeOnly(9, 0), new TimeOnly(18, 0), TimeZoneInfo.Utc)] }));
        Assert.False(Structural.Equal(original, original with { Shadow = true }));
    }

    /// <summary>A revision that is only its number: what the registry compares.</summary>
    private static GatewayRevision Revision(long number) => BareRevision.Of(number);

    private sealed class Session(string agentId, string? instance = null) : ILiveSession
    {
        public string AgentId => agentId;

        public string? Instance => instance;

        public List<string> Ends { get; } = [];

        public SessionEnd? Verdict { get; init; }

        public bool Throws { get; init; }

        public bool ThrowsOnEnd { get; init; }

        public Func<GatewayRevision?, SessionEnd?>? VerdictOn { get; init; }

        public SessionEnd? Recheck(GatewayRevision revision) => Throws ? throw new InvalidOperationException("cannot decide") : VerdictOn is { } on ? on(revision) : Verdict;

        public void End(SessionEnd end)
        {
            Ends.Add(end.Reason);
            if (ThrowsOnEnd)
            {
                throw new IOException("the socket is gone");
            }
        }
    }
}
