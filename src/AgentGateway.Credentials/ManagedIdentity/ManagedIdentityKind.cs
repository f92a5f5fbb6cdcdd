using AgentGateway.Configuration;
using AgentGateway.Credentials.Configuration;
using Microsoft.Extensions.Logging;

namespace AgentGateway.Credentials.ManagedIdentity;

/// <summary><c>Kind: ManagedIdentity</c>: Azure managed identity or a GCP service account.</summary>
internal sealed class ManagedIdentityKind(CredentialFingerprint fingerprint, TimeProvider time, ILoggerFactory loggers)
    : CredentialKindBase<ManagedIdentitySettings, ManagedIdentityOptions>
{
    public override CredentialKind Kind => CredentialKind.ManagedIdentity;

    protected override ManagedIdentityOptions? Validate(string name, string path, ManagedIdentitySettings s, ConfigProblems problems)
    {
        var ok = HeaderName.TryRead(path + ":Header", s.Header, problems, out _);
        if (!Enum.TryParse<ManagedIdentityProvider>(s.Provider, ignoreCase: false, out var provider) || !Enum.IsDefined(provider))
        {
            problems.Add(path + ":Provider", $"'{s.Provider}' is not one of: {string.Join(", ", Enum.GetNames<ManagedIdentityProvider>())}");
            return null;
        }

        ok &= CredentialConfigReader.CheckScopes(path, s.Scopes, problems);
        if (provider == ManagedIdentityProvider.Azure && s.Scopes.Length != 1)
        {
            // Azure managed identity issues a token for one resource at a time.
            problems.Add(path + ":Scopes", "Azure needs exactly one scope: the resource's '.default' scope, e.g. https://database.windows.net/.default");
            ok = false;
        }

        if (provider == ManagedIdentityProvider.Gcp && s.ClientId is not null)
        {
            problems.Add(path + ":ClientId", "is not used here: GCP uses the instance's service account");
            ok = false;
        }

        ok &= CredentialConfigReader.CheckTokenTiming(path, s.RefreshBeforeExpiry, s.Timeout, problems);
        return ok ? new ManagedIdentityOptions(name, provider, s.ClientId, s.Scopes, s.Header, s.RefreshBeforeExpiry, s.Timeout) : null;
    }

    protected override ICredentialSource? Build(ManagedIdentityOptions options, CredentialBuildContext context, ConfigProblems problems) =>
        new ManagedIdentitySource(options, context.Cache, fingerprint, time, loggers.CreateLogger<ManagedIdentitySource>());
}
