using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using AgentGateway.Configuration;
using AgentGateway.Credentials.Caching;
using AgentGateway.Credentials.OAuth;
using Microsoft.Extensions.Logging;

namespace AgentGateway.Credentials.Mcp;

/// <summary>
/// Finds the token endpoint for an MCP server the way the MCP authorization spec has clients do
/// it: the server's protected-resource metadata (RFC 9728) names its authorization servers, whose
/// metadata (RFC 8414, or OpenID Connect discovery) names the token endpoint. Every document is
/// checked before it is believed — the metadata must be about this very resource, the
/// authorization server must be one the operator allowed, the server's metadata must carry its
/// own issuer identifier — because the result decides where the gateway sends its client
/// credentials. The answer is reused for the configured interval; one lookup runs at a time.
/// </summary>
internal sealed partial class AuthorizationServerDiscovery(
    McpOAuthOptions options, IHttpClientFactory httpClients, TimeProvider time, ILogger logger)
{
    /// <summary>Metadata documents are small; anything larger is not one.</summary>
    private const int MaxDocumentBytes = 64 * 1024;

    private readonly Lock _lock = new();
    private (Uri TokenEndpoint, DateTimeOffset FetchedAt)? _known;
    private Task<Uri>? _lookup;

    /// <summary>Forget the discovered endpoint (e.g. after it failed), so the next fetch looks again.</summary>
    public void Forget()
    {
        lock (_lock)
        {
            _known = null;
        }
    }

    public async ValueTask<Uri> GetTokenEndpointAsync(CancellationToken cancellationToken)
    {
        Task<Uri> lookup;
        lock (_lock)
        {
            if (_known is { } known && time.GetUtcNow() - known.FetchedAt < options.DiscoveryInterval)
            {
                return known.TokenEndpoint;
            }

            // One lookup at a time, shared by every waiting request, and not cancelled with the
            // first of them: it is bounded by the credential's timeout instead.
            lookup = _lookup ??= LookUpAsync();
        }

        return await lookup.WaitAsync(cancellationToken);
    }

    private async Task<Uri> LookUpAsync()
    {
        // Leave the caller's lock before any work, so the clean-up below always runs after the
        // task has been published.
        await Task.Yield();
        try
        {
            using var timeout = new CancellationTokenSource(options.Timeout, time);
            var http = httpClients.CreateClient(TokenEndpointClient.HttpClientName);
            Uri issuer, endpoint;
            try
            {
                issuer = await FindAuthorizationServerAsync(http, timeout.Token);
                endpoint = await FindTokenEndpointAsync(http, issuer, timeout.Token);
            }
            catch (OperationCanceledException) when (timeout.IsCancellationRequested)
            {
                throw Fail($"metadata did not arrive within {options.Timeout.TotalSeconds:0.#} s");
            }

            lock (_lock)
            {
                _known = (endpoint, time.GetUtcNow());
            }

            Log.Discovered(logger, options.Name, options.Resource, issuer, endpoint);
            return endpoint;
        }
        finally
        {
            lock (_lock)
            {
                _lookup = null;
            }
        }
    }

    /// <summary>RFC 9728: the metadata at the path-inserted well-known URI (then at the host's root,
    /// which servers without path support use), for exactly this resource; the first authorization
    /// server it names that the operator allowed.</summary>
    private async Task<Uri> FindAuthorizationServerAsync(HttpClient http, CancellationToken cancellationToken)
    {
        var resource = options.Resource;
        Uri[] candidates = options.ResourceMetadata is { } explicitUri
            ? [explicitUri]
            : WellKnown(resource, "oauth-protected-resource");
        var document = await FetchFirstAsync(http, candidates, "protected-resource metadata", cancellationToken);
        using (document)
        {
            var root = document.RootElement;
            if (!root.TryGetProperty("resource", out var named) || named.ValueKind != JsonValueKind.String || !SameIdentifier(named.GetString(), resource))
            {
                // RFC 9728 §3.3: metadata about another resource must not be used.
                throw Fail($"the MCP server's metadata is not about {resource.AbsoluteUri}");
            }

            if (!root.TryGetProperty("authorization_servers", out var servers) || servers.ValueKind != JsonValueKind.Array)
            {
                throw Fail("the MCP server's metadata names no authorization server");
            }

            foreach (var server in servers.EnumerateArray())
            {
                if (server.ValueKind == JsonValueKind.String
                    && options.AuthorizationServers.FirstOrDefault(allowed => SameIdentifier(server.GetString(), allowed)) is { } match)
                {
                    return match;
                }
            }

            throw Fail($"the MCP server's metadata names {servers.GetArrayLength()} authorization server(s), none of them in AuthorizationServers");
        }
    }

    /// <summary>RFC 8414 metadata (path-inserted, then OpenID Connect discovery): its <c>issuer</c>
    /// must be the server asked about (§3.3), its <c>token_endpoint</c> https (or loopback).</summary>
    private async Task<Uri> FindTokenEndpointAsync(HttpClient http, Uri issuer, CancellationToken cancellationToken)
    {
        Uri[] candidates =
        [
            .. WellKnown(issuer, "oauth-authorization-server"),
            new Uri(issuer.AbsoluteUri.TrimEnd('/') + "/.well-known/openid-configuration"),
        ];
        using var document = await FetchFirstAsync(http, candidates, "authorization server metadata", cancellationToken);
        var root = document.RootElement;
        if (!root.TryGetProperty("issuer", out var named) || named.ValueKind != JsonValueKind.String || !SameIdentifier(named.GetString(), issuer))
        {
            throw Fail("the authorization server's metadata names another issuer");
        }

        if (!root.TryGetProperty("token_endpoint", out var endpoint) || endpoint.ValueKind != JsonValueKind.String
            || !HttpEndpoint.TryParse(endpoint.GetString(), out var tokenEndpoint, out _))
        {
            throw Fail("the authorization server's metadata has no usable token_endpoint (absolute, https unless loopback)");
        }

        return tokenEndpoint.Uri;
    }

    private async Task<JsonDocument> FetchFirstAsync(HttpClient http, Uri[] candidates, string what, CancellationToken cancellationToken)
    {
        var last = "no location to try";
        foreach (var uri in candidates)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, uri);
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
            HttpResponseMessage response;
            try
            {
                response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            }
            catch (HttpRequestException ex)
            {
                throw Fail($"the {what} could not be fetched ({ex.HttpRequestError})");
            }

            using (response)
            {
                if (response.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.MethodNotAllowed)
                {
                    last = $"HTTP {(int)response.StatusCode}";
                    continue;
                }

                if (response.StatusCode != HttpStatusCode.OK)
                {
                    throw Fail($"the {what} answered HTTP {(int)response.StatusCode}");
                }

                if (response.Content.Headers.ContentLength > MaxDocumentBytes)
                {
                    throw Fail($"the {what} is larger than {MaxDocumentBytes} bytes");
                }

                var body = new byte[MaxDocumentBytes + 1];
                var length = 0;
                await using (var stream = await response.Content.ReadAsStreamAsync(cancellationToken))
                {
                    int read;
                    while (length <= MaxDocumentBytes && (read = await stream.ReadAsync(body.AsMemory(length), cancellationToken)) > 0)
                    {
                        length += read;
                    }
                }

                if (length > MaxDocumentBytes)
                {
                    throw Fail($"the {what} is larger than {MaxDocumentBytes} bytes");
                }

                try
                {
                    var document = JsonDocument.Parse(body.AsMemory(0, length));
                    if (document.RootElement.ValueKind == JsonValueKind.Object)
                    {
                        return document;
                    }

                    document.Dispose();
                }
                catch (JsonException)
                {
                    // Reported below.
                }

                throw Fail($"the {what} is not a JSON object");
            }
        }

        throw Fail($"the {what} was not found ({last})");
    }

    /// <summary>RFC 8414 §3.1 / RFC 9728 §3.1: <c>/.well-known/{suffix}</c> inserted between the host
    /// and the path; for an identifier with a path, the host-root location is tried after it.</summary>
    private static Uri[] WellKnown(Uri identifier, string suffix)
    {
        var origin = identifier.GetLeftPart(UriPartial.Authority);
        var path = identifier.AbsolutePath.TrimEnd('/');
        var root = new Uri($"{origin}/.well-known/{suffix}");
        return path.Length == 0 ? [root] : [new Uri($"{origin}/.well-known/{suffix}{path}"), root];
    }

    /// <summary>Identifiers compare as strings (RFC 8414 §3.3), forgiving only a trailing slash.</summary>
    private static bool SameIdentifier(string? text, Uri expected) =>
        text is not null && string.Equals(text.TrimEnd('/'), expected.AbsoluteUri.TrimEnd('/'), StringComparison.Ordinal);

    private CredentialFetchException Fail(string reason)
    {
        Log.DiscoveryFailed(logger, options.Name, reason);
        return new CredentialFetchException($"credential '{options.Name}': {reason}");
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1501, Level = LogLevel.Information, Message = "MCP credential {CredentialName}: resource {Resource} is protected by {AuthorizationServer}; token endpoint {TokenEndpoint}")]
        public static partial void Discovered(ILogger logger, string credentialName, Uri resource, Uri authorizationServer, Uri tokenEndpoint);

        [LoggerMessage(EventId = 1502, Level = LogLevel.Warning, Message = "MCP credential {CredentialName}: discovery failed: {Reason}")]
        public static partial void DiscoveryFailed(ILogger logger, string credentialName, string reason);
    }
}
