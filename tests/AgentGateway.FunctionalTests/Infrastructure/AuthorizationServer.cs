using System.Collections.Concurrent;
using System.Security.Claims;
using Microsoft.AspNetCore;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace AgentGateway.FunctionalTests.Infrastructure;

/// <summary>
/// A real OAuth 2.1 authorization server (OpenIddict) on loopback Kestrel. It issues the agents'
/// own access tokens and the hop's client-credentials tokens, publishes discovery and JWKS, and
/// counts token requests so tests can prove what the broker's cache saved.
/// </summary>
public sealed class AuthorizationServer : IAsyncDisposable
{
    public const string GatewayAudience = "agentgateway";
    public const string CrmAudience = "crm-api";
    public const string OtherAudience = "other-api";

    /// <summary>Scope → the audience (resource) the token is for.</summary>
    private static readonly Dictionary<string, string> ScopeAudiences = new()
    {
        ["gateway"] = GatewayAudience,
        ["crm.read"] = CrmAudience,
        ["other"] = OtherAudience,
    };

    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, int> _tokenRequests = new();
    private readonly ConcurrentDictionary<string, TimeSpan> _lifetimes = new();
    private readonly ConcurrentDictionary<string, int> _exchanges = new();
    private readonly ConcurrentDictionary<string, OpenIddictRequest> _lastClientCredentials = new();
    private int _totalTokenRequests;

    private AuthorizationServer(WebApplication app) => _app = app;

    /// <summary>The issuer, exactly as it appears in <c>iss</c> (with a trailing slash).</summary>
    public string Issuer { get; private set; } = "";

    public string TokenEndpoint => Issuer + "connect/token";

    public int TotalTokenRequests => Volatile.Read(ref _totalTokenRequests);

    public int TokenRequestsFor(string clientId) => _tokenRequests.GetValueOrDefault(clientId);

    /// <summary>Tokens issued to <paramref name="clientId"/> from now on live <paramref name="lifetime"/>
    /// instead of the server's default hour.</summary>
    public void SetTokenLifetime(string clientId, TimeSpan lifetime) => _lifetimes[clientId] = lifetime;

    /// <summary>Back to the default lifetime for every client.</summary>
    public void ResetTokenLifetimes() => _lifetimes.Clear();

    /// <summary>The users who can sign in, by name, with their passwords.</summary>
    public static readonly IReadOnlyDictionary<string, string> Users = new Dictionary<string, string>
    {
        ["alice"] = "alice-password",
        ["bob"] = "bob-password",
    };

    /// <summary>Counts of token-exchange requests, by the exchanging client.</summary>
    public int ExchangesFor(string clientId) => _exchanges.GetValueOrDefault(clientId);

    /// <summary>The form of the most recent token-exchange request, minus the tokens and secrets.</summary>
    public IReadOnlyDictionary<string, string> LastExchangeParameters { get; private set; } = new Dictionary<string, string>();

    /// <summary>The last client-credentials request <paramref name="clientId"/> made, after OpenIddict authenticated it.</summary>
    public OpenIddictRequest? LastClientCredentialsRequest(string clientId) => _lastClientCredentials.GetValueOrDefault(clientId);

    /// <summary>Registers a client that authenticates with <c>private_key_jwt</c>: the server knows
    /// only its public key, and no secret.</summary>
    public async Task RegisterKeyClientAsync(string clientId, SecurityKey publicKey, params string[] scopes)
    {
        var keys = new JsonWebKeySet();
        keys.Keys.Add(JsonWebKeyConverter.ConvertFromSecurityKey(publicKey));
        var descriptor = new OpenIddictApplicationDescriptor
        {
            ClientId = clientId,
            ClientType = ClientTypes.Confidential,
            JsonWebKeySet = keys,
            Permissions = { Permissions.Endpoints.Token, Permissions.GrantTypes.ClientCredentials },
        };
        foreach (var s in scopes)
        {
            descriptor.Permissions.Add(Permissions.Prefixes.Scope + s);
        }

        await using var scope = _app.Services.CreateAsyncScope();
        await scope.ServiceProvider.GetRequiredService<IOpenIddictApplicationManager>().CreateAsync(descriptor);
    }

    /// <summary>Registers a confidential client with a secret, after start, allowed to ask for
    /// <paramref name="resources"/> (RFC 8707).</summary>
    public async Task RegisterClientAsync(string clientId, string secret, IReadOnlyList<string> resources, params string[] scopes)
    {
        var descriptor = new OpenIddictApplicationDescriptor
        {
            ClientId = clientId,
            ClientSecret = secret,
            ClientType = ClientTypes.Confidential,
            Permissions = { Permissions.Endpoints.Token, Permissions.GrantTypes.ClientCredentials },
        };
        foreach (var resource in resources)
        {
            descriptor.Permissions.Add(Permissions.Prefixes.Resource + resource);
        }

        foreach (var allowed in scopes)
        {
            descriptor.Permissions.Add(Permissions.Prefixes.Scope + allowed);
        }

        await using var scope = _app.Services.CreateAsyncScope();
        await scope.ServiceProvider.GetRequiredService<IOpenIddictApplicationManager>().CreateAsync(descriptor);
    }

    /// <param name="resources">RFC 8707 resources clients may ask for (OpenIddict validates them).</param>
    /// <param name="clients">The confidential clients, with their scopes.</param>
    public static async Task<AuthorizationServer> StartAsync(IReadOnlyList<string> resources, params (string ClientId, string Secret, string[] Scopes)[] clients)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var database = Guid.NewGuid().ToString();
        builder.Services.AddDbContext<AuthDbContext>(o => o.UseInMemoryDatabase(database).UseOpenIddict());
        builder.Services.AddOpenIddict()
            .AddCore(o => o.UseEntityFrameworkCore().UseDbContext<AuthDbContext>())
            .AddServer(o =>
            {
                o.SetTokenEndpointUris("connect/token");
                o.AllowClientCredentialsFlow();
                // Users sign in (password grant: the shortest real way to get a user's token
                // issued to an agent's client in a test); the gateway exchanges those tokens.
                o.AllowPasswordFlow();
                o.AllowTokenExchangeFlow();
                o.AddEphemeralEncryptionKey().AddEphemeralSigningKey();
                // Agents' and hops' access tokens are signed JWTs (RFC 9068), not encrypted.
                o.DisableAccessTokenEncryption();
                o.RegisterScopes([.. ScopeAudiences.Keys]);
                o.RegisterResources([.. resources]);
                o.UseAspNetCore().EnableTokenEndpointPassthrough().DisableTransportSecurityRequirement();
            });

        var app = builder.Build();
        var server = new AuthorizationServer(app);
        app.Use(async (context, next) =>
        {
            if (context.Request.Path == "/connect/token")
            {
                Interlocked.Increment(ref server._totalTokenRequests);
            }

            await next(context);
        });
        app.MapPost("/connect/token", (Delegate)server.IssueAsync);
        await app.StartAsync();
        server.Issuer = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First().TrimEnd('/') + "/";

        await using var scope = app.Services.CreateAsyncScope();
        var applications = scope.ServiceProvider.GetRequiredService<IOpenIddictApplicationManager>();
        foreach (var (clientId, secret, scopes) in clients)
        {
            var descriptor = new OpenIddictApplicationDescriptor
            {
                ClientId = clientId,
                ClientSecret = secret,
                ClientType = ClientTypes.Confidential,
                Permissions =
                {
                    Permissions.Endpoints.Token,
                    Permissions.GrantTypes.ClientCredentials,
                    Permissions.GrantTypes.Password,
                    Permissions.GrantTypes.TokenExchange,
                },
            };
            foreach (var s in scopes)
            {
                descriptor.Permissions.Add(Permissions.Prefixes.Scope + s);
            }

            await applications.CreateAsync(descriptor);
        }

        return server;
    }

    /// <summary>Mints a token with the server's real signing key but claims of the test's choosing
    /// (e.g. already expired), to test what the server itself would never issue.</summary>
    public string Mint(string subject, string audience, DateTime notBefore, DateTime expires, DateTime? issuedAt = null, string type = "at+jwt", IDictionary<string, object>? claims = null)
    {
        var credentials = _app.Services.GetRequiredService<IOptionsMonitor<OpenIddictServerOptions>>().CurrentValue.SigningCredentials.First();
        var payload = new Dictionary<string, object>(claims ?? new Dictionary<string, object>()) { ["sub"] = subject };
        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = Issuer,
            Audience = audience,
            Claims = payload,
            NotBefore = notBefore,
            Expires = expires,
            IssuedAt = issuedAt ?? notBefore,
            SigningCredentials = credentials,
            TokenType = type,
        });
    }

    /// <summary>The server's signing keys, to check a token the upstream received.</summary>
    public IReadOnlyList<SecurityKey> SigningKeys =>
        [.. _app.Services.GetRequiredService<IOptionsMonitor<OpenIddictServerOptions>>().CurrentValue.SigningCredentials.Select(c => c.Key)];

    public async Task<string> GetTokenAsync(string clientId, string secret, string scope)
    {
        using var http = new HttpClient();
        var response = await http.PostAsync(TokenEndpoint, new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["client_id"] = clientId,
            ["client_secret"] = secret,
            ["scope"] = scope,
        }));
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"token request failed: {body}");
        return System.Text.Json.JsonDocument.Parse(body).RootElement.GetProperty("access_token").GetString()!;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    /// <summary>A user's access token, issued to <paramref name="clientId"/> (the agent) through the password grant.</summary>
    public async Task<string> GetUserTokenAsync(string user, string clientId, string clientSecret, string scope = "gateway")
    {
        using var http = new HttpClient();
        var response = await http.PostAsync(TokenEndpoint, new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "password",
            ["username"] = user,
            ["password"] = Users[user],
            ["client_id"] = clientId,
            ["client_secret"] = clientSecret,
            ["scope"] = scope,
        }));
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"user token request failed: {body}");
        return System.Text.Json.JsonDocument.Parse(body).RootElement.GetProperty("access_token").GetString()!;
    }

    private async Task<IResult> IssueAsync(HttpContext context)
    {
        var request = context.GetOpenIddictServerRequest()!;
        if (request.IsPasswordGrantType())
        {
            return SignInUser(request);
        }

        if (request.IsTokenExchangeGrantType())
        {
            return await ExchangeAsync(context, request);
        }

        if (!request.IsClientCredentialsGrantType())
        {
            return Results.BadRequest();
        }

        _tokenRequests.AddOrUpdate(request.ClientId!, 1, static (_, n) => n + 1);
        _lastClientCredentials[request.ClientId!] = request;
        var identity = new ClaimsIdentity(TokenValidationParameters.DefaultAuthenticationType, Claims.Name, Claims.Role);
        identity.SetClaim(Claims.Subject, request.ClientId);
        var scopes = request.GetScopes();
        identity.SetScopes(scopes);
        // RFC 8707: a requested resource becomes the token's audience, beside the scopes' own.
        identity.SetResources(scopes.Where(ScopeAudiences.ContainsKey).Select(s => ScopeAudiences[s]).Concat(request.GetResources()));
        identity.SetDestinations(static _ => [Destinations.AccessToken]);
        var principal = new ClaimsPrincipal(identity);
        if (_lifetimes.TryGetValue(request.ClientId!, out var lifetime))
        {
            principal.SetAccessTokenLifetime(lifetime);
        }

        return Results.SignIn(principal, properties: null, OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
    }

    private static IResult SignInUser(OpenIddictRequest request)
    {
        if (!Users.TryGetValue(request.Username ?? "", out var password) || password != request.Password)
        {
            return Results.Forbid(
                new Microsoft.AspNetCore.Authentication.AuthenticationProperties(new Dictionary<string, string?>
                {
                    [OpenIddictServerAspNetCoreConstants.Properties.Error] = Errors.InvalidGrant,
                }),
                [OpenIddictServerAspNetCoreDefaults.AuthenticationScheme]);
        }

        var identity = new ClaimsIdentity(TokenValidationParameters.DefaultAuthenticationType, Claims.Name, Claims.Role);
        identity.SetClaim(Claims.Subject, request.Username);
        var scopes = request.GetScopes();
        identity.SetScopes(scopes);
        identity.SetResources(scopes.Where(ScopeAudiences.ContainsKey).Select(s => ScopeAudiences[s]));
        identity.SetDestinations(static _ => [Destinations.AccessToken]);
        return Results.SignIn(new ClaimsPrincipal(identity), properties: null, OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
    }

    /// <summary>RFC 8693: OpenIddict has validated the subject and actor tokens; the issued token
    /// names the user as subject and the actor in <c>act</c>.</summary>
    private async Task<IResult> ExchangeAsync(HttpContext context, OpenIddictRequest request)
    {
        _exchanges.AddOrUpdate(request.ClientId!, 1, static (_, n) => n + 1);
        LastExchangeParameters = request.GetParameters()
            .Where(p => p.Key is not (Parameters.SubjectToken or Parameters.ActorToken or Parameters.ClientSecret))
            .ToDictionary(p => p.Key, p => p.Value.ToString() ?? "");
        var result = await context.AuthenticateAsync(OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
        var actor = result.Properties?.GetParameter<ClaimsPrincipal>(OpenIddictServerAspNetCoreConstants.Properties.ActorTokenPrincipal);
        var identity = new ClaimsIdentity(TokenValidationParameters.DefaultAuthenticationType, Claims.Name, Claims.Role);
        identity.SetClaim(Claims.Subject, result.Principal!.GetClaim(Claims.Subject));
        if (actor?.GetClaim(Claims.Subject) is { } actorSubject)
        {
            // RFC 8693 §4.1 names the claim "act" (OpenIddict's Claims.Actor constant is "actor").
            identity.SetClaim("act", new System.Text.Json.Nodes.JsonObject { [Claims.Subject] = actorSubject });
        }

        var scopes = request.GetScopes();
        identity.SetScopes(scopes);
        identity.SetResources(scopes.Where(ScopeAudiences.ContainsKey).Select(s => ScopeAudiences[s]));
        identity.SetDestinations(static _ => [Destinations.AccessToken]);
        return Results.SignIn(new ClaimsPrincipal(identity), properties: null, OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
    }

    private sealed class AuthDbContext(DbContextOptions<AuthDbContext> options) : DbContext(options);
}
