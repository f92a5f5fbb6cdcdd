using System.Security.Claims;
using System.Security.Cryptography;
using AgentGateway.Proxy.Configuration;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using ModelContextProtocol.AspNetCore.Authentication;
using ModelContextProtocol.Authentication;
using ModelContextProtocol.Server;

namespace AgentGateway.Sandbox;

/// <summary>
/// The sandbox's demo identity provider: an OAuth token endpoint (client credentials, RFC 8707
/// resources), its RFC 8414 metadata and JWKS, and an Azure-IMDS-shaped managed identity endpoint.
/// Minimal on purpose — it exists so the sandbox needs no outside service; the gateway talks to
/// it exactly as it talks to a real issuer. Never for production.
/// </summary>
internal sealed class DemoIdentityProvider : IAsyncDisposable
{
    private readonly ECDsaSecurityKey _key = new(ECDsa.Create(ECCurve.NamedCurves.nistP256)) { KeyId = "sandbox-1" };
    private readonly Dictionary<string, (string Secret, string Audience, TimeSpan Lifetime)> _clients = new(StringComparer.Ordinal);
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, int> _tokenRequests = new(StringComparer.Ordinal);
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> _agentTokens = new(StringComparer.Ordinal);
    private readonly HashSet<string> _agents = new(StringComparer.Ordinal);
    private WebApplication? _app;

    public string Url { get; private set; } = "";

    public SecurityKey PublicKey => _key;

    public void AddClient(string clientId, string secret, string audience, TimeSpan? lifetime = null) =>
        _clients[clientId] = (secret, audience, lifetime ?? TimeSpan.FromMinutes(15));

    /// <summary>Registers an agent: the tokens it gets are remembered, so an upstream can say if one
    /// ever reached it.</summary>
    public void AddAgent(string clientId, string secret, string audience)
    {
        AddClient(clientId, secret, audience);
        _agents.Add(clientId);
    }

    /// <summary>Whether <paramref name="text"/> holds a token this provider issued to an agent.</summary>
    public bool ContainsAgentToken(string text) => _agentTokens.Keys.Any(token => text.Contains(token, StringComparison.Ordinal));

    /// <summary>Token requests received from a client, granted or not.</summary>
    public int TokenRequests(string clientId) => _tokenRequests.GetValueOrDefault(clientId);

    /// <summary>Starts on <paramref name="listener"/> (plain HTTP on loopback by default).</summary>
    public async Task StartAsync(SandboxListener? listener = null, int port = 0)
    {
        listener ??= SandboxListener.Loopback;
        var builder = WebApplication.CreateSlimBuilder();
        listener.Configure(builder, port);
        builder.Logging.ClearProviders();
        _app = builder.Build();
        _app.MapPost("/token", (Delegate)IssueAsync);
        _app.MapGet("/jwks", () => Results.Text(Jwks(), "application/json"));
        _app.MapGet("/.well-known/oauth-authorization-server", () => Results.Json(new { issuer = Url, token_endpoint = Url + "token", jwks_uri = Url + "jwks" }));
        // Azure IMDS's shape: the managed identity of "this machine".
        _app.MapGet("/metadata/identity/oauth2/token", (HttpContext context) =>
        {
            if (context.Request.Headers["Metadata"] != "true")
            {
                return Results.BadRequest();
            }

            var resource = context.Request.Query["resource"].ToString();
            var token = Mint("sandbox-vm-identity", resource, TimeSpan.FromHours(1));
            return Results.Json(new
            {
                access_token = token,
                expires_on = DateTimeOffset.UtcNow.AddHours(1).ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture),
                expires_in = "3599",
                resource,
                token_type = "Bearer",
            });
        });
        await _app.StartAsync();
        Url = listener.BaseUrl(_app);
    }

    /// <summary>A token as the provider would issue it (for the story's agent and operator).</summary>
    public string Mint(string subject, string audience, TimeSpan lifetime, string? authorizedParty = null, string? actor = null)
    {
        var now = DateTime.UtcNow;
        var claims = new Dictionary<string, object> { ["sub"] = subject, ["client_id"] = authorizedParty ?? subject, ["jti"] = Guid.NewGuid().ToString("N") };
        if (actor is not null)
        {
            claims["act"] = new Dictionary<string, object> { ["sub"] = actor };
        }

        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = Url,
            Audience = audience,
            Claims = claims,
            IssuedAt = now,
            NotBefore = now,
            Expires = now + lifetime,
            TokenType = "at+jwt",
            SigningCredentials = new SigningCredentials(_key, SecurityAlgorithms.EcdsaSha256),
        });
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.DisposeAsync();
        }
    }

    private async Task<IResult> IssueAsync(HttpContext context)
    {
        var form = await context.Request.ReadFormAsync();
        var clientId = form["client_id"].ToString();
        _tokenRequests.AddOrUpdate(clientId, 1, (_, n) => n + 1);
        if (!_clients.TryGetValue(clientId, out var client)
            || !CryptographicOperations.FixedTimeEquals(System.Text.Encoding.UTF8.GetBytes(client.Secret), System.Text.Encoding.UTF8.GetBytes(form["client_secret"].ToString())))
        {
            return Results.Json(new { error = "invalid_client" }, statusCode: 401);
        }

        var audience = form["resource"].Count > 0 ? form["resource"].ToString() : client.Audience;
        switch (form["grant_type"].ToString())
        {
            case "client_credentials":
                var issued = Mint(clientId, audience, client.Lifetime);
                if (_agents.Contains(clientId))
                {
                    _agentTokens[issued] = true;
                }

                return Results.Json(new { access_token = issued, token_type = "Bearer", expires_in = (int)client.Lifetime.TotalSeconds });
            case "urn:ietf:params:oauth:grant-type:token-exchange":
                // RFC 8693 on-behalf-of: the user's token must be one this provider signed; the
                // issued token names the user as subject and the acting party in `act`.
                var subject = await OwnTokenAsync(form["subject_token"].ToString());
                var actor = form["actor_token"].Count > 0 ? await OwnTokenAsync(form["actor_token"].ToString()) : null;
                if (!subject.IsValid || actor is { IsValid: false })
                {
                    return Results.Json(new { error = "invalid_grant" }, statusCode: 400);
                }

                var token = Mint((string)subject.Claims["sub"], audience, client.Lifetime, clientId, actor: actor is null ? clientId : (string)actor.Claims["sub"]);
                return Results.Json(new { access_token = token, issued_token_type = "urn:ietf:params:oauth:token-type:access_token", token_type = "Bearer", expires_in = (int)client.Lifetime.TotalSeconds });
            default:
                return Results.Json(new { error = "unsupported_grant_type" }, statusCode: 400);
        }
    }

    private Task<TokenValidationResult> OwnTokenAsync(string token) =>
        new JsonWebTokenHandler().ValidateTokenAsync(token, new TokenValidationParameters { ValidIssuer = Url, ValidateAudience = false, IssuerSigningKey = _key });

    private string Jwks()
    {
        var parameters = _key.ECDsa.ExportParameters(false);
        return System.Text.Json.JsonSerializer.Serialize(new
        {
            keys = new[]
            {
                new { kty = "EC", crv = "P-256", kid = _key.KeyId, use = "sig", alg = "ES256", x = Base64UrlEncoder.Encode(parameters.Q.X!), y = Base64UrlEncoder.Encode(parameters.Q.Y!) },
            },
        });
    }
}

/// <summary>
/// The sandbox's upstreams, each insisting on its own credential: an LLM endpoint (an API key), an
/// enterprise API (an OAuth token for it), an HTTP-fronted database (a managed-identity token) and
/// an MCP tool server (an MCP token bound to it, RFC 9728 metadata, real ModelContextProtocol).
/// Each answer says what credential arrived — kind only — and whether anything the agent holds
/// got through.
/// </summary>
internal sealed class DemoUpstreams(DemoIdentityProvider idp, string llmKey) : IAsyncDisposable
{
    private WebApplication? _api;
    private WebApplication? _mcp;

    public string ApiUrl { get; private set; } = "";

    public string McpUrl { get; private set; } = "";

    public List<string> ToolCalls { get; } = [];

    /// <summary>Starts the API and the MCP server on the given ports (0: any free port).</summary>
    public async Task StartAsync(SandboxListener listener, int apiPort = 0, int mcpPort = 0)
    {
        var api = WebApplication.CreateSlimBuilder();
        listener.Configure(api, apiPort);
        api.Logging.ClearProviders();
        _api = api.Build();
        // Each endpoint reads what it is sent before it answers, as a real one does. Over HTTP/2 (TLS),
        // answering first races the proxy's upload of the body and can fail the exchange (dotnet/yarp#1501).
        _api.Use(async (context, next) =>
        {
            await context.Request.Body.CopyToAsync(Stream.Null, context.RequestAborted);
            await next(context);
        });
        _api.MapPost("/llm/v1/chat/completions", (HttpContext c) => Answer(c, c.Request.Headers.Authorization == "Bearer " + llmKey, "api key", new { model = "sandbox-small", choices = new[] { new { message = new { role = "assistant", content = "Here is a draft reply to the ticket." } } } }));
        _api.MapGet("/crm/accounts/{id}", async (HttpContext c, string id) => Answer(c, await ValidAsync(c, "crm-api"), "OAuth token for crm-api", new { id, name = "Ada Lovelace", plan = "premium" }));
        _api.MapPost("/db/query", async (HttpContext c) => Answer(c, await ValidAsync(c, "https://database.sandbox/"), "managed-identity token", new { rows = 3 }));
        _api.MapPost("/email/send", (HttpContext c) => Answer(c, true, "none needed", new { sent = true }));
        await _api.StartAsync();
        ApiUrl = listener.BaseUrl(_api);

        // The MCP server names its own URL in its resource metadata, so the port is fixed first.
        var port = mcpPort == 0 ? FreePort() : mcpPort;
        McpUrl = listener.BaseUrl(port);
        var resource = McpUrl + "mcp";
        var mcp = WebApplication.CreateSlimBuilder();
        listener.Configure(mcp, port);
        mcp.Logging.ClearProviders();
        mcp.Services.AddAuthentication(o =>
            {
                o.DefaultAuthenticateScheme = JwtBearerDefaults.AuthenticationScheme;
                o.DefaultChallengeScheme = McpAuthenticationDefaults.AuthenticationScheme;
            })
            .AddJwtBearer(o =>
            {
                o.MapInboundClaims = false;
                o.TokenValidationParameters = new TokenValidationParameters { ValidIssuer = idp.Url, ValidAudience = resource, IssuerSigningKey = idp.PublicKey };
            })
            .AddMcp(o => o.ResourceMetadata = new ProtectedResourceMetadata { Resource = resource, AuthorizationServers = { idp.Url } });
        mcp.Services.AddAuthorization();
        mcp.Services.AddMcpServer().WithHttpTransport().WithTools(
        [
            McpServerTool.Create((string id) => Record($"lookup_customer({id})", $"customer {id}: Ada Lovelace, premium"), new McpServerToolCreateOptions { Name = "lookup_customer" }),
            McpServerTool.Create((string id) => Record($"delete_customer({id})", $"customer {id} deleted"), new McpServerToolCreateOptions { Name = "delete_customer" }),
        ]);
        _mcp = mcp.Build();
        _mcp.Use(async (context, next) =>
        {
            // An agent's own token must never arrive: say so loudly, and serve nothing.
            if (context.Request.Headers.Any(h => h.Value.Any(v => v is not null && idp.ContainsAgentToken(v))))
            {
                Record("AGENT TOKEN ARRIVED", "");
                context.Response.Headers["X-Sandbox-Agent-Token-Seen"] = "yes";
                context.Response.StatusCode = StatusCodes.Status403Forbidden;
                return;
            }

            await next(context);
        });
        _mcp.UseAuthentication();
        _mcp.UseAuthorization();
        _mcp.MapMcp("/mcp").RequireAuthorization();
        await _mcp.StartAsync();
    }

    public async ValueTask DisposeAsync()
    {
        if (_api is not null)
        {
            await _api.DisposeAsync();
        }

        if (_mcp is not null)
        {
            await _mcp.DisposeAsync();
        }
    }

    private string Record(string call, string result)
    {
        lock (ToolCalls)
        {
            ToolCalls.Add(call);
        }

        return result;
    }

    private IResult Answer(HttpContext context, bool credentialOk, string expected, object body)
    {
        var agentTokenSeen = context.Request.Headers.Any(h => h.Value.Any(v => v is not null && idp.ContainsAgentToken(v)));
        context.Response.Headers["X-Sandbox-Credential"] = credentialOk ? expected + ": ok" : expected + ": MISSING";
        context.Response.Headers["X-Sandbox-Agent-Token-Seen"] = agentTokenSeen ? "yes" : "no";
        return credentialOk && !agentTokenSeen ? Results.Json(body) : Results.Json(new { error = "wrong credential" }, statusCode: 401);
    }

    private async Task<bool> ValidAsync(HttpContext context, string audience)
    {
        var header = context.Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.Ordinal))
        {
            return false;
        }

        var result = await new JsonWebTokenHandler().ValidateTokenAsync(header[7..], new TokenValidationParameters
        {
            ValidIssuer = idp.Url,
            ValidAudience = audience,
            IssuerSigningKey = idp.PublicKey,
        });
        return result.IsValid;
    }

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }
}
