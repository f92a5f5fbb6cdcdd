using System.Collections.Frozen;
using System.Net.Http.Headers;
using AgentGateway.Configuration;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Transforms;

namespace AgentGateway.Proxy.Stripping;

/// <summary>
/// A route's allow-list of the agent's request headers (<c>Metadata:ForwardHeaders</c>, names
/// separated by ',' or ';'): only these reach the upstream, besides what HTTP needs to carry the
/// body (<c>Content-Type</c>, <c>Content-Encoding</c>, <c>Content-Length</c>, and <c>TE: trailers</c>
/// for gRPC) and what the gateway adds itself (the hop credential, <c>X-Forwarded-For</c>/
/// <c>-Proto</c>/<c>-Host</c>/<c>-Prefix</c>, the provenance assertion, the trace context, and
/// whatever the route's own transforms set). For operators who would rather name what an upstream
/// may see than trust the strip rules to know every header it might believe. Names compare
/// case-insensitively and exactly: an allowed <c>X-Tenant</c> does not let <c>X_Tenant</c> through.
/// </summary>
public sealed class ForwardHeaders
{
    public const string MetadataKey = "ForwardHeaders";

    /// <summary>What HTTP needs to carry the agent's body as the agent framed and labelled it.</summary>
    private static readonly FrozenSet<string> Needed = FrozenSet.ToFrozenSet(
        ["Content-Type", "Content-Encoding", "Content-Length", "TE"], StringComparer.OrdinalIgnoreCase);

    private readonly FrozenSet<string> _allowed;

    private ForwardHeaders(FrozenSet<string> allowed) => _allowed = allowed;

    /// <summary>Only what HTTP needs: the fail-closed list.</summary>
    public static ForwardHeaders None { get; } = new(FrozenSet<string>.Empty);

    /// <summary>The names as configured.</summary>
    public IReadOnlyCollection<string> Names => _allowed;

    /// <summary>Checks every route's <c>Metadata:ForwardHeaders</c> at load, each error under the
    /// route's path; <paramref name="control"/> holds the gateway's own headers (delegation, task,
    /// static key, provenance), which are never forwarded.</summary>
    public static void Check(IReadOnlyList<RouteConfig> routes, string[] control, ConfigProblems problems)
    {
        foreach (var route in routes)
        {
            if (route.Metadata?.TryGetValue(MetadataKey, out var value) == true)
            {
                Parse(value, control, out var errors);
                foreach (var error in errors)
                {
                    problems.Add($"ReverseProxy:Routes:{route.RouteId}:Metadata:{MetadataKey}", error);
                }
            }
        }
    }

    /// <summary>Parses a route's <c>ForwardHeaders</c> value; every name must be an HTTP token and
    /// none may be one the gateway never forwards (credentials, identity assertions, the gateway's
    /// own control headers in <paramref name="control"/>): each such is an error.</summary>
    public static ForwardHeaders? Parse(string? value, IReadOnlyCollection<string> control, out IReadOnlyList<string> errors)
    {
        var problems = new List<string>();
        errors = problems;
        if (value is null)
        {
            return null;
        }

        var names = value.Split([',', ';'], StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (names.Length == 0)
        {
            problems.Add("names no header; list the request headers the upstream may see, or remove the key");
            return null;
        }

        foreach (var name in names)
        {
            if (!HeaderName.IsToken(name))
            {
                problems.Add($"'{name}' is not a header name");
            }
            else if (InboundCredentials.IsCredentialHeader(name) || UntrustedHeaders.IsUntrusted(name))
            {
                problems.Add($"'{name}' carries credentials or identity, which the gateway never forwards from an agent");
            }
            else if (control.Any(c => InboundCredentials.SameHeader(c, name)))
            {
                problems.Add($"'{name}' is addressed to the gateway itself and never forwarded");
            }
        }

        return problems.Count == 0 ? new ForwardHeaders(names.ToFrozenSet(StringComparer.OrdinalIgnoreCase)) : null;
    }

    /// <summary>Whether the agent's header <paramref name="name"/> may reach the upstream.</summary>
    public bool Allows(string name) => _allowed.Contains(name) || Needed.Contains(name);

    /// <summary>The transform that applies this list; it runs before the route's own transforms, so
    /// what they set is the gateway's and stays.</summary>
    public RequestTransform Transform() => new Filter(this);

    private sealed class Filter(ForwardHeaders allowed) : RequestTransform
    {
        public override ValueTask ApplyAsync(RequestTransformContext context)
        {
            Remove(context.ProxyRequest.Headers, allowed);
            if (context.ProxyRequest.Content is { } content)
            {
                Remove(content.Headers, allowed);
            }

            return default;
        }

        private static void Remove(HttpHeaders headers, ForwardHeaders allowed)
        {
            List<string>? remove = null;
            foreach (var header in headers.NonValidated)
            {
                if (!allowed.Allows(header.Key))
                {
                    (remove ??= []).Add(header.Key);
                }
            }

            if (remove is not null)
            {
                foreach (var name in remove)
                {
                    headers.Remove(name);
                }
            }
        }
    }
}
