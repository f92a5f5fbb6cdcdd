using System.Text.Json.Nodes;

namespace AgentGateway.Bench;

/// <summary>The gateway configurations under test.</summary>
internal static class BenchConfig
{
    public const string ToolCallBody = """{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"lookup_customer","arguments":{"id":"42"}}}""";

    /// <summary>The header the core route's API key goes in (the upstream checks one arrived).</summary>
    public const string ApiKeyHeader = "X-Api-Key";

    /// <summary>
    /// The identity layer alone: the agent's JWT validated (and the result cached), everything it
    /// brought stripped, a grant checked, an API key injected. No Redis, no trace export, no audit.
    /// </summary>
    public static JsonObject Core(string issuer, string upstream, string apiKeyVariable) => new()
    {
        ["ReverseProxy"] = new JsonObject
        {
            ["Routes"] = new JsonObject { ["api"] = Route("/api/{**rest}", "key", inspect: null) },
            ["Clusters"] = new JsonObject { ["c"] = new JsonObject { ["Destinations"] = new JsonObject { ["d"] = new JsonObject { ["Address"] = upstream } } } },
        },
        ["Gateway"] = new JsonObject
        {
            ["Inbound"] = new JsonObject
            {
                ["ClockSkew"] = "00:00:30",
                ["Issuers"] = new JsonObject
                {
                    ["bench"] = new JsonObject { ["Issuer"] = issuer, ["JwksUri"] = issuer + "jwks", ["Audiences"] = new JsonArray("agentgateway"), ["Algorithms"] = new JsonArray("ES256") },
                },
            },
            ["Agents"] = new JsonObject
            {
                ["bench-agent"] = new JsonObject
                {
                    ["Owner"] = "bench@example.test",
                    ["Identities"] = new JsonArray(new JsonObject { ["Issuer"] = "bench", ["Subject"] = "bench-agent" }),
                    ["Grants"] = new JsonArray("api"),
                },
            },
            ["Grants"] = new JsonObject
            {
                ["api"] = new JsonObject { ["Routes"] = new JsonArray("api"), ["Methods"] = new JsonArray("GET"), ["Paths"] = new JsonArray("/api/**") },
            },
            ["Credentials"] = new JsonObject
            {
                ["key"] = new JsonObject { ["Kind"] = "ApiKey", ["Header"] = ApiKeyHeader, ["Format"] = "{secret}", ["Secret"] = "env:" + apiKeyVariable },
            },
        },
    };

    /// <summary>Kestrel endpoints instead of <c>--urls</c>: HTTP/1.1 on one port and HTTP/2
    /// cleartext on another (Kestrel answers prior-knowledge h2c only on an HTTP/2-only endpoint).</summary>
    public static JsonObject Listeners(JsonObject config, int http, int h2c)
    {
        config["Kestrel"] = new JsonObject
        {
            ["Endpoints"] = new JsonObject
            {
                ["http"] = new JsonObject { ["Url"] = $"http://127.0.0.1:{http}", ["Protocols"] = "Http1" },
                ["h2c"] = new JsonObject { ["Url"] = $"http://127.0.0.1:{h2c}", ["Protocols"] = "Http2" },
            },
        };
        return config;
    }

    /// <summary>The full pipeline, as an operator would run it: a cached OAuth hop token shared
    /// through Redis, token exchange on behalf of users, an inspected MCP route, every span
    /// exported over OTLP, the audit log.</summary>
    public static JsonObject Gateway(string issuer, string upstream, string? redis, string? otlp, string? audit, string hopClientId, string hopSecretVariable)
    {
        var gateway = new JsonObject
        {
            ["Inbound"] = new JsonObject
            {
                ["ClockSkew"] = "00:00:30",
                ["Issuers"] = new JsonObject
                {
                    ["bench"] = new JsonObject { ["Issuer"] = issuer, ["JwksUri"] = issuer + "jwks", ["Audiences"] = new JsonArray("agentgateway"), ["Algorithms"] = new JsonArray("ES256") },
                },
                ["Delegation"] = new JsonObject { ["Issuers"] = new JsonArray("bench") },
            },
            ["Agents"] = new JsonObject
            {
                ["bench-agent"] = new JsonObject
                {
                    ["Owner"] = "bench@example.test",
                    ["Identities"] = new JsonArray(new JsonObject { ["Issuer"] = "bench", ["Subject"] = "bench-agent" }),
                    ["Grants"] = new JsonArray("api", "tools", "for-users"),
                },
            },
            ["Grants"] = new JsonObject
            {
                ["api"] = new JsonObject { ["Routes"] = new JsonArray("api"), ["Methods"] = new JsonArray("GET"), ["Paths"] = new JsonArray("/api/**") },
                ["tools"] = new JsonObject { ["Routes"] = new JsonArray("mcp"), ["Mcp"] = new JsonObject { ["Tools"] = new JsonArray("lookup_*") } },
                ["for-users"] = new JsonObject { ["Routes"] = new JsonArray("obo"), ["Methods"] = new JsonArray("GET"), ["RequireDelegation"] = true },
            },
            ["Credentials"] = new JsonObject
            {
                ["crm"] = new JsonObject { ["Kind"] = "OAuthClientCredentials", ["TokenEndpoint"] = issuer + "token", ["ClientId"] = hopClientId, ["ClientSecret"] = "env:" + hopSecretVariable },
                ["obo"] = new JsonObject { ["Kind"] = "OAuthTokenExchange", ["TokenEndpoint"] = issuer + "token", ["ClientId"] = "obo-gateway", ["ClientSecret"] = "env:AGW_BENCH_OBO_SECRET" },
            },
        };
        if (redis is not null)
        {
            gateway["Redis"] = redis;
            gateway["Cache"] = new JsonObject { ["EncryptionKey"] = "env:AGW_BENCH_CACHE_KEY" };
        }

        if (audit is not null)
        {
            gateway["Audit"] = new JsonObject { ["Path"] = audit };
        }

        var config = new JsonObject
        {
            ["ReverseProxy"] = new JsonObject
            {
                ["Routes"] = new JsonObject
                {
                    ["api"] = Route("/api/{**rest}", "crm", inspect: null),
                    ["mcp"] = Route("/mcp", "crm", inspect: "Mcp"),
                    ["obo"] = Route("/obo/{**rest}", "obo", inspect: null),
                },
                ["Clusters"] = new JsonObject { ["c"] = new JsonObject { ["Destinations"] = new JsonObject { ["d"] = new JsonObject { ["Address"] = upstream } } } },
            },
            ["Gateway"] = gateway,
        };
        if (otlp is not null)
        {
            config["OTEL_EXPORTER_OTLP_ENDPOINT"] = otlp;
            config["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf";
        }

        return config;
    }

    private static JsonObject Route(string path, string credential, string? inspect)
    {
        var metadata = new JsonObject { ["Credential"] = credential };
        if (inspect is not null)
        {
            metadata["Inspect"] = inspect;
        }

        return new JsonObject { ["ClusterId"] = "c", ["Match"] = new JsonObject { ["Path"] = path }, ["Metadata"] = metadata };
    }
}
