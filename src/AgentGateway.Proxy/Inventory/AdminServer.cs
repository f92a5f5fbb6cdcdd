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
using Microsoft.Extensions.Configuration;
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
    IServiceProvider gateway, IConfiguration configuration, ILogger<AdminServer> logger) : IHostedService, IAsyncDisposable
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
        var urls = configuration["Gateway:Admin:Urls"];
        if (string.IsNullOrWhiteSpace(urls))
        {
            return;
        }

        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls(urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        builder.Logging.ClearProviders();
        _app = builder.Build();
        _app.Use((context, next) => AuthenticateAsync(context, next));
        _app.MapGet("/admin/agents", (Delegate)ListAsync);
        _app.MapGet("/admin/agents/{id}", (Delegate)ShowAsync);
        _app.MapPost("/admin/agents/{id}/revoke", (Delegate)RevokeAsync);
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
        return Task.FromResult(Results.Json(revision.Agents.All.OrderBy(a => a.Id, StringComparer.Ordinal).Select(a => View(a, revision)).ToList(), Json));
    }

    private Task<IResult> ShowAsync(string id, HttpContext context)
    {
        var revision = Revision();
        return Task.FromResult(revision.Agents.TryGet(id, out var agent)
            ? Results.Json(View(agent!, revision), Json)
            : (IResult)Problem(Refusal.AgentUnknownInInventory(id)));
    }

    private async Task<IResult> RevokeAsync(string id, HttpContext context)
    {
        var revision = Revision();
        if (!revision.Agents.TryGet(id, out var agent))
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
        var revocations = gateway.GetRequiredService<RevocationStore>();
        if (!revocations.TryGet(agent!.Id, out _))
        {
            await revocations.RevokeAsync(agent.Id, caller, reason, context.RequestAborted);
            await gateway.GetRequiredService<AuditLog>().RevokedAsync(context, agent.Id, caller, reason);
        }

        return Results.Json(View(agent, revision), Json);
    }

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
        var (lastSeen, uses) = gateway.GetRequiredService<AgentActivity>().Of(agent.Id);
        var now = gateway.GetRequiredService<TimeProvider>().GetUtcNow();
        gateway.GetRequiredService<RevocationStore>().TryGet(agent.Id, out var revocation);
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
            uses.ToDictionary(u => u.Key.ToString(), u => u.Value));
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
        IReadOnlyDictionary<string, long> CredentialUses);

    private sealed record ConfigStatusView(long Revision, DateTimeOffset LoadedAt, DateTimeOffset? LastReloadFailedAt, IReadOnlyList<string> LastReloadProblems);

    private static partial class Log
    {
        [LoggerMessage(EventId = 2801, Level = LogLevel.Information, Message = "Admin API listening on {Addresses}")]
        public static partial void Listening(ILogger logger, string addresses);

        [LoggerMessage(EventId = 2802, Level = LogLevel.Warning, Message = "Admin API call refused ({Reason}) for {Path}")]
        public static partial void Refused(ILogger logger, string reason, PathString path);
    }
}
