namespace AgentGateway.Credentials;

/// <summary>The kinds of hop credential the broker can issue. Names are the config's <c>Kind</c> values.</summary>
public enum CredentialKind
{
    /// <summary>A static key for the hop, e.g. an LLM provider's API key, put in a configured header.</summary>
    ApiKey,

    /// <summary>An OAuth 2.1 client-credentials access token obtained from a token endpoint.</summary>
    OAuthClientCredentials,
}
