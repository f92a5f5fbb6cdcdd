using System.Net;

namespace AgentGateway.Configuration;

/// <summary>
/// An HTTP endpoint the gateway sends secrets or tokens to, or fetches keys from (token endpoints,
/// issuers, JWKS, MCP resources and their authorization servers): an absolute http(s) URL without
/// user information, and https unless it is a loopback address (a local identity provider or a
/// test), where there is no network to protect. One rule whether the URL comes from the
/// configuration or from a server's metadata at first use.
/// </summary>
public readonly record struct HttpEndpoint
{
    private HttpEndpoint(Uri uri) => Uri = uri;

    public Uri Uri { get; }

    public static bool TryParse(string? text, out HttpEndpoint endpoint, out string error)
    {
        endpoint = default;
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttps && uri.Scheme != Uri.UriSchemeHttp))
        {
            error = "must be an absolute http(s) URL";
            return false;
        }

        if (uri.Scheme == Uri.UriSchemeHttp && !IsLoopback(uri))
        {
            error = "must use https (plain http is allowed only for loopback addresses)";
            return false;
        }

        if (!string.IsNullOrEmpty(uri.UserInfo))
        {
            error = "must not carry user information";
            return false;
        }

        endpoint = new HttpEndpoint(uri);
        error = string.Empty;
        return true;
    }

    /// <summary>Parses a configured endpoint; a problem at <paramref name="path"/> when it is not one.</summary>
    public static bool TryRead(string path, string? text, ConfigProblems problems, out Uri? uri)
    {
        if (TryParse(text, out var endpoint, out var error))
        {
            uri = endpoint.Uri;
            return true;
        }

        problems.Add(path, error);
        uri = null;
        return false;
    }

    public static bool IsLoopback(Uri uri) =>
        uri.IsLoopback || (IPAddress.TryParse(uri.DnsSafeHost, out var ip) && IPAddress.IsLoopback(ip));

    public override string ToString() => Uri?.AbsoluteUri ?? string.Empty;
}
