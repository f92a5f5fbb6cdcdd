using AgentGateway.Proxy.Configuration;
using AgentGateway.Proxy.Problems;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace AgentGateway.Proxy.Identity;

/// <summary>The agent as proven on this request.</summary>
public sealed record AuthenticatedAgent(Agent Agent, TrustedIssuer Issuer, string Subject);

/// <summary>An authentication result: the agent, or why not.</summary>
public readonly record struct AuthenticationOutcome(AuthenticatedAgent? Agent, Refusal Refusal)
{
    public static AuthenticationOutcome Success(AuthenticatedAgent agent) => new(agent, default);

    public static AuthenticationOutcome Fail(Refusal refusal) => new(null, refusal);
}

/// <summary>
/// Proves which inventory agent sent a request, from the agent's own OAuth 2.1 access token.
/// Validation is the identity library's (<see cref="JsonWebTokenHandler"/>, the same one the
/// ASP.NET Core JwtBearer handler uses); this class chooses the issuer by the token's exact
/// <c>iss</c>, applies the stricter rules the threat model asks for, and maps the verified
/// claim to the inventory.
/// </summary>
public sealed partial class AgentAuthenticator(TimeProvider time, ILogger<AgentAuthenticator> logger)
{
    private const string BearerPrefix = "Bearer ";

    private readonly JsonWebTokenHandler _handler = new()
    {
        // Claim names as issued: the agent claim is looked up by its real name.
        MapInboundClaims = false,
    };

    public async ValueTask<AuthenticationOutcome> AuthenticateAsync(HttpRequest request, GatewayRevision revision, CancellationToken cancellationToken)
    {
        var authorization = request.Headers.Authorization;
        if (authorization.Count == 0)
        {
            return Fail(Refusal.Unauthenticated("no access token; send 'Authorization: Bearer <token>'"));
        }

        if (authorization.Count > 1)
        {
            // Two values would be merged into one line on the way out; refuse rather than guess which counts.
            return Fail(Refusal.BadRequest("more than one Authorization header"));
        }

        var value = authorization[0];
        if (string.IsNullOrEmpty(value) || value.Length > revision.Inbound.MaxTokenBytes)
        {
            return Fail(Refusal.Unauthenticated("the Authorization header is empty or too large"));
        }

        if (!value.StartsWith(BearerPrefix, StringComparison.OrdinalIgnoreCase))
        {
            return Fail(Refusal.Unauthenticated("only the Bearer scheme is accepted"));
        }

        var token = value[BearerPrefix.Length..];
        if (!_handler.CanReadToken(token))
        {
            return Fail(Refusal.Unauthenticated("the access token is not a well-formed JWT"));
        }

        JsonWebToken jwt;
        try
        {
            jwt = _handler.ReadJsonWebToken(token);
        }
        catch (Exception ex) when (ex is ArgumentException or SecurityTokenException)
        {
            return Fail(Refusal.Unauthenticated("the access token is not a well-formed JWT"));
        }

        if (jwt.IsEncrypted || !revision.Inbound.TryGetIssuer(jwt.Issuer, out var issuer))
        {
            return Fail(Refusal.Unauthenticated("the token's issuer is not trusted"));
        }

        TokenValidationResult result;
        try
        {
            var parameters = await issuer!.GetParametersAsync(cancellationToken);
            result = await _handler.ValidateTokenAsync(jwt, parameters);
            if (!result.IsValid && result.Exception is SecurityTokenSignatureKeyNotFoundException)
            {
                // Perhaps the issuer rotated its keys. The refresh is throttled by the key source,
                // so a flood of made-up kids costs at most one fetch per interval.
                issuer.RequestKeyRefresh();
                var refreshed = await issuer.GetParametersAsync(cancellationToken);
                if (!ReferenceEquals(refreshed, parameters))
                {
                    result = await _handler.ValidateTokenAsync(jwt, refreshed);
                }
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            Log.IssuerKeysUnavailable(logger, issuer!.Name, ex.GetType().Name);
            return Fail(Refusal.IdentityUnavailable($"the keys of issuer '{issuer.Name}' could not be obtained"));
        }

        if (!result.IsValid)
        {
            return Fail(Refusal.Unauthenticated(Explain(result.Exception)));
        }

        var now = time.GetUtcNow();
        // The library does not look at iat; a token "issued" in the future was minted by a
        // skewed or hostile clock.
        if (jwt.TryGetPayloadValue<long>(JwtRegisteredClaimNames.Iat, out var iat) &&
            DateTimeOffset.FromUnixTimeSeconds(iat) > now + issuer.ClockSkew)
        {
            return Fail(Refusal.Unauthenticated("the token's iat lies in the future"));
        }

        if (!jwt.TryGetPayloadValue<string>(issuer.AgentClaim, out var subject) || string.IsNullOrEmpty(subject))
        {
            return Fail(Refusal.AgentUnknown($"the token has no '{issuer.AgentClaim}' claim naming the agent"));
        }

        if (!revision.Agents.TryFind(new AgentIdentityKey(issuer.Name, subject), out var agent))
        {
            return Fail(Refusal.AgentUnknown("no agent of the inventory has this identity"));
        }

        if (agent!.ExpiresAt is { } expiresAt && expiresAt <= now)
        {
            return Fail(Refusal.AgentExpired($"agent '{agent.Id}' expired at {expiresAt:O}"));
        }

        return AuthenticationOutcome.Success(new AuthenticatedAgent(agent, issuer, subject));
    }

    private static AuthenticationOutcome Fail(Refusal refusal) => AuthenticationOutcome.Fail(refusal);

    /// <summary>A short, safe explanation: the class of failure, never the token's content.</summary>
    private static string Explain(Exception? exception) => exception switch
    {
        SecurityTokenExpiredException => "the access token has expired",
        SecurityTokenNotYetValidException => "the access token is not valid yet",
        SecurityTokenNoExpirationException => "the access token has no expiry",
        SecurityTokenInvalidAudienceException => "the access token is not for this gateway (audience)",
        SecurityTokenInvalidIssuerException => "the token's issuer is not trusted",
        SecurityTokenInvalidTypeException => "the token is not an access token (typ)",
        SecurityTokenInvalidAlgorithmException => "the token's signature algorithm is not allowed",
        SecurityTokenSignatureKeyNotFoundException => "the token is signed with a key the issuer does not publish",
        SecurityTokenInvalidSignatureException => "the token's signature is invalid",
        _ => "the access token is invalid",
    };

    private static partial class Log
    {
        [LoggerMessage(EventId = 1201, Level = LogLevel.Warning, Message = "The keys of issuer {IssuerName} could not be obtained: {ErrorType}")]
        public static partial void IssuerKeysUnavailable(ILogger logger, string issuerName, string errorType);
    }
}
