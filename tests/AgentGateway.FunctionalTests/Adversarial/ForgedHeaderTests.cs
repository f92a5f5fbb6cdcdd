using System.Text;
using System.Text.Json.Nodes;
using AgentGateway.FunctionalTests.Infrastructure;

namespace AgentGateway.FunctionalTests.Adversarial;

/// <summary>
/// The README's threat model ("identity claims have many spellings"): an agent forging the headers that
/// proxies and identity providers in front of an upstream assert — who the user is, which groups,
/// which client address, which original URL — or asking the upstream's framework for another method
/// than the one policy decided on. Requests are written byte for byte to the real gateway on Kestrel;
/// the upstream keeps every byte it receives, so the tests judge what actually arrived.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class ForgedHeaderTests(GatewayFixture fx) : IAsyncLifetime
{
    private const string Marker = "forged-by-agent";

    private readonly RawUpstream _upstream = RawUpstream.Start();
    private string _token = "";

    public async Task InitializeAsync()
    {
        await fx.ResetAsync();
        _token = await fx.AgentTokenAsync();
    }

    public async Task DisposeAsync() => await _upstream.DisposeAsync();

    /// <summary>The families of the common proxies and identity providers (oauth2-proxy, Authelia,
    /// Authentik, Traefik and Caddy forward-auth, Pomerium, Vouch, Cloudflare Access, Google IAP,
    /// AWS ALB, Azure App Service and Front Door, Kong, Apigee, Google Endpoints, Envoy and Istio,
    /// Kubernetes impersonation and front proxy, Grafana, Tailscale, Teleport, Shibboleth and its
    /// attribute headers, SiteMinder, WebSEAL, the Grafana tenant, nginx auth_request), the
    /// client-address and original-request claims, and the method overrides.</summary>
    private static readonly string[] Families =
    [
        "X-WebAuth-User", "Remote-Groups", "Remote-Email", "X-Forwarded-Preferred-Username", "X-Consumer-Username", "X-Userinfo",
        "X-Endpoint-API-UserInfo", "X-Authentik-Username", "X-Goog-IAP-JWT-Assertion", "Cf-Access-Jwt-Assertion", "X-Envoy-Internal",
        "Remote-User", "Remote-Name", "X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups", "X-Forwarded-Access-Token",
        "X-Auth-Request-User", "X-Auth-Request-Email", "X-Auth-Request-Groups", "X-Auth-Request-Access-Token",
        "X-Consumer-Id", "X-Consumer-Groups", "X-Credential-Identifier", "X-Anonymous-Consumer", "X-Authenticated-Userid",
        "X-User", "X-User-Id", "X-Username", "X-Remote-User", "X-Remote-Group", "X-Remote-Extra-Scopes",
        "X-Apigateway-Api-Userinfo", "X-Authentik-Groups", "X-Goog-Authenticated-User-Email", "Cf-Access-Authenticated-User-Email",
        "X-Envoy-Original-Path", "X-Envoy-Peer-Metadata", "X-Envoy-External-Address", "X-Istio-Attributes", "X-Forwarded-Client-Cert",
        "X-Pomerium-Jwt-Assertion", "X-Pomerium-Claim-Email", "X-Vouch-User", "X-Amzn-Oidc-Data", "X-Amzn-Oidc-Identity",
        "X-Ms-Client-Principal", "X-Ms-Client-Principal-Name", "X-Ms-Token-Aad-Access-Token", "X-Azure-FDID", "X-Apigee-Developer-App",
        "X-Proxy-User", "Impersonate-User", "Impersonate-Group", "Impersonate-Extra-Scopes", "Tailscale-User-Login", "Teleport-Jwt-Assertion",
        "Shib-Identity-Provider", "X-Identity",
        "SM_USER", "SMUSER", "SM_UNIVERSALID", "SM_USERDN", "iv-user", "iv-groups", "iv-creds", "iv-remote-address", "X-Scope-OrgID", "X-Host", "X-HTTP-Host-Override", "X-Host-Override", "b3", "X-B3-TraceId", "uber-trace-id", "X-Cloud-Trace-Context", "X-Amzn-Trace-Id", "sentry-trace", "x-datadog-trace-id", "grpc-trace-bin",
        "eppn", "affiliation", "entitlement", "persistent-id", "mail", "displayName", "X-Group", "Auth-User",
        "Forwarded", "X-Real-IP", "True-Client-IP", "X-Client-IP", "CF-Connecting-IP", "X-Original-URL", "X-Original-URI",
        "X-Rewrite-URL", "X-Forwarded-Port", "X-Forwarded-Server", "X-Forwarded-Uri", "X-Forwarded-Ssl", "X-Forwarded-For",
        "X-Forwarded-Host", "X-Forwarded-Proto",
        "X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override",
    ];

    /// <summary>Every family, in every spelling an upstream could fold to the same name: as
    /// written, lower case, upper case, '_' and '.' for '-'.</summary>
    public static TheoryData<string> Spellings()
    {
        var data = new TheoryData<string>();
        foreach (var spelling in new[] { "as-written", "lower", "upper", "underscore", "dot" })
        {
            data.Add(spelling);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Spellings))]
    public async Task No_forged_identity_forwarding_or_method_header_of_any_family_reaches_the_upstream(string spelling)
    {
        await using var gateway = await GatewayInstance.StartAsync(Config());
        var names = Families.Select(name => spelling switch
        {
            "lower" => name.ToLowerInvariant(),
            "upper" => name.ToUpperInvariant(),
            "underscore" => name.Replace('-', '_'),
            "dot" => name.Replace('-', '.'),
            _ => name,
        }).ToList();

        // Kestrel takes at most 100 header lines per request: the families go in batches.
        foreach (var batch in names.Chunk(40))
        {
            var forged = string.Concat(batch.Select((name, i) => $"{name}: {Marker}-{i}\r\n"));
            var response = await RawHttp.SendAsync(gateway, Get("/llm/openai/v1/models", forged + "X-Kept: yes\r\n"));
            Assert.StartsWith("HTTP/1.1 200", response, StringComparison.Ordinal);
        }

        Assert.Equal(Families.Chunk(40).Count(), _upstream.Received.Count);
        foreach (var received in _upstream.Received)
        {
            Assert.DoesNotContain(Marker, received.Text, StringComparison.Ordinal);
            Assert.Equal(["yes"], received.Headers("X-Kept"));
            // What the gateway itself says about the client replaces what the agent claimed.
            Assert.Equal(["127.0.0.1"], received.Headers("X-Forwarded-For"));
            Assert.Equal(["Bearer " + fx.OpenAiKey], received.Headers("Authorization"));
        }

        _upstream.AssertNeverSaw(_token);
    }

    /// <summary>Frameworks (Rails, Laravel, Symfony, Spring, Express, Salesforce) take the method
    /// from a query parameter on a POST. The grant allows GET and POST, not DELETE: a DELETE is
    /// refused, and a POST asking to be a DELETE goes as a POST without the request to change.</summary>
    [Theory]
    [InlineData("_method=DELETE")]
    [InlineData("_METHOD=DELETE")]
    [InlineData("%5Fmethod=DELETE")]
    [InlineData("__method=DELETE")]
    [InlineData("_HttpMethod=DELETE")]
    [InlineData("X-HTTP-Method-Override=DELETE")]
    [InlineData("x_http_method=DELETE")]
    [InlineData("X-Method-Override=DELETE")]
    public async Task A_method_override_in_the_query_never_reaches_the_upstream(string parameter)
    {
        var config = Config();
        config["Gateway"]!["Grants"]!["llm"]!["Methods"] = new JsonArray("GET", "POST");
        await using var gateway = await GatewayInstance.StartAsync(config);

        var delete = await RawHttp.SendAsync(gateway, Request("DELETE", "/llm/openai/v1/models/gpt-4o"));
        var post = await RawHttp.SendAsync(gateway, Request("POST", $"/llm/openai/v1/models/gpt-4o?keep=1&{parameter}", body: "{}"));

        Assert.StartsWith("HTTP/1.1 403", delete, StringComparison.Ordinal);
        Assert.Contains("method-denied", delete, StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 200", post, StringComparison.Ordinal);
        var received = Assert.Single(_upstream.Received);
        Assert.Equal("POST /v1/models/gpt-4o?keep=1 HTTP/1.1", received.RequestLine);
        Assert.DoesNotContain("DELETE", received.Text, StringComparison.Ordinal);
        _upstream.AssertNeverSaw(_token);
    }

    /// <summary>With <c>Metadata:ForwardHeaders</c>, the agent's headers reach the upstream only if
    /// named there; what HTTP needs for the body and what the gateway adds still go.</summary>
    [Fact]
    public async Task With_forward_headers_only_the_named_headers_of_the_agent_reach_the_upstream()
    {
        var config = Config();
        config["ReverseProxy"]!["Routes"]!["openai"]!["Metadata"]!["ForwardHeaders"] = "Accept, anthropic-version";
        await using var gateway = await GatewayInstance.StartAsync(config);

        var response = await RawHttp.SendAsync(gateway, Request(
            "POST",
            "/llm/openai/v1/chat/completions",
            "Accept: application/json\r\nANTHROPIC-VERSION: 2023-06-01\r\nUser-Agent: agent/1.0\r\nX-Custom: " + Marker + "\r\nX-WebAuth-User: " + Marker + "\r\nX-Tenant_Id: " + Marker + "\r\nContent-Type: application/json\r\n",
            body: "{\"model\":\"gpt-4o\"}"));

        Assert.StartsWith("HTTP/1.1 200", response, StringComparison.Ordinal);
        var received = Assert.Single(_upstream.Received);
        Assert.Equal(["application/json"], received.Headers("Accept"));
        Assert.Equal(["2023-06-01"], received.Headers("anthropic-version"));
        Assert.Equal(["application/json"], received.Headers("Content-Type"));
        Assert.Equal(["18"], received.Headers("Content-Length"));
        Assert.Equal(["Bearer " + fx.OpenAiKey], received.Headers("Authorization"));
        Assert.Equal(["127.0.0.1"], received.Headers("X-Forwarded-For"));
        Assert.Empty(received.Headers("User-Agent"));
        Assert.DoesNotContain(Marker, received.Text, StringComparison.Ordinal);
        Assert.EndsWith("{\"model\":\"gpt-4o\"}", received.Text, StringComparison.Ordinal);
        var allowed = new[] { "Host", "Accept", "anthropic-version", "Content-Type", "Content-Length", "Authorization", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "traceparent" };
        Assert.All(received.HeaderNames, name => Assert.Contains(name, allowed, StringComparer.OrdinalIgnoreCase));
        _upstream.AssertNeverSaw(_token);
    }

    /// <summary>Headers the route's own transforms set are the gateway's: the allow-list filters the
    /// agent's headers before them, and forwarding headers the route configures itself are set after
    /// the agent's forged ones are gone.</summary>
    [Fact]
    public async Task What_the_routes_own_transforms_set_survives_the_allow_list_and_the_strip()
    {
        var config = Config();
        var route = config["ReverseProxy"]!["Routes"]!["openai"]!.AsObject();
        route["Metadata"]!["ForwardHeaders"] = "Accept";
        route["Transforms"]!.AsArray().Add(new JsonObject { ["RequestHeader"] = "X-Route-Tag", ["Set"] = "from-the-route" });
        route["Transforms"]!.AsArray().Add(new JsonObject { ["X-Forwarded"] = "Append" });
        await using var gateway = await GatewayInstance.StartAsync(config);

        var response = await RawHttp.SendAsync(gateway, Get(
            "/llm/openai/v1/models",
            $"X-Route-Tag: {Marker}\r\nX-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Host: {Marker}.example\r\nAccept: */*\r\n"));

        Assert.StartsWith("HTTP/1.1 200", response, StringComparison.Ordinal);
        var received = Assert.Single(_upstream.Received);
        Assert.Equal(["from-the-route"], received.Headers("X-Route-Tag"));
        Assert.Equal(["127.0.0.1"], received.Headers("X-Forwarded-For"));
        Assert.Equal(["*/*"], received.Headers("Accept"));
        Assert.DoesNotContain(Marker, received.Text, StringComparison.Ordinal);
        Assert.DoesNotContain("203.0.113.9", received.Text, StringComparison.Ordinal);
        _upstream.AssertNeverSaw(_token);
    }

    /// <summary>A route transform that changes the method is what policy decides on, like the path.</summary>
    [Fact]
    public async Task Policy_decides_on_the_method_that_is_forwarded()
    {
        var config = Config();
        config["Gateway"]!["Grants"]!["llm"]!["Methods"] = new JsonArray("GET");
        config["ReverseProxy"]!["Routes"]!["openai"]!["Transforms"]!.AsArray().Add(new JsonObject { ["HttpMethodChange"] = "GET", ["Set"] = "DELETE" });
        await using var gateway = await GatewayInstance.StartAsync(config);

        var response = await RawHttp.SendAsync(gateway, Get("/llm/openai/v1/models"));

        Assert.StartsWith("HTTP/1.1 403", response, StringComparison.Ordinal);
        Assert.Contains("method-denied", response, StringComparison.Ordinal);
        Assert.Empty(_upstream.Received);
    }

    private JsonObject Config() => fx.Config(withRedis: false).WithUpstream("llm", _upstream.Url);

    private string Get(string target, string extraHeaders = "") => Request("GET", target, extraHeaders);

    private string Request(string method, string target, string extraHeaders = "", string? body = null)
    {
        var request = new StringBuilder()
            .Append(method).Append(' ').Append(target).Append(" HTTP/1.1\r\n")
            .Append("Host: gateway.test\r\n")
            .Append("Authorization: Bearer ").Append(_token).Append("\r\n")
            .Append(extraHeaders);
        if (body is not null)
        {
            request.Append("Content-Length: ").Append(Encoding.UTF8.GetByteCount(body)).Append("\r\n");
        }

        return request.Append("Connection: close\r\n\r\n").Append(body).ToString();
    }
}
