using System.Reflection;
using System.Text.Json;
using AgentGateway.Credentials.ApiKeys;
using AgentGateway.Credentials.AwsSigV4;
using AgentGateway.Credentials.Caching;
using AgentGateway.Credentials.Certificates;
using AgentGateway.Credentials.ManagedIdentity;
using AgentGateway.Credentials.Mcp;
using AgentGateway.Credentials.OAuth;
using AgentGateway.FunctionalTests.Infrastructure;
using AgentGateway.Host;
using AgentGateway.Proxy.Audit;
using AgentGateway.Proxy.Identity;
using AgentGateway.Proxy.Inventory;
using AgentGateway.Proxy.Policy;
using AgentGateway.Proxy.Provenance;

namespace AgentGateway.FunctionalTests.Configuration;

/// <summary><c>agentgateway validate</c>: every problem, with its path, in one run.</summary>
public sealed class ValidateCommandTests
{
    private static readonly string RepositoryRoot = Repository.Root;

    [Fact]
    public async Task Validate_lists_every_problem_with_its_path_and_exits_non_zero()
    {
        const string pastedSecret = "sk-pasted-secret-canary-000000000000";
        var file = await WriteAsync($$"""
        {
          "ReverseProxy": {
            "Routes": {
              "no-credential": { "ClusterId": "api", "Match": { "Path": "/a/{**rest}" } },
              "bad-cluster": { "ClusterId": "missing", "Match": { "Path": "/b/{**rest}" }, "Metadata": { "Credential": "ghost" } },
              "authorized": { "ClusterId": "api", "Match": { "Path": "/c/{**rest}" }, "Metadata": { "Credential": "none" }, "AuthorizationPolicy": "default" }
            },
            "Clusters": { "api": { "Destinations": { "d": { "Address": "https://api.example.com/" } } } }
          },
          "Gateway": {
            "Agnets": {},
            "Inbound": {
              "ClockSkew": "01:00:00",
              "Issuers": { "corp": { "Authority": "http://idp.example.com/", "Audiences": [], "Algorithms": [ "HS256" ] } }
            },
            "Agents": {
              "bot": { "Identities": [ { "Issuer": "elsewhere", "Subject": "x" } ], "Grants": [ "nope" ] }
            },
            "Grants": { "g": { "Routes": [ "no-such-route" ] } },
            "Credentials": {
              "pasted": { "Kind": "ApiKey", "Secret": "{{pastedSecret}}" },
              "cc": { "Kind": "OAuthClientCredentials", "TokenEndpoint": "http://idp.example.com/token", "ClientSecret": "env:AGW_TEST_SURELY_UNSET_VARIABLE", "Scopes": [ "a b" ] },
              "odd": { "Kind": "Telepathy" },
              "tools": { "Kind": "McpOAuth", "Resource": "http://tools.example.com/mcp", "ClientId": "gw", "ClientSecret": "env:X", "TokenEndpoint": "https://idp.example.com/token" }
            }
          }
        }
        """);
        var (code, stdout, stderr) = await RunAsync("validate", file);

        Assert.Equal(GatewayCommand.ConfigInvalid, code);
        Assert.Empty(stdout);
        string[] expected =
        [
            "ReverseProxy:Routes:no-credential: route 'no-credential' names no hop credential",
            "ReverseProxy:Routes:bad-cluster:ClusterId: names cluster 'missing'",
            "ReverseProxy:Routes:bad-cluster:Metadata:Credential: names credential 'ghost'",
            "ReverseProxy:Routes:authorized:AuthorizationPolicy: is not used by the gateway",
            "Gateway:Agnets: unknown setting",
            "Gateway:Inbound:ClockSkew:",
            "Gateway:Inbound:Issuers:corp:Authority: must use https",
            "Gateway:Inbound:Issuers:corp:Audiences:",
            "Gateway:Inbound:Issuers:corp:Algorithms:0: 'HS256' is not allowed",
            "Gateway:Agents:bot:Owner: is required",
            "Gateway:Agents:bot:Grants:0: names grant 'nope'",
            "Gateway:Agents:bot:Identities:0:Issuer: names issuer 'elsewhere'",
            "Gateway:Grants:g:Routes:0: names route 'no-such-route'",
            "Gateway:Credentials:pasted:Secret: must be a secret reference",
            "Gateway:Credentials:cc:TokenEndpoint: must use https",
            "Gateway:Credentials:cc:ClientId: is required",
            "Gateway:Credentials:cc:Scopes:0:",
            "Gateway:Credentials:odd:Kind: 'Telepathy' is not a credential kind",
            "Gateway:Credentials:tools:TokenEndpoint: unknown setting",
            "Gateway:Credentials:tools:Resource: must use https",
            "Gateway:Credentials:tools:AuthorizationServers: name at least one issuer",
        ];
        foreach (var line in expected)
        {
            Assert.Contains(line, stderr, StringComparison.Ordinal);
        }

        Assert.DoesNotContain(pastedSecret, stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_value_of_the_wrong_type_is_named_at_its_own_path_and_never_quoted()
    {
        // Values an operator might paste into the wrong key; none may be echoed back.
        const string pasted = "sk-pasted-into-a-number-000000000000";
        var file = await WriteAsync($$"""
        {
          "ReverseProxy": {
            "Routes": { "r": { "ClusterId": "c", "Match": { "Path": "/r/{**rest}" }, "Metadata": { "Credential": "none" } } },
            "Clusters": { "c": { "Destinations": { "d": { "Address": "https://api.example.com/" } }, "HttpRequest": { "Version": "2", "ActivityTimeout": "{{pasted}}" } } }
          },
          "Gateway": {
            "Inbound": { "ClockSkew": "{{pasted}}" },
            "Agents": { "bot": { "Owner": "o@example.test", "ExpiresAt": "{{pasted}}", "Identities": [ { "Issuer": "corp", "Subject": "x" } ], "Grants": [ "g" ] } },
            "Grants": { "g": { "Routes": [ "r" ], "RateLimit": { "Requests": "{{pasted}}", "Per": "00:01:00" } } }
          }
        }
        """);
        var (code, _, stderr) = await RunAsync("validate", file);

        Assert.Equal(GatewayCommand.ConfigInvalid, code);
        string[] expected =
        [
            "ReverseProxy:Clusters:c:HttpRequest:Version: cannot be read as a version (1.1, 2.0 or 3.0)",
            "ReverseProxy:Clusters:c:HttpRequest:ActivityTimeout: cannot be read as a time span (hh:mm:ss)",
            "Gateway:Inbound:ClockSkew: cannot be read as a time span (hh:mm:ss)",
            "Gateway:Agents:bot:ExpiresAt: cannot be read as a date and time (ISO 8601)",
            "Gateway:Grants:g:RateLimit:Requests: cannot be read as a whole number",
            // The schema check names the same settings, not just the agent or grant holding them.
            "Gateway:Agents:bot:ExpiresAt: is not a date and time (ISO 8601) (schema)",
            "Gateway:Grants:g:RateLimit:Requests: is not a whole number (schema)",
        ];
        foreach (var line in expected)
        {
            Assert.True(stderr.Contains(line, StringComparison.Ordinal), $"missing '{line}' in:\n{stderr}");
        }

        Assert.DoesNotContain("a value here cannot be read", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("wrong shape", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain(pasted, stderr, StringComparison.Ordinal);
        // The settings beside a bad value are still read: no cascade of "is required".
        Assert.DoesNotContain("Gateway:Agents:bot:Owner", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Gateway:Grants:g:Routes", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Validate_also_checks_the_file_against_the_schema_editors_use()
    {
        var file = await WriteAsync("""
        {
          // comments are allowed, as in every configuration file
          "ReverseProxy": {
            "Routes": { "r": { "ClusterId": "c", "Match": { "Path": "/r/{**rest}" }, "Metadata": { "Credential": "none", "Inspect": "Xml" } } },
            "Clusters": { "c": { "Destinations": { "d": { "Address": "https://api.example.com/" } } } }
          },
          "Gateway": { "Inbound": { "ClockSkew": "soon" } }
        }
        """);
        var (code, _, stderr) = await RunAsync("validate", file);

        Assert.Equal(GatewayCommand.ConfigInvalid, code);
        Assert.Contains("Gateway:Inbound:ClockSkew: does not have the expected format (schema)", stderr, StringComparison.Ordinal);
        // The semantic rules still run and go further.
        Assert.Contains("ReverseProxy:Routes:r:Metadata:Inspect: 'Xml' is not one of", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Rules_the_settings_records_declare_reach_validate_through_the_generated_schema()
    {
        // Each rule below is written once, as a [Setting] on a settings record, and reaches
        // config/gateway.schema.json only through `agentgateway schema`.
        const string pasted = "hmac-key-pasted-canary";
        var file = await WriteAsync($$"""
        {
          "ReverseProxy": {
            "Routes": { "r": { "ClusterId": "c", "Match": { "Path": "/r/{**rest}" }, "Metadata": { "Credential": "none" } } },
            "Clusters": { "c": { "Destinations": { "d": { "Address": "https://api.example.com/" } } } }
          },
          "Gateway": {
            "Inbound": { "Spiffe": { "TrustDomain": "Example.ORG" }, "MaxTokenBytes": 100 },
            "Agents": { "bot": { "Identities": [], "Grants": [ "g" ] } },
            "Grants": { "g": { "Routes": [ "r" ], "Methods": [ "FETCH" ] } },
            "Audit": { "Key": "{{pasted}}" }
          }
        }
        """);
        var (code, _, stderr) = await RunAsync("validate", file);

        Assert.Equal(GatewayCommand.ConfigInvalid, code);
        string[] expected =
        [
            "Gateway:Inbound:Spiffe:TrustDomain: does not have the expected format (schema)",
            "Gateway:Inbound:MaxTokenBytes: is below the lowest value allowed (schema)",
            "Gateway:Agents:bot:Owner: a required setting is missing (schema)",
            "Gateway:Agents:bot:Identities: has fewer entries than required (schema)",
            "Gateway:Grants:g:Methods:0: has an entry that is not allowed here (schema)",
            "Gateway:Audit:Key: does not have the expected format (schema)",
        ];
        foreach (var line in expected)
        {
            Assert.True(stderr.Contains(line, StringComparison.Ordinal), $"missing '{line}' in:\n{stderr}");
        }

        Assert.DoesNotContain(pasted, stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Validate_reports_a_secret_reference_that_does_not_resolve()
    {
        var file = await WriteAsync("""
        {
          "ReverseProxy": {
            "Routes": { "r": { "ClusterId": "c", "Match": { "Path": "/r/{**rest}" }, "Metadata": { "Credential": "k" } } },
            "Clusters": { "c": { "Destinations": { "d": { "Address": "https://api.example.com/" } } } }
          },
          "Gateway": { "Credentials": { "k": { "Kind": "ApiKey", "Secret": "file:/nonexistent/agentgateway/key" } } }
        }
        """);
        var (code, _, stderr) = await RunAsync("validate", file);

        Assert.Equal(GatewayCommand.ConfigInvalid, code);
        Assert.Contains("Gateway:Credentials:k:Secret: secret file '/nonexistent/agentgateway/key' does not exist", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Private_key_jwt_settings_are_checked_at_load()
    {
        var garbage = Path.GetTempFileName();
        await File.WriteAllTextAsync(garbage, "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n");
        var rsaKey = Path.GetTempFileName();
        using (var rsa = System.Security.Cryptography.RSA.Create(2048))
        {
            await File.WriteAllTextAsync(rsaKey, rsa.ExportPkcs8PrivateKeyPem());
        }

        var file = await WriteAsync($$"""
        {
          "ReverseProxy": {
            "Routes": { "r": { "ClusterId": "c", "Match": { "Path": "/r/{**rest}" }, "Metadata": { "Credential": "garbage" } } },
            "Clusters": { "c": { "Destinations": { "d": { "Address": "https://api.example.com/" } } } }
          },
          "Gateway": { "Credentials": {
            "garbage": { "Kind": "OAuthClientCredentials", "TokenEndpoint": "https://idp.example.com/token", "ClientId": "a", "ClientAuthentication": "PrivateKeyJwt", "PrivateKey": "file:{{garbage}}" },
            "mismatch": { "Kind": "OAuthClientCredentials", "TokenEndpoint": "https://idp.example.com/token", "ClientId": "a", "ClientAuthentication": "PrivateKeyJwt", "PrivateKey": "file:{{rsaKey}}", "SigningAlgorithm": "ES256" },
            "both": { "Kind": "OAuthClientCredentials", "TokenEndpoint": "https://idp.example.com/token", "ClientId": "a", "ClientAuthentication": "PrivateKeyJwt", "PrivateKey": "file:{{rsaKey}}", "ClientSecret": "env:X" },
            "stray": { "Kind": "OAuthClientCredentials", "TokenEndpoint": "https://idp.example.com/token", "ClientId": "a", "ClientSecret": "env:X", "SigningAlgorithm": "RS256" }
          } }
        }
        """);
        var (code, _, stderr) = await RunAsync("validate", file);

        Assert.Equal(GatewayCommand.ConfigInvalid, code);
        Assert.Contains("Gateway:Credentials:garbage:PrivateKey: does not hold a PEM-encoded RSA or EC private key", stderr, StringComparison.Ordinal);
        Assert.Contains("Gateway:Credentials:mismatch:SigningAlgorithm: 'ES256' cannot be used with an RSA key", stderr, StringComparison.Ordinal);
        Assert.Contains("Gateway:Credentials:both:ClientSecret: is not used here", stderr, StringComparison.Ordinal);
        Assert.Contains("Gateway:Credentials:stray:SigningAlgorithm: is not used here", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("PRIVATE KEY", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Client_certificates_go_only_to_https_clusters_that_name_them()
    {
        using var pki = AgentGateway.FunctionalTests.Infrastructure.TestPki.Create("validate CA");
        var (certificate, key) = pki.WritePem(pki.IssueClient("gateway"));
        var file = await WriteAsync($$"""
        {
          "ReverseProxy": {
            "Routes": {
              "cert-elsewhere": { "ClusterId": "plain", "Match": { "Path": "/a/{**rest}" }, "Metadata": { "Credential": "tls" } }
            },
            "Clusters": {
              "plain": { "Destinations": { "d": { "Address": "https://api.example.com/" } } },
              "cleartext": { "Destinations": { "d": { "Address": "http://127.0.0.1:9/" } }, "Metadata": { "ClientCertificate": "tls" } },
              "wrong-kind": { "Destinations": { "d": { "Address": "https://api.example.com/" } }, "Metadata": { "ClientCertificate": "key" } },
              "trusting": { "Destinations": { "d": { "Address": "https://api.example.com/" } }, "HttpClient": { "DangerousAcceptAnyServerCertificate": true } }
            }
          },
          "Gateway": { "Credentials": {
            "tls": { "Kind": "MtlsClientCertificate", "Certificate": "file:{{certificate}}", "PrivateKey": "file:{{key}}" },
            "key": { "Kind": "ApiKey", "Secret": "file:{{key}}" },
            "mismatched": { "Kind": "MtlsClientCertificate", "Certificate": "file:{{certificate}}", "PrivateKey": "file:{{certificate}}" }
          } }
        }
        """);
        var (code, _, stderr) = await RunAsync("validate", file);

        Assert.Equal(GatewayCommand.ConfigInvalid, code);
        Assert.Contains("ReverseProxy:Routes:cert-elsewhere:Metadata:Credential: credential 'tls' is a client certificate", stderr, StringComparison.Ordinal);
        Assert.Contains("ReverseProxy:Clusters:cleartext:Destinations:d:Address: must be https", stderr, StringComparison.Ordinal);
        Assert.Contains("ReverseProxy:Clusters:wrong-kind:Metadata:ClientCertificate: names credential 'key' of kind ApiKey", stderr, StringComparison.Ordinal);
        Assert.Contains("ReverseProxy:Clusters:trusting:HttpClient:DangerousAcceptAnyServerCertificate: is refused", stderr, StringComparison.Ordinal);
        Assert.Contains("Gateway:Credentials:mismatched:", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("PRIVATE KEY", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Forward_headers_and_public_origins_are_checked_at_load()
    {
        var file = await WriteAsync("""
        {
          "ReverseProxy": {
            "Routes": {
              "leaky": { "ClusterId": "c", "Match": { "Path": "/a/{**rest}" }, "Metadata": { "Credential": "none", "ForwardHeaders": "Accept, X-Api-Key, X_WebAuth_User, Agent-Task" } },
              "empty": { "ClusterId": "c", "Match": { "Path": "/b/{**rest}" }, "Metadata": { "Credential": "none", "ForwardHeaders": " ; " } },
              "fine": { "ClusterId": "c", "Match": { "Path": "/c/{**rest}" }, "Metadata": { "Credential": "none", "ForwardHeaders": "Accept;If-Match" } }
            },
            "Clusters": { "c": { "Destinations": { "d": { "Address": "https://api.example.com/" } } } }
          },
          "Gateway": {
            "Inbound": { "PublicOrigins": [ "gateway.example.com", "https://gateway.example.com/base", "ftp://gateway.example.com", "https://user@gateway.example.com", "https://gateway.example.com:99999", "https://gateway.example.com" ] },
            "Admin": { "PublicOrigins": [ "https://admin.example.com?x=1" ] }
          }
        }
        """);
        var (code, _, stderr) = await RunAsync("validate", file);

        Assert.Equal(GatewayCommand.ConfigInvalid, code);
        Assert.Contains("ReverseProxy:Routes:leaky:Metadata:ForwardHeaders: 'X-Api-Key' carries credentials or identity", stderr, StringComparison.Ordinal);
        Assert.Contains("ReverseProxy:Routes:leaky:Metadata:ForwardHeaders: 'X_WebAuth_User' carries credentials or identity", stderr, StringComparison.Ordinal);
        Assert.Contains("ReverseProxy:Routes:leaky:Metadata:ForwardHeaders: 'Agent-Task' is addressed to the gateway itself", stderr, StringComparison.Ordinal);
        Assert.Contains("ReverseProxy:Routes:empty:Metadata:ForwardHeaders: names no header", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("ReverseProxy:Routes:fine:", stderr, StringComparison.Ordinal);
        Assert.Contains("Gateway:Inbound:PublicOrigins:0: must be an absolute http or https URI", stderr, StringComparison.Ordinal);
        Assert.Contains("Gateway:Inbound:PublicOrigins:1: must be an origin only", stderr, StringComparison.Ordinal);
        Assert.Contains("Gateway:Inbound:PublicOrigins:2: must be an absolute http or https URI", stderr, StringComparison.Ordinal);
        Assert.Contains("Gateway:Inbound:PublicOrigins:3: must not carry user information", stderr, StringComparison.Ordinal);
        Assert.Contains("Gateway:Inbound:PublicOrigins:4: has an invalid port", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Gateway:Inbound:PublicOrigins:5", stderr, StringComparison.Ordinal);
        Assert.Contains("Gateway:Admin:PublicOrigins:0: must be an origin only", stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("00:00:00.500")]
    [InlineData("00:10:00")]
    public async Task A_revocations_max_age_outside_one_second_to_five_minutes_is_refused(string maxAge)
    {
        var file = await WriteAsync($$"""
        {
          "ReverseProxy": { "Routes": {}, "Clusters": {} },
          "Gateway": { "Admin": { "RevocationsMaxAge": "{{maxAge}}" } }
        }
        """);
        var (code, _, stderr) = await RunAsync("validate", file);

        Assert.Equal(GatewayCommand.ConfigInvalid, code);
        Assert.Contains("Gateway:Admin:RevocationsMaxAge: must be between 00:00:01 and 00:05:00", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Grants_and_policy_are_checked_at_load()
    {
        var file = await WriteAsync("""
        {
          "ReverseProxy": {
            "Routes": {
              "plain": { "ClusterId": "c", "Match": { "Path": "/p/{**rest}" }, "Metadata": { "Credential": "none" } },
              "odd": { "ClusterId": "c", "Match": { "Path": "/o/{**rest}" }, "Metadata": { "Credential": "none", "Inspect": "Xml" } }
            },
            "Clusters": { "c": { "Destinations": { "d": { "Address": "https://api.example.com/" } } } }
          },
          "Gateway": {
            "Grants": {
              "g": {
                "Routes": [ "plain" ],
                "Methods": [ "get" ],
                "Paths": [ "no-slash" ],
                "Mcp": { "Tools": [ "bad tool" ], "Tolls": [], "ServerRequests": [ "sampling/createMessage", "sampling/create" ] },
                "Models": [ "gpt-*" ],
                "RateLimit": { "Requests": 0 },
                "Hours": [ { "From": "9:00", "To": "17:00", "TimeZone": "Mars/Olympus" } ]
              }
            },
            "Policy": {
              "MaxInspectedBodyBytes": 10,
              "MaxServerEventBytes": 0,
              "Separation": { "r": { "After": [ "nothing-by-this-name" ], "Deny": [ "g" ] } }
            }
          }
        }
        """);
        var (code, _, stderr) = await RunAsync("validate", file);

        Assert.Equal(GatewayCommand.ConfigInvalid, code);
        string[] expected =
        [
            "ReverseProxy:Routes:odd:Metadata:Inspect: 'Xml' is not one of",
            "Gateway:Grants:g:Methods:0: 'get' is not one of",
            "Gateway:Grants:g:Paths:0: a path pattern starts with '/'",
            "Gateway:Grants:g:Mcp:Tools:0: a tool pattern is a tool name",
            "Gateway:Grants:g:Mcp:Tolls: unknown setting",
            "Gateway:Grants:g:Mcp:ServerRequests:1: 'sampling/create' is not a request an MCP server sends a client",
            "Gateway:Grants:g:Mcp: route 'plain' does not inspect MCP bodies",
            "Gateway:Grants:g:Models: route 'plain' does not inspect LLM bodies",
            "Gateway:Grants:g:RateLimit: Requests must be at least 1",
            "Gateway:Grants:g:Hours:0:From: must be HH:mm",
            "Gateway:Grants:g:Hours:0:TimeZone: 'Mars/Olympus' is not a time zone",
            "Gateway:Policy:MaxInspectedBodyBytes: must be between",
            "Gateway:Policy:MaxServerEventBytes: must be between",
            "Gateway:Policy:Separation:r:After:0: 'nothing-by-this-name' is neither a grant nor a grant label",
        ];
        foreach (var line in expected)
        {
            Assert.Contains(line, stderr, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData(null, "Gateway:Cache:EncryptionKey: is required when Gateway:Redis is set")]
    [InlineData("c2hvcnQ=", "Gateway:Cache:EncryptionKey: must hold exactly 32 bytes")]
    [InlineData("not base64 at all!", "Gateway:Cache:EncryptionKey: must hold exactly 32 bytes")]
    public async Task Redis_without_a_usable_encryption_key_is_refused(string? key, string expected)
    {
        const string variable = "AGW_TEST_VALIDATE_CACHE_KEY";
        Environment.SetEnvironmentVariable(variable, key);
        var cache = key is null ? "" : $$""", "Cache": { "EncryptionKey": "env:{{variable}}" }""";
        var file = await WriteAsync($$"""
        {
          "ReverseProxy": {
            "Routes": { "r": { "ClusterId": "c", "Match": { "Path": "/r/{**rest}" }, "Metadata": { "Credential": "none" } } },
            "Clusters": { "c": { "Destinations": { "d": { "Address": "https://api.example.com/" } } } }
          },
          "Gateway": { "Redis": "127.0.0.1:1"{{cache}} }
        }
        """);
        var (code, _, stderr) = await RunAsync("validate", file);

        Assert.Equal(GatewayCommand.ConfigInvalid, code);
        Assert.Contains(expected, stderr, StringComparison.Ordinal);
        if (key is not null)
        {
            Assert.DoesNotContain(key, stderr, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Validate_opens_no_connection_to_the_configured_Redis()
    {
        // A listener stands where Redis is configured: any connection attempt lands in its backlog.
        using var redis = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        redis.Start();
        const string variable = "AGW_TEST_VALIDATE_NO_CONNECT_KEY";
        Environment.SetEnvironmentVariable(variable, Convert.ToBase64String(new byte[32]));
        var file = await WriteAsync($$"""
        {
          "ReverseProxy": {
            "Routes": { "r": { "ClusterId": "c", "Match": { "Path": "/r/{**rest}" }, "Metadata": { "Credential": "none" } } },
            "Clusters": { "c": { "Destinations": { "d": { "Address": "https://api.example.com/" } } } }
          },
          "Gateway": {
            "Redis": "127.0.0.1:{{((System.Net.IPEndPoint)redis.LocalEndpoint).Port}},connectTimeout=5000",
            "Cache": { "EncryptionKey": "env:{{variable}}" }
          }
        }
        """);

        var (code, stdout, stderr) = await RunAsync("validate", file);

        Assert.True(code == GatewayCommand.Ok, stderr);
        Assert.Contains("valid", stdout, StringComparison.Ordinal);
        Assert.False(redis.Pending(), "validate connected to the configured Redis");
    }

    [Fact]
    public async Task The_shipped_example_configuration_is_valid()
    {
        var secretFile = Path.GetTempFileName();
        await File.WriteAllTextAsync(secretFile, "example-secret");
        var example = await File.ReadAllTextAsync(Path.Combine(RepositoryRoot, "config", "gateway.example.json"));
        var keyFile = Path.GetTempFileName();
        using (var key = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256))
        {
            await File.WriteAllTextAsync(keyFile, key.ExportPkcs8PrivateKeyPem());
        }

        using var pki = TestPki.Create("example-ca");
        var (certificate, certificateKey) = pki.WritePem(pki.IssueServer());
        var file = await WriteAsync(example
            .Replace("/run/secrets/crm-client-secret", secretFile, StringComparison.Ordinal)
            .Replace("/run/secrets/tools-client-key.pem", keyFile, StringComparison.Ordinal)
            .Replace("/var/run/secrets/eks.amazonaws.com/serviceaccount/token", secretFile, StringComparison.Ordinal)
            .Replace("/run/secrets/gateway-pg.crt", certificate, StringComparison.Ordinal)
            .Replace("/run/secrets/gateway-pg.key", certificateKey, StringComparison.Ordinal)
            .Replace("/run/secrets/orders-db-ca.crt", pki.WriteAuthorityPem(), StringComparison.Ordinal));
        Environment.SetEnvironmentVariable("OPENAI_API_KEY", "example-key");
        Environment.SetEnvironmentVariable("ORDERS_DB_PASSWORD", "example-password");

        var (code, stdout, stderr) = await RunAsync("validate", file);

        Assert.True(code == GatewayCommand.Ok, stderr);
        Assert.Contains("valid", stdout, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(typeof(InboundSettings), "inbound")]
    [InlineData(typeof(IssuerSettings), "issuer")]
    [InlineData(typeof(AgentSettings), "agent")]
    [InlineData(typeof(GrantSettings), "grant")]
    [InlineData(typeof(CacheSettings), "cache")]
    [InlineData(typeof(DelegationSettings), "delegation")]
    [InlineData(typeof(PolicySettings), "policy")]
    [InlineData(typeof(AuditSettings), "audit")]
    [InlineData(typeof(AdminSettings), "admin")]
    [InlineData(typeof(ProvenanceSettings), "provenance")]
    [InlineData(typeof(AgentGateway.Proxy.Database.DatabaseSettings), "database")]
    public void The_schema_describes_every_setting_the_code_reads(Type settings, string definition)
    {
        using var schema = JsonDocument.Parse(File.ReadAllText(Path.Combine(RepositoryRoot, "config", "gateway.schema.json")));
        var properties = schema.RootElement.GetProperty("definitions").GetProperty(definition).GetProperty("properties");
        var names = properties.EnumerateObject().Select(p => p.Name).ToHashSet();

        Assert.Equal(PropertyNames(settings), names);
    }

    [Theory]
    [InlineData(typeof(ApiKeySettings), "ApiKey")]
    [InlineData(typeof(OAuthClientCredentialsSettings), "OAuthClientCredentials")]
    [InlineData(typeof(OAuthTokenExchangeSettings), "OAuthTokenExchange")]
    [InlineData(typeof(MtlsClientCertificateSettings), "MtlsClientCertificate")]
    [InlineData(typeof(ManagedIdentitySettings), "ManagedIdentity")]
    [InlineData(typeof(McpOAuthSettings), "McpOAuth")]
    [InlineData(typeof(AwsSigV4Settings), "AwsSigV4")]
    public void The_schema_describes_every_credential_setting_the_code_reads(Type settings, string kind)
    {
        using var schema = JsonDocument.Parse(File.ReadAllText(Path.Combine(RepositoryRoot, "config", "gateway.schema.json")));
        var properties = schema.RootElement.GetProperty("definitions").GetProperty("credential").GetProperty("allOf").EnumerateArray()
            .Single(branch => branch.GetProperty("if").GetProperty("properties").GetProperty("Kind").GetProperty("const").GetString() == kind)
            .GetProperty("then").GetProperty("properties");

        Assert.Equal(PropertyNames(settings), properties.EnumerateObject().Select(p => p.Name).ToHashSet());
    }

    [Fact]
    public async Task Unknown_verb_prints_usage_and_exits_2()
    {
        var (code, _, stderr) = await RunAsync("frobnicate");

        Assert.Equal(GatewayCommand.Usage, code);
        Assert.Contains("Usage:", stderr, StringComparison.Ordinal);
    }

    private static HashSet<string> PropertyNames(Type type) =>
        type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Select(p => p.Name).ToHashSet();

    private static async Task<(int Code, string Stdout, string Stderr)> RunAsync(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var code = await GatewayCommand.RunAsync(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    private static async Task<string> WriteAsync(string json)
    {
        var file = Path.Combine(Path.GetTempPath(), $"agentgateway-validate-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(file, json);
        return file;
    }
}
