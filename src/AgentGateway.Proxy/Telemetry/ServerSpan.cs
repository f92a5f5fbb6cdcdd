using System.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace AgentGateway.Proxy.Telemetry;

/// <summary>
/// Completes the request's server span, ASP.NET Core's own activity, with the OpenTelemetry
/// semantic-convention attributes known only when the request ends: <c>http.response.status_code</c>,
/// <c>http.route</c>, <c>network.protocol.version</c>, <c>error.type</c> (a 5xx answer or an unhandled
/// exception, which also set the status to error) and the span's name (<c>GET /route</c>). ASP.NET
/// Core 10 sets those known at the start itself (see <see cref="TelemetryExport"/>). Registered only
/// when traces are exported, first in the pipeline; a request whose span is sampled out costs one
/// feature lookup.
/// </summary>
internal static class ServerSpan
{
    private const string Route = "http.route";
    private const string ProtocolVersion = "network.protocol.version";

    public static Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        if (GatewayTelemetry.RequestSpan(context) is not { } span)
        {
            return next(context);
        }

        Task pending;
        try
        {
            pending = next(context);
        }
        catch (Exception exception)
        {
            Ended(span, context, exception);
            throw;
        }

        if (!pending.IsCompletedSuccessfully)
        {
            return Awaited(pending, span, context);
        }

        Ended(span, context, exception: null);
        return Task.CompletedTask;
    }

    private static async Task Awaited(Task pending, Activity span, HttpContext context)
    {
        try
        {
            await pending;
        }
        catch (Exception exception)
        {
            Ended(span, context, exception);
            throw;
        }

        Ended(span, context, exception: null);
    }

    private static void Ended(Activity span, HttpContext context, Exception? exception)
    {
        // An exception before the answer started becomes the status hosting sends for it: a bad
        // request's own (400, 413, ...), else 500.
        var status = exception is null || context.Response.HasStarted ? context.Response.StatusCode
            : exception is BadHttpRequestException bad ? bad.StatusCode
            : StatusCodes.Status500InternalServerError;
        // Each attribute here is set once, by this alone: appended, not searched for to replace.
        span.AddTag(GatewayTelemetry.Tags.HttpStatusCode, Boxed(status));
        if (Version(context.Request.Protocol) is { } version)
        {
            span.AddTag(ProtocolVersion, version);
        }

        var method = SpanMethod(span);
        if (context.GetEndpoint() is RouteEndpoint { RoutePattern.RawText: { } route })
        {
            span.AddTag(Route, route);
            span.DisplayName = string.Concat(method, " ", route);
        }
        else
        {
            span.DisplayName = method;
        }

        if ((exception is not null || status >= 500) && span.GetTagItem(GatewayTelemetry.Tags.ErrorType) is null)
        {
            span.SetTag(GatewayTelemetry.Tags.ErrorType, exception?.GetType().FullName ?? status.ToString(System.Globalization.CultureInfo.InvariantCulture));
            if (span.Status == ActivityStatusCode.Unset)
            {
                span.SetStatus(ActivityStatusCode.Error);
            }
        }
    }

    private static string? Version(string protocol) =>
        HttpProtocol.IsHttp11(protocol) ? "1.1"
        : HttpProtocol.IsHttp2(protocol) ? "2"
        : HttpProtocol.IsHttp3(protocol) ? "3"
        : HttpProtocol.IsHttp10(protocol) ? "1.0"
        : null;

    /// <summary>The method as a span name has it: the span's own <c>http.request.method</c>, which
    /// hosting set to a known method in its canonical spelling or to <c>_OTHER</c>; any other (or
    /// none) as <c>HTTP</c>, so the name never disagrees with that attribute and an agent-chosen
    /// method never makes a span name of its choosing.</summary>
    private static string SpanMethod(Activity span) =>
        span.GetTagItem(RequestMethod) is string method && method != OtherMethod ? method : "HTTP";

    private const string RequestMethod = "http.request.method";
    private const string OtherMethod = "_OTHER";

    private static readonly object?[] StatusBoxes = new object?[600];

    /// <summary>A status code boxed once per process, not once per request (an attribute or a
    /// metric tag is an object).</summary>
    internal static object Boxed(int status)
    {
        if ((uint)status >= (uint)StatusBoxes.Length)
        {
            return status;
        }

        // Two threads boxing the same code at once is harmless: either box is the same value.
        return StatusBoxes[status] ??= status;
    }
}
