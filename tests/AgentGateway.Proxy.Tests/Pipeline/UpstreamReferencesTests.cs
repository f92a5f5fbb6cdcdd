using AgentGateway.Proxy.Pipeline;
using Microsoft.AspNetCore.Http;

namespace AgentGateway.Proxy.Tests.Pipeline;

/// <summary>Every way a client could read a reference as pointing somewhere other than the gateway
/// is not the gateway's; what every client resolves to the gateway passes, and what points at the
/// upstream's own origin comes back on the route's public prefix.</summary>
public sealed class UpstreamReferencesTests
{
    /// <summary>Gateway path <c>/crm/accounts/7</c> forwarded to <c>https://crm.internal:8443/api/accounts/7</c>.</summary>
    private static readonly UpstreamReferences.Scope Scope = new(
        ["https://gateway.example.com"], new Uri("https://crm.internal:8443/api/accounts/7"), "/crm", "/api");

    [Theory]
    [InlineData("https://collector.attacker.example/v1/chat/completions")]
    [InlineData("HTTPS://collector.attacker.example/")]
    [InlineData("http://gateway.example.com/x")] // another scheme is another origin
    [InlineData("//collector.attacker.example/x")]
    [InlineData("/\\collector.attacker.example/x")]
    [InlineData("\\\\collector.attacker.example/x")]
    [InlineData("\\/collector.attacker.example/x")]
    [InlineData("/\t/collector.attacker.example/x")]
    [InlineData("/\n/collector.attacker.example/x")]
    [InlineData(" //collector.attacker.example/x")]
    [InlineData("\u0000//collector.attacker.example/x")]
    [InlineData("https:collector.attacker.example")]
    [InlineData("https:/collector.attacker.example")]
    [InlineData("https:\\\\collector.attacker.example")]
    [InlineData("https://gateway.example.com@collector.attacker.example/")]
    [InlineData("https://user:pw@gateway.example.com/")]
    [InlineData("https://gateway.example.com%2ecollector.attacker.example/")]
    [InlineData("https://%67ateway.example.com/")]
    [InlineData("https://gateway.example.com.collector.attacker.example/")]
    [InlineData("https://gäteway.example.com/")]
    [InlineData("https://xn--gteway-gua.example.com/")]
    [InlineData("https://crm.internal:8443/login")] // the upstream's origin, outside the route's prefix
    [InlineData("https://crm.internal:8443//collector.attacker.example/api")]
    [InlineData("https://crm.internal/api/x")] // another port
    [InlineData("javascript:alert(1)")]
    [InlineData("data:text/html,x")]
    [InlineData("ftp://gateway.example.com/")]
    [InlineData("a:b/c")]
    [InlineData("/x y")]
    [InlineData("/\u00a0//collector.attacker.example")]
    public void A_reference_a_client_could_resolve_elsewhere_is_not_the_gateways(string reference)
    {
        Assert.Null(UpstreamReferences.OnGateway(reference, Scope));
    }

    [Theory]
    [InlineData("/crm/accounts/8")]
    [InlineData("/")]
    [InlineData("accounts/8?view=full")]
    [InlineData("./x:y")]
    [InlineData("?page=2")]
    [InlineData("#top")]
    [InlineData("/%2F%2Fcollector.attacker.example")]
    [InlineData("https://gateway.example.com/crm/accounts/8")]
    [InlineData("https://GATEWAY.example.com:443/crm/accounts/8")]
    public void A_reference_every_client_resolves_to_the_gateway_passes_as_it_is(string reference)
    {
        Assert.Equal(reference, UpstreamReferences.OnGateway(reference, Scope));
    }

    [Theory]
    [InlineData("https://crm.internal:8443/api/accounts/8", "/crm/accounts/8")]
    [InlineData("https://CRM.internal:8443/api/accounts/8?view=full#a", "/crm/accounts/8?view=full#a")]
    [InlineData("https://crm.internal:8443/api", "/crm")]
    public void A_reference_to_the_upstreams_own_origin_is_mapped_onto_the_routes_prefix(string reference, string mapped)
    {
        Assert.Equal(mapped, UpstreamReferences.OnGateway(reference, Scope));
    }

    [Fact]
    public void Without_a_public_prefix_the_upstreams_path_is_the_gateways()
    {
        var scope = new UpstreamReferences.Scope([], new Uri("http://tools.internal/mcp/"), "", "");

        Assert.Equal("/mcp/other", UpstreamReferences.OnGateway("http://tools.internal/mcp/other", scope));
        Assert.Null(UpstreamReferences.OnGateway("http://tools.internal//collector.attacker.example/", scope));
        Assert.Null(UpstreamReferences.OnGateway("https://gateway.example.com/x", scope));
    }

    [Theory]
    [InlineData("/crm/accounts/7", "https://crm.internal/api/accounts/7", "/crm", "/api")]
    [InlineData("/crm/accounts/7", "https://crm.internal/accounts/7", "/crm", "")]
    [InlineData("/mcp/", "https://tools.internal/mcp/", "", "")]
    [InlineData("/llm/openai/v1/models", "https://api.openai.com/v1/models", "/llm/openai", "")]
    [InlineData("/crm/x7", "https://crm.internal/y7", "/crm/x7", "/y7")] // no common segment: nothing maps but the same path
    public void The_prefixes_are_what_the_route_replaced(string gatewayPath, string forwarded, string gatewayPrefix, string upstreamPrefix)
    {
        var request = new DefaultHttpContext().Request;
        request.Path = gatewayPath;

        var scope = UpstreamReferences.Scope.Of(request, new Uri(forwarded), AgentGateway.Proxy.Identity.PublicOrigins.Listener);

        Assert.Equal(gatewayPrefix, scope.GatewayPrefix);
        Assert.Equal(upstreamPrefix, scope.UpstreamPrefix);
    }

    [Theory]
    [InlineData("5", "5")]
    [InlineData("0; url=/crm/accounts/8", "0; url=/crm/accounts/8")]
    [InlineData("0;URL='https://crm.internal:8443/api/accounts/8'", "0; url=/crm/accounts/8")]
    [InlineData("0; url=https://collector.attacker.example/", null)]
    [InlineData("0,//collector.attacker.example/", null)]
    [InlineData("0; url=\"//collector.attacker.example/\"", null)]
    [InlineData("0 //collector.attacker.example/", null)]
    [InlineData("url=//collector.attacker.example/", null)]
    public void A_refresh_passes_only_with_a_url_on_the_gateway(string refresh, string? kept)
    {
        Assert.Equal(kept, UpstreamReferences.RefreshOnGateway(refresh, Scope));
    }

    [Theory]
    [InlineData("</crm/accounts?page=2>; rel=\"next\"", "</crm/accounts?page=2>; rel=\"next\"")]
    [InlineData("<?page=2>;rel=next, </crm/accounts?page=9>; rel=last", "<?page=2>; rel=next, </crm/accounts?page=9>; rel=last")]
    [InlineData("<https://crm.internal:8443/api/accounts?page=2>; rel=\"next\"", "</crm/accounts?page=2>; rel=\"next\"")]
    [InlineData("</crm/a>; rel=\"alternate\"; anchor=\"https://crm.internal:8443/api/b\"; title=\"a title\"", "</crm/a>; rel=\"alternate\"; anchor=\"/crm/b\"; title=\"a title\"")]
    [InlineData("</crm/a>; title=\"a \\\"quoted\\\" title\"", null)] // escapes: undone by some parsers, not by others
    [InlineData("</crm/items?page=2>; rel=\"next\"; title=\", <https://collector.attacker.example/c>; rel=next\"", null)] // a second link for parsers splitting on ", <"
    [InlineData("</crm/a>; title=\"x;y\"", null)]
    [InlineData("<'//collector.attacker.example/c>; rel=\"next\"", null)] // requests strips quotes and apostrophes around the target
    [InlineData("</crm/a,b>; rel=next", null)]
    [InlineData("</crm/a;b>; rel=next", null)]
    [InlineData("</crm/a>; title*=UTF-8''x", null)]
    [InlineData("</crm/a>; anchor*=UTF-8''%2F%2Fcollector.attacker.example", null)]
    [InlineData("</crm/a>; crossorigin", "</crm/a>; crossorigin")]
    [InlineData("<https://collector.attacker.example/items?page=2>; rel=\"next\"", null)]
    [InlineData("</crm/a>; rel=next, <//collector.attacker.example/x>; rel=preload", null)]
    [InlineData("</crm/a>; rel=next; anchor=\"https://collector.attacker.example/\"", null)]
    [InlineData("</crm/a>; rel=next; anchor=//collector.attacker.example", null)]
    [InlineData("</crm/a", null)]
    [InlineData("/crm/a; rel=next", null)]
    [InlineData("</crm/a> rel=next", null)]
    [InlineData("</crm/a>; rel=\"next", null)]
    [InlineData("</crm/a>;; rel=next", null)]
    [InlineData("</crm/a>,, </crm/b>", null)]
    [InlineData("</crm/a>; rel=next, ", null)]
    [InlineData("<https://collector.attacker.example\\@gateway.example.com/>", null)]
    public void A_link_passes_only_when_every_target_and_anchor_is_on_the_gateway(string link, string? kept)
    {
        Assert.Equal(kept, UpstreamReferences.LinkOnGateway(link, Scope));
    }
}
