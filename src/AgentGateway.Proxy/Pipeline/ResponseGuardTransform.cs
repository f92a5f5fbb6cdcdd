using System.Collections.Frozen;
using AgentGateway.Credentials;
using AgentGateway.Proxy.Policy;
using AgentGateway.Proxy.Problems;
using AgentGateway.Proxy.Stripping;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Transforms;

namespace AgentGateway.Proxy.Pipeline;

/// <summary>
/// What comes back from the upstream before it reaches the agent — every part of it that carries
/// text: the status line, the headers, the body, the trailers (<see cref="ResponseTrailerGuardTransform"/>).
/// <list type="bullet">
/// <item>headers the upstream's <c>Connection</c> header nominated as hop-by-hop, and
/// the upstream's authentication challenges (<c>WWW-Authenticate</c>, <c>Proxy-Authenticate</c>,
/// <c>Authentication-Info</c>, <c>Proxy-Authentication-Info</c>: about the gateway's hop, not the
/// agent's), are dropped;</item>
/// <item>a place the answer tells the agent's client to go (<c>Location</c>, <c>Content-Location</c>,
/// <c>Refresh</c>) must be on the gateway or is mapped back onto it (<see cref="UpstreamReferences"/>):
/// a redirect elsewhere is refused with 502, any other such field dropped;</item>
/// <item>a content coding is decoded here, before anything reads the body, or the answer is refused
/// with 502 when it is not one the gateway can decode (<see cref="ContentCodings"/>): the agent
/// never gets bytes the guard could not read;</item>
/// <item>a gateway secret — the credential injected for this request, or any configured one — echoed
/// in any of the forms of <see cref="SecretForms"/> in a header's name or value drops that header,
/// in the reason phrase drops the phrase (HTTP/1.1 sends the standard one), and in the body is
/// overwritten with asterisks (debug endpoints, error pages quoting the request, misbehaving
/// upstreams). Informational answers (103 Early Hints) never reach the agent: the gateway's
/// HTTP client reads past them.</item>
/// </list>
/// One per route and revision, searching for that revision's configured secrets.
/// </summary>
internal sealed partial class ResponseGuardTransform(RoutePlan plan, SecretIndex secrets, ILogger<ResponseGuardTransform> logger) : ResponseTransform
{
    /// <summary>Logged in place of a field name that is itself the secret.</summary>
    internal const string NameWithSecret = "(a name holding the secret)";

    /// <summary>An upstream's authentication challenges and their follow-ups (RFC 9110 §11.6).</summary>
    private static readonly string[] Challenges = ["WWW-Authenticate", "Authentication-Info", "Proxy-Authenticate", "Proxy-Authentication-Info"];

    /// <summary>Made once for the route, not per response.</summary>
    private Action? _echoedInBody;

    public override async ValueTask ApplyAsync(ResponseTransformContext context)
    {
        var response = context.HttpContext.Response;
        // Read without the typed Connection property, which allocates its collection (and the
        // general headers' store) on every answer to find that nearly none carries the header.
        if (context.ProxyResponse is { } proxied && proxied.Headers.NonValidated.TryGetValues("Connection", out var connection))
        {
            foreach (var nominated in UntrustedHeaders.NominatedHopByHop(string.Join(", ", connection)))
            {
                response.Headers.Remove(nominated);
            }
        }

        // Challenges are about the hop, whose credential is the gateway's: the agent authenticates
        // to the gateway only, and an upstream's challenge would point its client's discovery
        // (RFC 9728 resource_metadata, an authorization server) wherever the upstream chose.
        foreach (var challenge in Challenges)
        {
            response.Headers.Remove(challenge);
        }

        if (context.HttpContext.Features.Get<GatewayRequestFeature>() is not { } feature)
        {
            return;
        }

        var routeId = feature.Route.RouteId;
        if (await SteersAwayAsync(context, routeId))
        {
            return;
        }

        // How many bytes of body the agent will get, when that is known before they come.
        long? bodyLength = context.ProxyResponse is { } bodiless && !HasBody(context.HttpContext.Request, bodiless) ? 0 : null;
        if (context.ProxyResponse is { } upstream && bodyLength is null)
        {
            var (codings, undecodable) = ContentCodings.Of(upstream);
            if (codings is null)
            {
                Log.UndecodableCoding(logger, routeId, undecodable!);
                context.SuppressResponseBody = true;
                await ProblemResponse.WriteAsync(context.HttpContext, Refusal.UpstreamUnavailable(
                    $"the upstream of route '{routeId}' answered in coding '{undecodable}', which the gateway cannot read, so it was not passed on"));
                return;
            }

            if (codings.Count > 0)
            {
                upstream.Content = ContentCodings.Decoded(upstream.Content, codings);
                response.Headers.Remove("Content-Encoding");
                ResponseBody.Rewritten(context.HttpContext);
            }
            else
            {
                // The HTTP client reads no more than a Content-Length says, and Kestrel writes no more.
                bodyLength = upstream.Content.Headers.ContentLength;
            }
        }

        var configured = plan.Secrets.Forms;
        var injected = InjectedForms(feature.Injected);
        if (configured.IsEmpty && injected.IsEmpty)
        {
            return;
        }

        if (context.HttpContext.Features.Get<IHttpResponseFeature>() is { ReasonPhrase: { } reason } status
            && (configured.IsIn(reason) || injected.IsIn(reason)))
        {
            status.ReasonPhrase = null;
            Log.EchoedInReason(logger, routeId);
        }

        foreach (var (name, inName) in Echoing(response.Headers, configured, injected))
        {
            response.Headers.Remove(name);
            Log.EchoedInHeader(logger, routeId, inName ? NameWithSecret : PolicyEngine.Printable(name));
        }

        if (bodyLength is { } length && length < Math.Min(configured.Shortest, injected.Shortest) && plan.Route.Inspect != Inspection.BodyKind.Mcp)
        {
            // Too short to hold even the shortest form of any secret ("ok", an empty 201, a 204):
            // nothing to search, so no masking stream. Not on MCP routes, whose answer guard
            // writes a body of its own after this.
            return;
        }

        if (feature.Masking is null)
        {
            response.Body = feature.Masking = new SecretMaskingStream(response.Body, configured, injected, _echoedInBody ??= () => Log.EchoedInBody(logger, plan.Route.RouteId));
        }
    }

    /// <summary>The forms of the token <paramref name="injected"/> carries, beyond those of the
    /// route's configured secrets; none when the token is one of them (an API key), whose forms
    /// are searched for already — searching them twice would double the search of every answer.
    /// The injection remembered the value (<see cref="SecretIndex.Remember"/>), so its forms are
    /// found there by the value's identity, not by hashing the token.</summary>
    internal SecretForms InjectedForms(HopCredential? injected) =>
        injected is null ? SecretForms.None : secrets.InjectedForms(injected.HeaderValue, plan.Secrets);

    /// <summary>The fields of <paramref name="fields"/> whose name or a value holds a gateway secret
    /// in any form: one of <paramref name="configured"/> or <paramref name="injected"/>, or a hop
    /// token injected lately on another request.</summary>
    internal IReadOnlyList<(string Name, bool InName)> Echoing(IHeaderDictionary fields, SecretForms configured, SecretForms injected)
    {
        List<(string, bool)>? echoed = null;
        foreach (var field in fields)
        {
            if (Echoes(field.Key))
            {
                (echoed ??= []).Add((field.Key, true));
                continue;
            }

            foreach (var value in field.Value)
            {
                if (value is not null && Echoes(value))
                {
                    (echoed ??= []).Add((field.Key, false));
                    break;
                }
            }
        }

        // Nearly always none: no list at all for the answer.
        return echoed ?? (IReadOnlyList<(string, bool)>)Array.Empty<(string, bool)>();

        bool Echoes(string text) => configured.IsIn(text) || injected.IsIn(text) || secrets.Contains(plan.Secrets, text);
    }

    /// <summary>
    /// The places the answer tells the agent's client to go (<see cref="UpstreamReferences"/>):
    /// each must resolve to the gateway, or be mapped back onto it from the upstream's origin. A
    /// redirect elsewhere is refused with 502 — the client would follow it carrying the agent's
    /// static key, delegation token and (307, 308) body; any other such field is dropped.
    /// </summary>
    private async ValueTask<bool> SteersAwayAsync(ResponseTransformContext context, string routeId)
    {
        var headers = context.HttpContext.Response.Headers;
        UpstreamReferences.Scope? scope = null;
        foreach (var name in UpstreamReferences.Fields)
        {
            if (!headers.TryGetValue(name, out var values))
            {
                continue;
            }

            scope ??= UpstreamReferences.Scope.Of(context.HttpContext.Request, context.ProxyResponse?.RequestMessage?.RequestUri, plan.Revision.Inbound.PublicOrigins);
            // Link is a list: its lines read as one. The others name one place, or none.
            var value = values.Count == 1 ? values[0] ?? "" : name == "Link" ? string.Join(", ", values.ToArray()) : null;
            var kept = value is null ? null
                : name == "Refresh" ? UpstreamReferences.RefreshOnGateway(value, scope)
                : name == "Link" ? UpstreamReferences.LinkOnGateway(value, scope)
                : UpstreamReferences.OnGateway(value, scope);
            if (kept is not null)
            {
                // Several lines were judged as one list: they go as that one line, never split again
                // where a client reading them one by one would meet what the joined reading hid.
                if (values.Count > 1 || !string.Equals(kept, value, StringComparison.Ordinal))
                {
                    headers[name] = kept;
                }

                continue;
            }

            if (name == "Location" && (int?)context.ProxyResponse?.StatusCode is >= 300 and < 400)
            {
                Log.RedirectedAway(logger, routeId, (int)context.ProxyResponse!.StatusCode);
                context.SuppressResponseBody = true;
                await ProblemResponse.WriteAsync(context.HttpContext, Refusal.UpstreamUnavailable(
                    $"the upstream of route '{routeId}' redirected to a place that is not this gateway, so the redirect was not passed on"));
                return true;
            }

            headers.Remove(name);
            Log.ReferenceAwayDropped(logger, routeId, name);
        }

        return false;
    }

    /// <summary>Whether the answer carries a body at all: not to a HEAD, not 1xx, 204 or 304.</summary>
    private static bool HasBody(HttpRequest request, HttpResponseMessage response) =>
        !HttpMethods.IsHead(request.Method) && (int)response.StatusCode is >= 200 and not 204 and not 304;

    private static partial class Log
    {
        [LoggerMessage(EventId = 2110, Level = LogLevel.Warning, Message = "The upstream of route {RouteId} echoed a gateway secret in response header {HeaderName}; the header was dropped")]
        public static partial void EchoedInHeader(ILogger logger, string routeId, string headerName);

        [LoggerMessage(EventId = 2111, Level = LogLevel.Warning, Message = "The upstream of route {RouteId} echoed a gateway secret in the response body; it was masked")]
        public static partial void EchoedInBody(ILogger logger, string routeId);

        [LoggerMessage(EventId = 2112, Level = LogLevel.Warning, Message = "The upstream of route {RouteId} echoed a gateway secret in the status line's reason phrase; the standard phrase was sent")]
        public static partial void EchoedInReason(ILogger logger, string routeId);

        [LoggerMessage(EventId = 2115, Level = LogLevel.Warning, Message = "The upstream of route {RouteId} answered {Status} with a Location that is not on the gateway; answered 502")]
        public static partial void RedirectedAway(ILogger logger, string routeId, int status);

        [LoggerMessage(EventId = 2116, Level = LogLevel.Warning, Message = "The upstream of route {RouteId} sent response header {HeaderName} pointing away from the gateway; the header was dropped")]
        public static partial void ReferenceAwayDropped(ILogger logger, string routeId, string headerName);

        [LoggerMessage(EventId = 2114, Level = LogLevel.Warning, Message = "The upstream of route {RouteId} answered in content coding {Coding}, which the gateway cannot decode; answered 502")]
        public static partial void UndecodableCoding(ILogger logger, string routeId, string coding);
    }
}

/// <summary>
/// The trailers of an answer (HTTP/2 and HTTP/3; gRPC's <c>grpc-message</c> lives here) are text
/// that reaches the agent after the body, and are guarded as headers are: a field holding a gateway
/// secret in any form is dropped. So are the fields RFC 9110 §6.5.1 says a trailer must not carry
/// — framing, routing, authentication, response control and the fields that say how to read the
/// content, such as <c>Content-Type</c> and <c>Content-Encoding</c> — since a client that merged
/// trailers into headers would read the body differently from the gateway; and digests of a body
/// the gateway rewrote.
/// </summary>
internal sealed partial class ResponseTrailerGuardTransform(RoutePlan plan, ResponseGuardTransform guard, ILogger<ResponseTrailerGuardTransform> logger) : ResponseTrailersTransform
{
    /// <summary>Fields a trailer may not carry (RFC 9110 §6.5.1: "many fields cannot be processed
    /// outside the header section"), which the RFC names by what they do.</summary>
    private static readonly FrozenSet<string> NotTrailers = FrozenSet.ToFrozenSet(
    [
        "Content-Type", "Content-Encoding", "Content-Length", "Content-Range", "Content-Language", "Content-Location", "Transfer-Encoding",
        "Trailer", "TE", "Connection", "Keep-Alive", "Upgrade", "Host", "Location", "Authorization", "Proxy-Authorization",
        "WWW-Authenticate", "Proxy-Authenticate", "Authentication-Info", "Proxy-Authentication-Info", "Set-Cookie", "Cookie", "Age", "Cache-Control", "Expires", "Date", "Retry-After",
        "Vary", "Warning", "Pragma", "ETag", "Last-Modified", "Accept-Ranges", "Alt-Svc", "Strict-Transport-Security", "Refresh", "Link",
    ], StringComparer.OrdinalIgnoreCase);

    public override ValueTask ApplyAsync(ResponseTrailersTransformContext context)
    {
        if (context.HttpContext.Features.Get<IHttpResponseTrailersFeature>()?.Trailers is not { IsReadOnly: false } trailers
            || context.HttpContext.Features.Get<GatewayRequestFeature>() is not { } feature)
        {
            return ValueTask.CompletedTask;
        }

        var routeId = feature.Route.RouteId;
        var echoing = guard.Echoing(trailers, plan.Secrets.Forms, guard.InjectedForms(feature.Injected));
        foreach (var (name, inName) in echoing)
        {
            trailers.Remove(name);
            Log.EchoedInTrailer(logger, routeId, inName ? ResponseGuardTransform.NameWithSecret : PolicyEngine.Printable(name));
        }

        List<string>? misplaced = null;
        foreach (var name in trailers.Keys)
        {
            if (NotTrailers.Contains(name) || (feature.BodyRewritten && ResponseBody.Digests.Contains(name, StringComparer.OrdinalIgnoreCase)))
            {
                (misplaced ??= []).Add(name);
            }
        }

        foreach (var name in misplaced ?? [])
        {
            trailers.Remove(name);
        }

        return ValueTask.CompletedTask;
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 2113, Level = LogLevel.Warning, Message = "The upstream of route {RouteId} echoed a gateway secret in response trailer {TrailerName}; the trailer was dropped")]
        public static partial void EchoedInTrailer(ILogger logger, string routeId, string trailerName);
    }
}
