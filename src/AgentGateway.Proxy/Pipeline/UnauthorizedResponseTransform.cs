using AgentGateway.Credentials;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Transforms;

namespace AgentGateway.Proxy.Pipeline;

/// <summary>
/// An upstream that answers 401 to a credential served from cache has stopped accepting it
/// (revoked, rotated, clock skew at the issuer). The credential is dropped from every cache level
/// so no request is sent with it again. When the request can be replayed safely — a safe method
/// and no body — its 401 is not passed on: the gateway sends it once more with a fresh credential
/// (see <see cref="GatewayMiddleware"/>). A credential fetched for this very request is not
/// retried: a fresh token refused at once points at configuration, and a loop would not help.
/// </summary>
internal sealed partial class UnauthorizedResponseTransform(ILogger<UnauthorizedResponseTransform> logger) : ResponseTransform
{
    public override async ValueTask ApplyAsync(ResponseTransformContext context)
    {
        if (context.ProxyResponse?.StatusCode != System.Net.HttpStatusCode.Unauthorized
            || context.HttpContext.Features.Get<GatewayRequestFeature>() is not { Injected: { } used } feature
            || feature.Route.Credential is not { } source
            || used.Source is not (CredentialSource.LocalCache or CredentialSource.SharedCache))
        {
            return;
        }

        if (!await source.InvalidateAsync(feature.CredentialRequest, used, context.CancellationToken))
        {
            // Dropped for a refusal moments ago and still the token served: a replay would send the
            // same one, so the 401 goes to the agent as it is (see TokenCache.RefusalDropInterval).
            return;
        }

        var replayable = !feature.Retried && IsReplayable(context.HttpContext.Request);
        Log.CachedCredentialRefused(logger, used.CredentialName, used.Fingerprint, feature.Route.RouteId, replayable);
        if (replayable)
        {
            feature.RetryWithFreshCredential = true;
            context.SuppressResponseBody = true;
        }
    }

    /// <summary>Safe methods without a body: sending them twice changes nothing upstream, and
    /// there is no body stream that the first attempt already consumed.</summary>
    private static bool IsReplayable(HttpRequest request) =>
        (HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method) || HttpMethods.IsOptions(request.Method))
        && request.ContentLength is null or 0
        && !request.Headers.ContainsKey("Transfer-Encoding");

    private static partial class Log
    {
        [LoggerMessage(EventId = 2102, Level = LogLevel.Warning, Message = "The upstream of route {RouteId} refused cached credential {CredentialName} ({CredentialFingerprint}); dropped from cache, retrying: {Retrying}")]
        public static partial void CachedCredentialRefused(ILogger logger, string credentialName, string credentialFingerprint, string routeId, bool retrying);
    }
}
