using System.Text.Json;
using System.Text.Json.Serialization;
using AgentGateway.Proxy.Audit;
using AgentGateway.Proxy.Configuration;
using AgentGateway.Proxy.Identity;
using AgentGateway.Proxy.Problems;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace AgentGateway.Proxy.Inventory;

/// <summary>
/// The admin API, on its own listener (<c>Gateway:Admin:Urls</c>) and its own Kestrel server, so
/// no proxy route can ever reach it and it can be bound to a management network only. Every
/// call is authenticated: a bearer token from the admin issuer naming one of the operators.
/// It serves the inventory (configuration plus what this replica has seen), revocation and the
/// configuration status.
/// </summary>
public sealed partial class AdminServer(
    IServiceProvider gateway, ProcessSettings process, ILogger<AdminServer> logger) : IHostedService, IAsyncDisposable
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Converters = { new JsonStringEnumConverter() },
    };

    private WebApplication? _app;

    /// <summary>The addresses the admin API listens on, once started (empty when it is off).</summary>
    public IReadOnlyList<string> Addresses { get; private set; } = [];

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (process.AdminUrls is not { } urls)
        {
            return;
        }

        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls(urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        builder.Logging.ClearProviders();
        // Operators' requests start traces of the gateway's own too (Telemetry.RequestTrace).
        builder.Services.AddSingleton<System.Diagnostics.DistributedContextPropagator>(
            new Telemetry.OwnTracePropagator(System.Diagnostics.DistributedContextPropagator.Current));
        _app = builder.Build();
        // The tracer listens to every ASP.NET Core host of the process: an operator's request gets
        // the same end-of-request attributes (status, route, error) as an agent's. Without a
        // recorded span it costs one feature lookup.
        _app.Use(Telemetry.ServerSpan.InvokeAsync);
        _app.Use((context, next) => AuthenticateAsync(context, next));
        _app.MapGet("/admin/agents", (Delegate)ListAsync);
        _app.MapGet("/admin/agents/{id}", (Delegate)ShowAsync);
        _app.MapPost("/admin/agents/{id}/revoke", (Delegate)RevokeAsync);
        _app.MapPost("/admin/agents/{id}/instances/{instance}/revoke", (Delegate)RevokeInstanceAsync);
        _app.MapPost("/admin/agents", (Delegate)RegisterAsync);
        _app.MapGet("/admin/config/status", (Delegate)StatusAsync);
        _app.MapFallback(static context => ProblemResponse.WriteAsync(context, Refusal.NoRoute()));
        await _app.StartAsync(cancellationToken);
        Addresses = [.. _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses];
        var listening = string.Join(", ", Addresses);
        Log.Listening(logger, listening);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_app is not null)
        {
            await _app.StopAsync(cancellationToken);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.DisposeAsync();
        }
    }

    private async Task AuthenticateAsync(HttpContext context, RequestDelegate next)
    {
        var revision = gateway.GetRequiredService<GatewayConfigProvider>().Current;
        var (caller, refusal) = await gateway.GetRequiredService<AgentAuthenticator>().AuthenticateAdminAsync(context.Request, revision, context.RequestAborted);
        if (caller is null)
        {
            Log.Refused(logger, refusal.Reason, context.Request.Path);
            await ProblemResponse.WriteAsync(context, refusal);
            return;
        }

        context.Items[typeof(AdminServer)] = caller;
        await next(context);
    }

    private Task<IResult> ListAsync(HttpContext context)
    {
        var revision = Revision();
        var configured = revision.Agents.All.Select(a => View(a, revision));
        var ephemeral = Ephemeral.All.Select(e => View(Compile(e, revision)!, revision));
        return Task.FromResult(Results.Json(configured.Concat(ephemeral).OrderBy(a => a.Id, StringComparer.Ordinal).ToList(), Json));
    }

    private Task<IResult> ShowAsync(string id, HttpContext context)
    {
        var revision = Revision();
        return Task.FromResult(Find(id, revision) is { } agent
            ? Results.Json(View(agent, revision), Json)
            : (IResult)Problem(Refusal.AgentUnknownInInventory(id)));
    }

    private async Task<IResult> RevokeAsync(string id, HttpContext context)
    {
        var revision = Revision();
        if (Find(id, revision) is not { } agent)
        {
            return Problem(Refusal.AgentUnknownInInventory(id));
        }

        string? reason = null;
        if (context.Request.ContentLength > 0)
        {
            try
            {
                using var body = await JsonDocument.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted);
                reason = body.RootElement.TryGetProperty("reason", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString() : null;
            }
            catch (JsonException)
            {
                return Problem(Refusal.BadRequest("the body is { \"reason\": \"…\" } or nothing"));
            }
        }

        var caller = (string)context.Items[typeof(AdminServer)]!;
        if (await StoreRevocationAsync(context, agent!.Id, caller, reason) is { } failed)
        {
            return failed;
        }

        return Results.Json(View(agent, revision), Json);
    }

    /// <summary>Revokes one instance of an agent class; the class and its other instances go on.</summary>
    private async Task<IResult> RevokeInstanceAsync(string id, string instance, HttpContext context)
    {
        var revision = Revision();
        if (revision.Agents.ClassOf(id) is not { } agentClass)
        {
            return Problem(Refusal.AgentUnknownInInventory(id));
        }

        var caller = (string)context.Items[typeof(AdminServer)]!;
        var key = RevocationStore.InstanceKey(agentClass.Agent.Id, instance);
        if (await StoreRevocationAsync(context, key, caller, await ReasonAsync(context)) is { } failed)
        {
            return failed;
        }

        return Results.Json(View(agentClass.Agent, revision), Json);
    }

    /// <summary>Revokes <paramref name="key"/> (an agent, or an instance) and audits it when this
    /// call made it; a 503 problem when it could not be stored, which the operator must not read
    /// as done (it is enforced on this replica only, and a repeated call stores it).</summary>
    private async Task<IResult?> StoreRevocationAsync(HttpContext context, string key, string caller, string? reason)
    {
        try
        {
            var (_, made) = await gateway.GetRequiredService<RevocationStore>().RevokeAsync(key, caller, reason);
            if (made)
            {
                await gateway.GetRequiredService<AuditLog>().RevokedAsync(context, key, caller, reason);
            }

            return null;
        }
        catch (RevocationNotStoredException ex)
        {
            return Problem(Refusal.RevocationNotStored(ex.Message));
        }
    }

    /// <summary>Just-in-time registration of an ephemeral agent from a template. Configured agents
    /// stay read-only: an id they use cannot be registered.</summary>
    private async Task<IResult> RegisterAsync(HttpContext context)
    {
        var revision = Revision();
        Registration? registration;
        try
        {
            registration = await JsonSerializer.DeserializeAsync<Registration>(context.Request.Body, Json, context.RequestAborted);
        }
        catch (JsonException)
        {
            registration = null;
        }

        if (registration is not { Id: { } id, Owner: { } owner, Template: { } templateName, TimeToLive: { } ttl } || !AgentGateway.Credentials.CredentialName.IsValid(id))
        {
            return Problem(Refusal.BadRequest("a registration needs id (letters, digits, '-', '_', '.'), owner, template, timeToLive (hh:mm:ss), grants and identities"));
        }

        if (Find(id, revision) is not null)
        {
            return Problem(Refusal.Conflict($"agent '{id}' exists; configured agents are read-only through the API"));
        }

        if (!revision.Admin.Templates.TryGetValue(templateName, out var template))
        {
            return Problem(Refusal.BadRequest($"no template '{templateName}' (Gateway:Admin:Templates)"));
        }

        var grants = registration.Grants ?? [];
        if (grants.Length == 0)
        {
            return Problem(Refusal.BadRequest("name at least one grant"));
        }

        if (grants.FirstOrDefault(g => !template.Grants.Contains(g)) is { } extra)
        {
            return Problem(Refusal.BadRequest($"template '{template.Name}' does not allow grant '{extra}'"));
        }

        if (ttl <= TimeSpan.Zero || ttl > template.MaxTimeToLive)
        {
            return Problem(Refusal.BadRequest($"timeToLive must be above zero and at most {template.MaxTimeToLive} (template '{template.Name}')"));
        }

        var identities = registration.Identities ?? [];
        if (identities.Length == 0 || identities.Any(i => i.Issuer is null || string.IsNullOrEmpty(i.Subject) || !template.Issuers.Contains(i.Issuer)))
        {
            return Problem(Refusal.BadRequest($"identities must come from the template's issuers ({string.Join(", ", template.Issuers)})"));
        }

        foreach (var identity in identities)
        {
            var key = new AgentIdentityKey(identity.Issuer, identity.Subject);
            if (revision.Agents.TryResolve(key, out var holder, out _) || Ephemeral.Owns(key))
            {
                return Problem(Refusal.Conflict($"identity ({identity.Issuer}, {identity.Subject}) already belongs to an agent{(holder is null ? "" : $" ('{holder.Id}')")}"));
            }
        }

        var now = gateway.GetRequiredService<TimeProvider>().GetUtcNow();
        var agent = new EphemeralAgent(id, owner, registration.Description, template.Name, grants, identities, now, now + ttl, (string)context.Items[typeof(AdminServer)]!);
        await Ephemeral.RegisterAsync(agent);
        return Results.Json(View(Compile(agent, revision)!, revision), Json, statusCode: StatusCodes.Status201Created);
    }

    private static async Task<string?> ReasonAsync(HttpContext context)
    {
        if (context.Request.ContentLength is null or 0)
        {
            return null;
        }

        try
        {
            using var body = await JsonDocument.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted);
            return body.RootElement.TryGetProperty("reason", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString() : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private EphemeralAgentStore Ephemeral => gateway.GetRequiredService<EphemeralAgentStore>();

    /// <summary>A configured agent (or class), else a live ephemeral one.</summary>
    private Agent? Find(string id, GatewayRevision revision) =>
        revision.Agents.TryGet(id, out var agent) ? agent
        : Ephemeral.TryGet(id, out var ephemeral) && ephemeral!.ExpiresAt > gateway.GetRequiredService<TimeProvider>().GetUtcNow() ? Compile(ephemeral, revision)
        : null;

    private Agent? Compile(EphemeralAgent ephemeral, GatewayRevision revision) =>
        ephemeral.Identities.Count > 0 && Ephemeral.TryResolve(revision, new AgentIdentityKey(ephemeral.Identities[0].Issuer, ephemeral.Identities[0].Subject), out var agent)
            ? agent
            : null;

    private Task<IResult> StatusAsync(HttpContext context)
    {
        var status = gateway.GetRequiredService<GatewayConfigProvider>().Status;
        return Task.FromResult(Results.Json(
            new ConfigStatusView(status.Revision, status.LoadedAt, status.LastReloadFailedAt, [.. status.LastReloadProblems.Select(p => p.ToString())]),
            Json));
    }

    private GatewayRevision Revision() => gateway.GetRequiredService<GatewayConfigProvider>().Current;

    private AgentView View(Agent agent, GatewayRevision revision)
    {
        var activity = gateway.GetRequiredService<AgentActivity>();
        var seen = activity.Of(agent.Id);
        var (lastSeen, uses) = (seen.LastSeen, seen.Uses);
        var now = gateway.GetRequiredService<TimeProvider>().GetUtcNow();
        var revocations = gateway.GetRequiredService<RevocationStore>();
        revocations.TryGet(agent.Id, out var revocation);
        var agentClass = revision.Agents.ClassOf(agent.Id);
        IReadOnlyList<InstanceView>? instances = agentClass is null ? null :
        [
            .. activity.InstancesOf(agent.Id, agentClass.IdleTimeout).Select(i => new InstanceView(
                i.Id,
                i.FirstSeen,
                i.LastSeen,
                i.Requests,
                i.Uses.ToDictionary(u => u.Key.ToString(), u => u.Value),
                revocations.TryGet(RevocationStore.InstanceKey(agent.Id, i.Id), out var r) ? new RevocationView(r!.At, r.By, r.Reason) : null)),
        ];
        Ephemeral.TryGet(agent.Id, out var ephemeral);
        return new AgentView(
            agent.Id,
            agent.Owner,
            agent.Description,
            [.. agent.Identities.Select(i => new IdentityView(i.Issuer, i.Subject))],
            agent.Grants,
            agent.ExpiresAt,
            agent.ExpiresAt is { } expires && expires <= now,
            revocation is null ? null : new RevocationView(revocation.At, revocation.By, revocation.Reason),
            agent.Identities.Any(i => i.Issuer == StaticKeys.Issuer) ? "weak" : "strong",
            lastSeen,
            lastSeen is null || now - lastSeen > revision.Admin.DormantAfter,
            uses.ToDictionary(u => u.Key.ToString(), u => u.Value))
        {
            Kind = agentClass is not null ? "class" : ephemeral is not null ? "ephemeral" : "configured",
            Class = agentClass is null ? null : agentClass.Prefix ?? $"{agentClass.Issuer}:{agentClass.Pattern}",
            Instances = instances,
            Template = ephemeral?.Template,
            CreatedBy = ephemeral?.CreatedBy,
        };
    }

    /// <summary>The same problem body as every other refusal (reason, trace id).</summary>
    private static ProblemResult Problem(Refusal refusal) => new(refusal);

    private sealed class ProblemResult(Refusal refusal) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext) => ProblemResponse.WriteAsync(httpContext, refusal);
    }

    private sealed record IdentityView(string Issuer, string Subject);

    private sealed record RevocationView(DateTimeOffset At, string By, string? Reason);

    private sealed record AgentView(
        string Id,
        string Owner,
        string? Description,
        IReadOnlyList<IdentityView> Identities,
        IReadOnlyList<string> Grants,
        DateTimeOffset? ExpiresAt,
        bool Expired,
        RevocationView? Revoked,
        string IdentityStrength,
        DateTimeOffset? LastSeen,
        bool Dormant,
        IReadOnlyDictionary<string, long> CredentialUses)
    {
        /// <summary><c>configured</c>, <c>class</c> or <c>ephemeral</c>.</summary>
        public string Kind { get; init; } = "configured";

        public string? Class { get; init; }

        public IReadOnlyList<InstanceView>? Instances { get; init; }

        public string? Template { get; init; }

        public string? CreatedBy { get; init; }
    }

    private sealed record InstanceView(string Id, DateTimeOffset? FirstSeen, DateTimeOffset? LastSeen, long Requests, IReadOnlyDictionary<string, long> CredentialUses, RevocationView? Revoked);

    private sealed record Registration(
        string? Id, string? Owner, string? Description, string? Template, string[]? Grants, EphemeralIdentity[]? Identities, TimeSpan? TimeToLive);

    private sealed record ConfigStatusView(long Revision, DateTimeOffset LoadedAt, DateTimeOffset? LastReloadFailedAt, IReadOnlyList<string> LastReloadProblems);

    private static partial class Log
    {
        [LoggerMessage(EventId = 2801, Level = LogLevel.Information, Message = "Admin API listening on {Addresses}")]
        public static partial void Listening(ILogger logger, string addresses);

        [LoggerMessage(EventId = 2802, Level = LogLevel.Warning, Message = "Admin API call refused ({Reason}) for {Path}")]
        public static partial void Refused(ILogger logger, string reason, PathString path);
    }
}
