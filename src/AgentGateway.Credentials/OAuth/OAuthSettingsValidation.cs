using AgentGateway.Configuration;
using AgentGateway.Credentials.Configuration;

namespace AgentGateway.Credentials.OAuth;

/// <summary>Validation the OAuth kinds share: the client, its authentication, scopes, timing.</summary>
public static class OAuthSettingsValidation
{
    /// <summary>The OAuth kinds with a configured token endpoint; null (with problems added) when any setting is wrong.</summary>
    /// <param name="path">The entry's configuration path.</param>
    public static OAuthClient? ReadClient(string path, OAuthClientSettings s, ConfigProblems problems)
    {
        var ok = HttpEndpoint.TryRead(path + ":TokenEndpoint", s.TokenEndpoint, problems, out var endpoint);
        var authentication = ReadCommon(path, s, problems);
        ok &= authentication is not null;
        for (var i = 0; i < s.Resources.Length; i++)
        {
            // RFC 8707 §2: a resource is an absolute URI without a fragment.
            if (!Uri.TryCreate(s.Resources[i], UriKind.Absolute, out var resource) || resource.Fragment.Length > 0)
            {
                problems.Add($"{path}:Resources:{i}", "must be an absolute URI without a fragment (RFC 8707)");
                ok = false;
            }
        }

        return ok ? new OAuthClient(endpoint!, s.ClientId!, authentication!, s.Timeout) : null;
    }

    /// <summary>The settings every OAuth kind shares: the client authentication when all are right,
    /// else null with every problem added.</summary>
    /// <param name="path">The entry's configuration path.</param>
    public static ClientAuthentication? ReadCommon(string path, OAuthCommonSettings s, ConfigProblems problems)
    {
        var ok = HeaderName.TryRead(path + ":Header", s.Header, problems, out _);
        if (string.IsNullOrWhiteSpace(s.ClientId))
        {
            problems.Add(path + ":ClientId", "is required");
            ok = false;
        }

        var authentication = ReadClientAuthentication(path, s, problems);
        ok &= authentication is not null;
        ok &= CredentialConfigReader.CheckScopes(path, s.Scopes, problems);
        ok &= CredentialConfigReader.CheckTokenTiming(path, s.RefreshBeforeExpiry, s.Timeout, problems);
        return ok ? authentication : null;
    }

    private static ClientAuthentication? ReadClientAuthentication(string path, OAuthCommonSettings s, ConfigProblems problems)
    {
        if (s.ClientAuthentication == "PrivateKeyJwt")
        {
            var ok = CredentialConfigReader.TryReadSecret(path + ":PrivateKey", s.PrivateKey, problems, out var key);
            ok &= CredentialConfigReader.Unused(path + ":ClientSecret", s.ClientSecret, "PrivateKeyJwt signs with PrivateKey; a client secret would sit unused", problems);
            if (s.PrivateKeyId is { } kid && (kid.Length == 0 || kid.Any(char.IsControl)))
            {
                problems.Add(path + ":PrivateKeyId", "must be a non-empty printable string");
                ok = false;
            }

            if (s.SigningAlgorithm is { } algorithm && !SigningAlgorithm.TryParse(algorithm, out _))
            {
                problems.Add(path + ":SigningAlgorithm", $"'{algorithm}' is not one of: {SigningAlgorithm.List(", ")}");
                ok = false;
            }

            if (s.AssertionAudience is not null && !Uri.TryCreate(s.AssertionAudience, UriKind.Absolute, out _))
            {
                problems.Add(path + ":AssertionAudience", "must be an absolute URI (the issuer or the token endpoint)");
                ok = false;
            }

            return ok ? new PrivateKeyJwtAuthentication(key, s.PrivateKeyId, s.SigningAlgorithm, s.AssertionAudience) : null;
        }

        if (!Enum.TryParse<ClientSecretStyle>(s.ClientAuthentication, ignoreCase: false, out var style) || !Enum.IsDefined(style))
        {
            problems.Add(path + ":ClientAuthentication", $"'{s.ClientAuthentication}' is not one of: PostBody, BasicAuthentication, PrivateKeyJwt");
            return null;
        }

        var secretOk = CredentialConfigReader.TryReadSecret(path + ":ClientSecret", s.ClientSecret, problems, out var secret);
        secretOk &= CredentialConfigReader.Unused(path + ":PrivateKey", s.PrivateKey, "only PrivateKeyJwt uses a private key", problems);
        secretOk &= CredentialConfigReader.Unused(path + ":PrivateKeyId", s.PrivateKeyId, "only PrivateKeyJwt signs assertions", problems);
        secretOk &= CredentialConfigReader.Unused(path + ":SigningAlgorithm", s.SigningAlgorithm, "only PrivateKeyJwt signs assertions", problems);
        secretOk &= CredentialConfigReader.Unused(path + ":AssertionAudience", s.AssertionAudience, "only PrivateKeyJwt signs assertions", problems);
        return secretOk ? new ClientSecretAuthentication(secret, style) : null;
    }
}
