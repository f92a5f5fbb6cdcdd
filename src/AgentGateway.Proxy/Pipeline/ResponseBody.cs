using Microsoft.AspNetCore.Http;

namespace AgentGateway.Proxy.Pipeline;

/// <summary>The one place that knows what becomes false when the gateway hands the agent other
/// bytes than the upstream sent (a decoded coding, a dropped or rewritten event, a replaced answer).</summary>
internal static class ResponseBody
{
    /// <summary>Headers that describe the upstream's bytes: its length (kept, it would cut the
    /// agent's body short or leave the agent waiting), digests and validators of those bytes, and
    /// ranges into them.</summary>
    private static readonly string[] Describing = ["Content-Length", "Content-MD5", "Digest", "Content-Digest", "Repr-Digest", "ETag", "Accept-Ranges"];

    /// <summary>Names of the digest fields, which may also come as trailers.</summary>
    internal static readonly string[] Digests = ["Content-MD5", "Digest", "Content-Digest", "Repr-Digest"];

    /// <summary>Called by whatever rewrites the body, before the response starts; a writer that
    /// knows the new length sets it after.</summary>
    public static void Rewritten(HttpContext context)
    {
        foreach (var name in Describing)
        {
            context.Response.Headers.Remove(name);
        }

        if (context.Features.Get<GatewayRequestFeature>() is { } feature)
        {
            feature.BodyRewritten = true;
        }
    }
}
