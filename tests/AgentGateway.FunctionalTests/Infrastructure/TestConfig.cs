using System.Text.Json.Nodes;

namespace AgentGateway.FunctionalTests.Infrastructure;

/// <summary>The configuration the functional tests share: the shape of config/gateway.example.json
/// pointed at the test's authorization server and upstreams.</summary>
public static class TestConfig
{
    public const string OpenAiKeyVariable = "AGW_TEST_OPENAI_KEY";
    public const string CrmSecretVariable = "AGW_TEST_CRM_SECRET";
    public const string CacheKeyVariable = "AGW_TEST_CACHE_KEY";
    public const string OboSecretVariable = "AGW_TEST_OBO_SECRET";
    public const string McpSecretVariable = "AGW_TEST_MCP_SECRET";

    /// <param name="auth">The authorization server that issues agent and hop tokens.</param>
    /// <param name="llm">The LLM provider upstream.</param>
    /// <param name="crm">The enterprise API upstream.</param>
    /// <param name="anthropicKeyFile">File holding the Anthropic-style key.</param>
    /// <param name="redis">Redis connection string, or null for in-process only.</param>
    public static JsonObject Create(AuthorizationServer auth, Upstream llm, Upstream crm, string anthropicKeyFile, string? redis)
    {
        var gateway = new JsonObject
        {
            ["Inbound"] = new JsonObject
            {
                ["ClockSkew"] = "00:00:30",
                ["Issuers"] = new JsonObject
                {
                    ["corp"] = new JsonObject
                    {
                        ["Authority"] = auth.Issuer,
                        ["Audiences"] = new JsonArray(AuthorizationServer.GatewayAudience),
                        ["AgentClaim"] = "sub",
                    },
                },
                ["Delegation"] = new JsonObject { ["Issuers"] = new JsonArray("corp") },
            },
            ["Agents"] = new JsonObject
            {
                ["support-bot"] = new JsonObject
                {
                    ["Owner"] = "support-team@example.test",
                    ["Description"] = "Answers customer tickets",
                    ["Identities"] = new JsonArray(new JsonObject { ["Issuer"] = "corp", ["Subject"] = Clients.Alpha }),
                    ["Grants"] = new JsonArray("llm", "crm-read", "crm-for-users"),
                },
                ["retired-bot"] = new JsonObject
                {
                    ["Owner"] = "support-team@example.test",
                    ["Identities"] = new JsonArray(new JsonObject { ["Issuer"] = "corp", ["Subject"] = Clients.Beta }),
                    ["ExpiresAt"] = "2020-01-01T00:00:00Z",
                    ["Grants"] = new JsonArray("llm"),
                },
            },
            ["Grants"] = new JsonObject
            {
                ["llm"] = new JsonObject { ["Routes"] = new JsonArray("openai", "anthropic") },
                ["crm-read"] = new JsonObject { ["Routes"] = new JsonArray("crm") },
                ["billing"] = new JsonObject { ["Routes"] = new JsonArray("billing") },
                ["crm-for-users"] = new JsonObject { ["Routes"] = new JsonArray("crm-obo") },
            },
            ["Credentials"] = new JsonObject
            {
                ["openai"] = new JsonObject { ["Kind"] = "ApiKey", ["Header"] = "Authorization", ["Format"] = "Bearer {secret}", ["Secret"] = "env:" + OpenAiKeyVariable },
                ["anthropic"] = new JsonObject { ["Kind"] = "ApiKey", ["Header"] = "x-api-key", ["Format"] = "{secret}", ["Secret"] = "file:" + anthropicKeyFile },
                ["crm"] = new JsonObject
                {
                    ["Kind"] = "OAuthClientCredentials",
                    ["TokenEndpoint"] = auth.TokenEndpoint,
                    ["ClientId"] = Clients.CrmHop,
                    ["ClientSecret"] = "env:" + CrmSecretVariable,
                    ["Scopes"] = new JsonArray("crm.read"),
                },
                ["crm-obo"] = new JsonObject
                {
                    ["Kind"] = "OAuthTokenExchange",
                    ["TokenEndpoint"] = auth.TokenEndpoint,
                    ["ClientId"] = Clients.GatewayExchange,
                    ["ClientSecret"] = "env:" + OboSecretVariable,
                    ["Scopes"] = new JsonArray("crm.read"),
                },
            },
        };
        if (redis is not null)
        {
            gateway["Redis"] = redis;
            gateway["Cache"] = new JsonObject { ["EncryptionKey"] = "env:" + CacheKeyVariable };
        }

        return new JsonObject
        {
            ["ReverseProxy"] = new JsonObject
            {
                ["Routes"] = new JsonObject
                {
                    ["openai"] = Route("/llm/openai/{**rest}", "llm", "/llm/openai", "openai"),
                    ["anthropic"] = Route("/llm/anthropic/{**rest}", "llm", "/llm/anthropic", "anthropic"),
                    ["crm"] = Route("/crm/{**rest}", "crm", "/crm", "crm"),
                    ["billing"] = Route("/billing/{**rest}", "crm", "/billing", "none"),
                    ["crm-obo"] = Route("/crm-obo/{**rest}", "crm", "/crm-obo", "crm-obo"),
                },
                ["Clusters"] = new JsonObject
                {
                    ["llm"] = Cluster(llm.Url),
                    ["crm"] = Cluster(crm.Url),
                },
            },
            ["Gateway"] = gateway,
        };
    }

    /// <summary>Adds a second OAuth hop to the CRM upstream — route <c>crm-b</c>, credential
    /// <c>crm-b</c> for <see cref="Clients.CrmHopSpare"/> — granted with <c>crm-read</c>.</summary>
    public static JsonObject WithSpareCrmHop(this JsonObject config)
    {
        var gateway = config["Gateway"]!;
        var spare = gateway["Credentials"]!["crm"]!.DeepClone().AsObject();
        spare["ClientId"] = Clients.CrmHopSpare;
        gateway["Credentials"]!["crm-b"] = spare;
        gateway["Grants"]!["crm-read"]!["Routes"]!.AsArray().Add("crm-b");
        config["ReverseProxy"]!["Routes"]!["crm-b"] = Route("/crm-b/{**rest}", "crm", "/crm-b", "crm-b");
        return config;
    }

    /// <summary>Adds route <c>mcp</c> (the MCP endpoint, path kept, bodies inspected) to the tool
    /// server at <paramref name="serverUrl"/> with credential <c>mcp-tools</c> (McpOAuth), opened
    /// for support-bot by grant <c>tools</c> — which <paramref name="grant"/> may restrict.</summary>
    public static JsonObject WithMcpHop(this JsonObject config, AuthorizationServer auth, string resource, string serverUrl, JsonObject? grant = null)
    {
        var gateway = config["Gateway"]!;
        gateway["Credentials"]!["mcp-tools"] = new JsonObject
        {
            ["Kind"] = "McpOAuth",
            ["Resource"] = resource,
            ["AuthorizationServers"] = new JsonArray(auth.Issuer),
            ["ClientId"] = Clients.McpGateway,
            ["ClientSecret"] = "env:" + McpSecretVariable,
        };
        grant ??= new JsonObject();
        grant["Routes"] = new JsonArray("mcp");
        gateway["Grants"]!["tools"] = grant;
        gateway["Agents"]!["support-bot"]!["Grants"]!.AsArray().Add("tools");
        config["ReverseProxy"]!["Clusters"]!["mcp"] = new JsonObject
        {
            ["Destinations"] = new JsonObject { ["d1"] = new JsonObject { ["Address"] = serverUrl } },
        };
        config["ReverseProxy"]!["Routes"]!["mcp"] = new JsonObject
        {
            ["ClusterId"] = "mcp",
            ["Match"] = new JsonObject { ["Path"] = "/mcp/{**rest}" },
            ["Metadata"] = new JsonObject { ["Credential"] = "mcp-tools", ["Inspect"] = "Mcp" },
        };
        return config;
    }

    /// <summary>Adds hop <paramref name="name"/>: credential <paramref name="name"/> and route
    /// <c>/{name}/…</c> (prefix removed) to <paramref name="cluster"/>, opened by <paramref name="grant"/>.</summary>
    public static JsonObject WithHop(this JsonObject config, string name, JsonObject credential, string cluster = "crm", string grant = "crm-read")
    {
        var gateway = config["Gateway"]!;
        gateway["Credentials"]![name] = credential;
        gateway["Grants"]![grant]!["Routes"]!.AsArray().Add(name);
        config["ReverseProxy"]!["Routes"]![name] = Route($"/{name}/{{**rest}}", cluster, "/" + name, name);
        return config;
    }

    /// <summary>Points cluster <paramref name="cluster"/> (<c>llm</c> or <c>crm</c>) at a test's own
    /// upstream, and sets its <c>HttpRequest</c> section when given.</summary>
    public static JsonObject WithUpstream(this JsonObject config, string cluster, string url, JsonObject? httpRequest = null)
    {
        var entry = config["ReverseProxy"]!["Clusters"]![cluster]!.AsObject();
        entry["Destinations"]!["d1"]!["Address"] = url;
        if (httpRequest is not null)
        {
            entry["HttpRequest"] = httpRequest;
        }

        return config;
    }

    /// <summary>Adds cluster <paramref name="name"/> with one destination, <paramref name="url"/>.</summary>
    public static JsonObject WithCluster(this JsonObject config, string name, string url)
    {
        config["ReverseProxy"]!["Clusters"]![name] = Cluster(url);
        return config;
    }

    /// <summary>Adds route <paramref name="name"/>: <c>/{name}/…</c> (prefix removed) to cluster
    /// <paramref name="cluster"/> at <paramref name="url"/> (added when missing) with
    /// <paramref name="credential"/> and any other route metadata, opened by grant
    /// <paramref name="grant"/> (the route's name by default; made and given to support-bot when missing).</summary>
    public static JsonObject WithRoute(this JsonObject config, string name, string url, string credential = "crm", JsonObject? metadata = null, string? cluster = null, string? grant = null)
    {
        cluster ??= name;
        grant ??= name;
        var proxy = config["ReverseProxy"]!;
        if (proxy["Clusters"]![cluster] is null)
        {
            config.WithCluster(cluster, url);
        }

        var route = Route($"/{name}/{{**rest}}", cluster, "/" + name, credential);
        foreach (var (key, value) in metadata ?? new JsonObject())
        {
            route["Metadata"]![key] = value?.DeepClone();
        }

        proxy["Routes"]![name] = route;
        var gateway = config["Gateway"]!;
        if (gateway["Grants"]![grant] is JsonObject existing)
        {
            existing["Routes"]!.AsArray().Add(name);
        }
        else
        {
            gateway["Grants"]![grant] = new JsonObject { ["Routes"] = new JsonArray(name) };
            gateway["Agents"]!["support-bot"]!["Grants"]!.AsArray().Add(grant);
        }

        return config;
    }

    /// <summary>Turns on the admin API on a free loopback port, for <see cref="Clients.Operator"/>'s
    /// tokens from <c>corp</c>; <paramref name="extra"/> adds settings (templates, DPoP).</summary>
    public static JsonObject WithAdmin(this JsonObject config, JsonObject? extra = null)
    {
        var admin = new JsonObject
        {
            ["Urls"] = "http://127.0.0.1:0",
            ["Issuer"] = "corp",
            ["Subjects"] = new JsonArray(Clients.Operator),
        };
        foreach (var (key, value) in extra ?? new JsonObject())
        {
            admin[key] = value?.DeepClone();
        }

        config["Gateway"]!["Admin"] = admin;
        return config;
    }

    /// <summary>Two listeners: <c>Http</c>, and <c>Agents</c> over TLS with a server certificate
    /// issued by <paramref name="serverCa"/> — where agents can present client certificates.</summary>
    public static JsonObject WithHttps(this JsonObject config, TestPki serverCa)
    {
        var (certificate, key) = serverCa.WritePem(serverCa.IssueServer());
        config["Kestrel"] = new JsonObject
        {
            ["Endpoints"] = new JsonObject
            {
                ["Http"] = new JsonObject { ["Url"] = "http://127.0.0.1:0" },
                ["Agents"] = new JsonObject
                {
                    ["Url"] = "https://127.0.0.1:0",
                    ["Certificate"] = new JsonObject { ["Path"] = certificate, ["KeyPath"] = key },
                },
            },
        };
        return config;
    }

    /// <summary>Writes the audit trail to <paramref name="path"/>.</summary>
    public static JsonObject WithAudit(this JsonObject config, string path)
    {
        config["Gateway"]!["Audit"] = new JsonObject { ["Path"] = path };
        return config;
    }

    private static JsonObject Route(string path, string cluster, string prefix, string credential) => new()
    {
        ["ClusterId"] = cluster,
        ["Match"] = new JsonObject { ["Path"] = path },
        ["Transforms"] = new JsonArray(new JsonObject { ["PathRemovePrefix"] = prefix }),
        ["Metadata"] = new JsonObject { ["Credential"] = credential },
    };

    private static JsonObject Cluster(string url) => new()
    {
        ["Destinations"] = new JsonObject { ["d1"] = new JsonObject { ["Address"] = url } },
    };
}

/// <summary>The OAuth clients of the test authorization server.</summary>
public static class Clients
{
    /// <summary>The agent support-bot.</summary>
    public const string Alpha = "agent-alpha";

    /// <summary>The agent retired-bot (expired in the inventory).</summary>
    public const string Beta = "agent-beta";

    /// <summary>An operator's client: allowed on the admin API where a test configures it.</summary>
    public const string Operator = "ops-cli";

    /// <summary>Known to the authorization server, unknown to the gateway's inventory.</summary>
    public const string Stranger = "agent-stranger";

    /// <summary>The gateway's own client for the CRM hop.</summary>
    public const string CrmHop = "crm-gateway";

    /// <summary>Like <see cref="CrmHop"/>, for tests that need a hop client of their own
    /// (e.g. with short-lived tokens), so counts do not mix with other tests.</summary>
    public const string CrmHopSpare = "crm-gateway-spare";

    /// <summary>The gateway's client for token exchange. Its id is the gateway's audience: users'
    /// tokens are issued to the gateway, so the gateway may exchange them.</summary>
    public const string GatewayExchange = AuthorizationServer.GatewayAudience;

    /// <summary>The gateway's client for MCP tool servers (allowed to ask for the MCP resource).</summary>
    public const string McpGateway = "mcp-gateway";
}
