using AgentGateway.Configuration;
using AgentGateway.Credentials.Configuration;
using AgentGateway.Credentials.Secrets;

namespace AgentGateway.Credentials.ApiKeys;

/// <summary><c>Kind: ApiKey</c>: a static key, resolved at load and put in one header.</summary>
internal sealed class ApiKeyKind(CredentialFingerprint fingerprint) : CredentialKindBase<ApiKeySettings, ApiKeyOptions>
{
    public override CredentialKind Kind => CredentialKind.ApiKey;

    protected override ApiKeyOptions? Validate(string name, string path, ApiKeySettings settings, ConfigProblems problems)
    {
        var ok = HeaderName.TryRead(path + ":Header", settings.Header, problems, out _);
        if (!settings.Format.Contains("{secret}", StringComparison.Ordinal))
        {
            problems.Add(path + ":Format", "must contain '{secret}' where the key goes");
            ok = false;
        }

        ok &= CredentialConfigReader.TryReadSecret(path + ":Secret", settings.Secret, problems, out var secret);
        return ok ? new ApiKeyOptions(name, settings.Header, settings.Format, secret) : null;
    }

    protected override ICredentialSource? Build(ApiKeyOptions options, CredentialBuildContext context, ConfigProblems problems)
    {
        if (!SecretResolver.TryResolve(options.Secret, out var key, out var error))
        {
            problems.Add(context.Path + ":Secret", error!);
            return null;
        }

        return new ApiKeySource(options, key!, fingerprint);
    }
}
