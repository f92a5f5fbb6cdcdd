using System.Text.Encodings.Web;
using System.Text.Json;
using AgentGateway.Configuration;
using AgentGateway.Proxy.Telemetry;
using Microsoft.AspNetCore.Http;

namespace AgentGateway.Proxy.Problems;

/// <summary>Writes a <see cref="Refusal"/> as RFC 9457 <c>application/problem+json</c>, with the
/// gateway's W3C trace id of the request (the audit record's) so an agent's operator can hand SREs
/// the one value that finds it.</summary>
public static class ProblemResponse
{
    // Problem bodies are JSON read by people and programs, never embedded in HTML: escape only what JSON requires.
    private static readonly JsonWriterOptions Options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>RFC 6750 §3 and RFC 9449 §7.1: the schemes the gateway takes, and the DPoP proof
    /// algorithms it accepts — the same list its validator checks.</summary>
    private static readonly string DpopChallenge = $"Bearer realm=\"agentgateway\", DPoP algs=\"{SigningAlgorithm.List(" ")}\"";

    public static async Task WriteAsync(HttpContext context, Refusal refusal)
    {
        var response = context.Response;
        if (response.HasStarted)
        {
            // Nothing honest can be said any more; end the exchange rather than append to it.
            context.Abort();
            return;
        }

        response.Clear();
        response.StatusCode = refusal.Status;
        response.ContentType = "application/problem+json";
        response.Headers.CacheControl = "no-store";
        if (refusal.RetryAfter is { } retryAfter)
        {
            response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        if (refusal.Status == StatusCodes.Status401Unauthorized)
        {
            // RFC 6750 §3: tell a client which scheme the gateway expects.
            response.Headers.WWWAuthenticate = DpopChallenge;
        }

        // The gateway's own trace id, the one the audit record of this refusal carries too.
        var traceId = RequestTrace.Id(context);
        using (var json = new Utf8JsonWriter(response.BodyWriter, Options))
        {
            json.WriteStartObject();
            json.WriteString("type", "urn:agentgateway:problem:" + refusal.Reason);
            json.WriteString("title", refusal.Title);
            json.WriteNumber("status", refusal.Status);
            json.WriteString("detail", refusal.Detail);
            json.WriteString("reason", refusal.Reason);
            json.WriteString("traceId", traceId);
            json.WriteEndObject();
        }

        await response.BodyWriter.FlushAsync(context.RequestAborted);
    }
}
