using AgentGateway.Configuration;

namespace AgentGateway.Credentials.OAuth;

/// <summary><c>Kind: OAuthTokenExchange</c> (RFC 8693, on behalf of the delegating user).</summary>
internal sealed class TokenExchangeKind(TokenEndpoints endpoints) : CredentialKindBase<OAuthTokenExchangeSettings, OAuthTokenExchangeOptions>
{
    public override CredentialKind Kind => CredentialKind.OAuthTokenExchange;

    protected override OAuthTokenExchangeOptions? Validate(string name, string path, OAuthTokenExchangeSettings s, ConfigProblems problems)
    {
        var client = OAuthSettingsValidation.ReadClient(path, s, problems);
        var ok = client is not null;
        if (s.Audience is not null && (s.Audience.Length == 0 || s.Audience.Any(char.IsWhiteSpace)))
        {
            problems.Add(path + ":Audience", "must be a non-empty name without spaces");
            ok = false;
        }

        return ok
            ? new OAuthTokenExchangeOptions(name, client!, s.Scopes, s.Resources, s.Audience, s.SendActorToken, s.Header, s.RefreshBeforeExpiry)
            : null;
    }

    protected override ICredentialSource? Build(OAuthTokenExchangeOptions options, CredentialBuildContext context, ConfigProblems problems) =>
        endpoints.Authenticators.Create(options.Client.Authentication, context.Path, problems) is { } authenticator
            ? new TokenExchangeSource(
                options,
                authenticator,
                endpoints.Create(options.Name, options.Client, authenticator, options.RefreshBeforeExpiry),
                endpoints.Keys,
                endpoints.Keys.ForCredential(TokenExchangeSource.CacheKeyParts(options, authenticator.KeyMaterial)),
                context.Cache)
            : null;
}
