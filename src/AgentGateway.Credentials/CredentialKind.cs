namespace AgentGateway.Credentials;

/// <summary>The kinds of hop credential the broker can issue. Names are the config's <c>Kind</c> values.</summary>
public enum CredentialKind
{
    /// <summary>A static key for the hop, e.g. an LLM provider's API key, put in a configured header.</summary>
    ApiKey,

    /// <summary>An OAuth 2.1 client-credentials access token obtained from a token endpoint.</summary>
    OAuthClientCredentials,

    /// <summary>An RFC 8693 token-exchange (on-behalf-of) token: the delegating user's token
    /// exchanged, with the agent's own token as actor, for a token naming both.</summary>
    OAuthTokenExchange,

    /// <summary>An MCP server's token: its authorization server discovered from its RFC 9728
    /// metadata (and checked against an allowlist), the token bound to it with RFC 8707.</summary>
    McpOAuth,

    /// <summary>A cloud workload's own identity token — Azure managed identity or a GCP service
    /// account on the metadata server — for HTTP-fronted databases and cloud APIs.</summary>
    ManagedIdentity,

    /// <summary>A client certificate the upstream connection presents (mutual TLS), per cluster;
    /// re-read when its files rotate.</summary>
    MtlsClientCertificate,
}
