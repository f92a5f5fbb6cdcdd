using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using AgentGateway.Configuration;
using AgentGateway.Credentials;
using AgentGateway.Credentials.Caching;
using AgentGateway.Proxy.Audit;
using AgentGateway.Proxy.Database;
using AgentGateway.Proxy.Identity;
using AgentGateway.Proxy.Inspection;
using AgentGateway.Proxy.Inventory;
using AgentGateway.Proxy.Policy;
using AgentGateway.Proxy.Provenance;

namespace AgentGateway.Host;

/// <summary>
/// <c>config/gateway.schema.json</c>, as <c>agentgateway schema</c> writes it: the <c>Gateway</c>
/// section from the settings records each feature binds (their <see cref="SettingAttribute"/>s
/// and defaults), each credential kind from the record its <see cref="ICredentialKind"/> binds.
/// What the gateway adds to YARP's and Kestrel's own sections is not bound to a record of ours
/// (route and cluster metadata, Kestrel's limits), so it is written here.
/// </summary>
internal static class ConfigurationSchema
{
    /// <summary>Records described once under <c>definitions</c>, by the name references use.</summary>
    private static readonly Dictionary<Type, string> Definitions = new()
    {
        [typeof(CacheSettings)] = "cache",
        [typeof(InboundSettings)] = "inbound",
        [typeof(DelegationSettings)] = "delegation",
        [typeof(IssuerSettings)] = "issuer",
        [typeof(AgentSettings)] = "agent",
        [typeof(GrantSettings)] = "grant",
        [typeof(PolicySettings)] = "policy",
        [typeof(AuditSettings)] = "audit",
        [typeof(AdminSettings)] = "admin",
        [typeof(ProvenanceSettings)] = "provenance",
        [typeof(DatabaseSettings)] = "database",
    };

    private static readonly JsonSerializerOptions Output = new()
    {
        WriteIndented = true,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>The schema's text, ending with a newline.</summary>
    /// <param name="kinds">The registered credential kinds, in registration order.</param>
    public static string Generate(IEnumerable<ICredentialKind> kinds)
    {
        var schema = JsonNode.Parse(Outside)!.AsObject();
        var metadata = schema["properties"]!["ReverseProxy"]!["properties"]!["Routes"]!["additionalProperties"]!["properties"]!["Metadata"]!["properties"]!;
        metadata["Inspect"]!["enum"] = Names<BodyKind>();
        metadata["LlmProvider"]!["enum"] = Names<LlmProvider>();
        schema["properties"]!["Gateway"] = Gateway();

        var definitions = JsonNode.Parse(Shapes)!.AsObject();
        foreach (var (type, name) in Definitions)
        {
            definitions[name] = SettingsSchema.Describe(type, Definition);
        }

        definitions["credential"] = Credential(kinds);
        schema["definitions"] = definitions;
        return schema.ToJsonString(Output).ReplaceLineEndings("\n") + "\n";
    }

    private static JsonArray Names<TEnum>()
        where TEnum : struct, Enum => [.. Enum.GetNames<TEnum>().Select(name => (JsonNode)name)];

    private static string? Definition(Type type) => Definitions.GetValueOrDefault(type);

    /// <summary>The sections of <c>Gateway</c> (<see cref="Proxy.Configuration.GatewayConfigLoader.GatewaySections"/>).</summary>
    private static JsonObject Gateway()
    {
        var sections = new JsonObject
        {
            ["Redis"] = new JsonObject
            {
                ["type"] = "string",
                ["description"] = "StackExchange.Redis connection string. Absent: in process only. Changing it needs a restart.",
            },
            ["Cache"] = SettingsSchema.Reference("cache"),
            ["Inbound"] = SettingsSchema.Reference("inbound"),
            ["Agents"] = Map("agent", named: true),
            ["Grants"] = Map("grant", named: false),
            ["Credentials"] = Map("credential", named: true),
            ["Policy"] = SettingsSchema.Reference("policy"),
            ["Audit"] = SettingsSchema.Reference("audit"),
            ["Admin"] = SettingsSchema.Reference("admin"),
            ["Provenance"] = SettingsSchema.Reference("provenance"),
            ["Databases"] = Map("database", named: true, "PostgreSQL databases agents reach on listeners of the gateway's own, by the name they ask for (their 'database'). Agents log in with their own token or client certificate; the gateway logs in with the grant's credential."),
        };
        return new JsonObject { ["type"] = "object", ["additionalProperties"] = false, ["properties"] = sections };
    }

    private static JsonObject Map(string definition, bool named, string? description = null)
    {
        var map = new JsonObject { ["type"] = "object" };
        if (description is not null)
        {
            map["description"] = description;
        }

        if (named)
        {
            map["propertyNames"] = SettingsSchema.Reference("name");
        }

        map["additionalProperties"] = SettingsSchema.Reference(definition);
        return map;
    }

    /// <summary>An entry of <c>Gateway:Credentials</c>: its <c>Kind</c> picks the record it is read as.</summary>
    private static JsonObject Credential(IEnumerable<ICredentialKind> kinds)
    {
        var branches = new JsonArray();
        var names = new JsonArray();
        foreach (var kind in kinds)
        {
            names.Add(kind.Kind.Name);
            branches.Add(new JsonObject
            {
                ["if"] = new JsonObject { ["properties"] = new JsonObject { ["Kind"] = new JsonObject { ["const"] = kind.Kind.Name } } },
                ["then"] = SettingsSchema.Describe(kind.SettingsType, Definition),
            });
        }

        return new JsonObject
        {
            ["type"] = "object",
            ["required"] = new JsonArray("Kind"),
            ["properties"] = new JsonObject { ["Kind"] = new JsonObject { ["enum"] = names } },
            ["allOf"] = branches,
        };
    }

    /// <summary>Shapes many settings share, each the rule of a typed value the loader parses
    /// (<c>SecretReference</c>, <c>HeaderName</c>, a time span, a name others refer to).</summary>
    private const string Shapes = """
        {
          "name": { "type": "string", "pattern": "^[A-Za-z0-9._-]{1,128}$" },
          "timespan": { "type": "string", "pattern": "^(\\d+\\.)?\\d{1,2}:\\d{2}:\\d{2}(\\.\\d+)?$" },
          "secretReference": { "type": "string", "pattern": "^(env:.+|file:.+)$", "description": "env:NAME or file:PATH — never the secret itself." },
          "headerName": { "type": "string", "pattern": "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$" }
        }
        """;

    /// <summary>The file's frame, and what the gateway reads in YARP's and Kestrel's sections.</summary>
    private const string Outside = """
        {
          "$schema": "http://json-schema.org/draft-07/schema#",
          "$id": "https://agentgateway.example/schemas/gateway.schema.json",
          "title": "AgentGateway configuration",
          "description": "YARP's ReverseProxy section plus the Gateway section. Generated from the settings records by 'agentgateway schema'; checked again, with cross-references, by 'agentgateway validate'.",
          "type": "object",
          "properties": {
            "$schema": { "type": "string" },
            "ReverseProxy": {
              "type": "object",
              "description": "YARP's own schema. Only what the gateway adds is described here.",
              "properties": {
                "Routes": {
                  "type": "object",
                  "additionalProperties": {
                    "type": "object",
                    "required": [ "ClusterId", "Match", "Metadata" ],
                    "properties": {
                      "Metadata": {
                        "type": "object",
                        "required": [ "Credential" ],
                        "properties": {
                          "Credential": { "$ref": "#/definitions/name", "description": "A name under Gateway:Credentials, or 'none'. A MtlsClientCertificate credential here must be the one the route's cluster presents." },
                          "Inspect": { "enum": [], "default": "None", "description": "Read, strictly parse and decide on request bodies (MCP JSON-RPC or LLM requests); needed for grants' Mcp and Models." },
                          "LlmProvider": { "enum": [], "default": "OpenAI", "description": "On routes with Inspect = Llm: whose request shapes the route speaks, so grants' Models are decided where that provider reads the model (body, path, query). A path naming a model in another shape is refused." },
                          "Provenance": { "enum": [ "true", "false" ], "default": "false", "description": "Send the upstream a signed assertion of who acted (Gateway:Provenance)." },
                          "Upgrade": { "enum": [ "WebSocket" ], "description": "Let WebSockets open on this route (HTTP/1.1 Upgrade and HTTP/2 extended CONNECT), read frame by frame: each message from the agent counts against the grant's RateLimit, each message to the agent is searched for the gateway's secrets, no compression is negotiated. Absent: every protocol upgrade is refused. Not allowed with Inspect." },
                          "ForwardHeaders": { "type": "string", "pattern": "^[A-Za-z0-9!#$%&'*+.^_`|~ ,;-]+$", "description": "Allow-list mode: only these request headers of the agent (names separated by ',' or ';', case-insensitive) reach the upstream, plus Content-Type, Content-Encoding, Content-Length and what the gateway and the route's transforms add. Credential, identity and gateway control headers cannot be named." }
                        }
                      }
                    }
                  }
                },
                "Clusters": {
                  "type": "object",
                  "additionalProperties": {
                    "type": "object",
                    "properties": {
                      "Metadata": {
                        "type": "object",
                        "properties": {
                          "ClientCertificate": { "$ref": "#/definitions/name", "description": "A credential of Kind MtlsClientCertificate: every connection to this cluster presents it. Destinations must be https." }
                        }
                      },
                      "HttpClient": {
                        "type": "object",
                        "properties": { "DangerousAcceptAnyServerCertificate": { "const": false, "description": "Refused: trust a private CA with ServerCertificateAuthority instead." } }
                      }
                    }
                  }
                }
              }
            },
            "Kestrel": {
              "type": "object",
              "description": "Kestrel's own section. Endpoints and certificates are Kestrel's; Limits is bound by the gateway (Kestrel does not read it from configuration).",
              "properties": {
                "Limits": {
                  "type": "object",
                  "properties": {
                    "RequestHeadersTimeout": { "$ref": "#/definitions/timespan", "default": "00:00:10", "description": "Time a client has to send its request headers; ends a slowloris. The gateway's default is 10 s (Kestrel's is 30 s)." },
                    "KeepAliveTimeout": { "$ref": "#/definitions/timespan", "default": "00:02:10" },
                    "MaxRequestHeadersTotalSize": { "type": "integer", "minimum": 1024, "default": 32768 },
                    "MaxRequestHeaderCount": { "type": "integer", "minimum": 1, "default": 100 },
                    "MaxRequestLineSize": { "type": "integer", "minimum": 1024, "default": 8192 },
                    "MaxRequestBodySize": { "type": [ "integer", "null" ], "minimum": 0, "default": 30000000, "description": "For every route; a route's own ReverseProxy:Routes:{id}:MaxRequestBodySize narrows it." },
                    "MaxConcurrentConnections": { "type": [ "integer", "null" ], "minimum": 1 }
                  }
                }
              }
            }
          }
        }
        """;
}
