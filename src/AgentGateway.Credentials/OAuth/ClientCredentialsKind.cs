using AgentGateway.Configuration;

namespace AgentGateway.Credentials.OAuth;

/// <summary><c>Kind: OAuthClientCredentials</c> (RFC 6749 §4.4).</summary>
internal sealed class ClientCredentialsKind(TokenEndpoints endpoints) : CredentialKindBase<OAuthClientCredentialsSettings, OAuthClientCredentialsOptions>
{
    public override CredentialKind Kind => CredentialKind.OAuthClientCredentials;

    protected override OAuthClientCredentialsOptions? Validate(string name, string path, OAuthClientCredentialsSettings s, ConfigProblems problems) =>
        OAuthSettingsValidation.ReadClient(path, s, problems) is { } client
            ? new OAuthClientCredentialsOptions(name, client, s.Scopes, s.Resources, s.Header, s.RefreshBeforeExpiry)
            : null;

    protected override ICredentialSource? Build(OAuthClientCredentialsOptions options, CredentialBuildContext context, ConfigProblems problems) =>
        endpoints.Authenticators.Create(options.Client.Authentication, context.Path, problems) is { } authenticator
            ? new ClientCredentialsSource(
                options,
                authenticator,
                endpoints.Create(options.Name, options.Client, authenticator, options.RefreshBeforeExpiry),
                endpoints.Keys.ForCredential(ClientCredentialsSource.CacheKeyParts(options, authenticator.KeyMaterial)),
                context.Cache)
            : null;
}
