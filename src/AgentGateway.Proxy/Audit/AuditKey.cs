using System.Diagnostics.CodeAnalysis;
using System.Text;
using AgentGateway.Configuration;
using AgentGateway.Credentials.Secrets;

namespace AgentGateway.Proxy.Audit;

/// <summary>
/// The audit chain's HMAC key: the bytes of the secret that <c>Gateway:Audit:Key</c> (for the
/// writer) or <c>agentgateway audit verify --key</c> (for the verifier) names. Both resolve it
/// here, so a reference that signs a log is exactly the reference that verifies it.
/// </summary>
public static class AuditKey
{
    /// <summary>At load: a problem at <paramref name="path"/> when the reference does not resolve.</summary>
    public static void Check(string path, string? reference, ConfigProblems problems)
    {
        ArgumentNullException.ThrowIfNull(problems);
        if (!TryResolve(reference, out _, out var error))
        {
            problems.Add(path, error);
        }
    }

    /// <param name="reference">A secret reference, or null for no key (the chain is then a plain hash chain).</param>
    /// <param name="key">The key's bytes; null without a reference.</param>
    /// <param name="error">What is wrong with the reference, never the secret.</param>
    public static bool TryResolve(string? reference, out byte[]? key, [NotNullWhen(false)] out string? error)
    {
        key = null;
        error = null;
        if (reference is null)
        {
            return true;
        }

        if (!SecretReference.TryParse(reference, out var parsed, out error) || !SecretResolver.TryResolve(parsed.Value, out var secret, out error))
        {
            error ??= "cannot be read";
            return false;
        }

        key = Encoding.UTF8.GetBytes(secret!.Reveal());
        return true;
    }
}
