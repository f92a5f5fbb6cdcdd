using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using AgentGateway.Configuration;

namespace AgentGateway.Credentials.Secrets;

/// <summary>PEM certificates behind a secret reference — a trust bundle, a private CA — read the
/// one way every setting that names one is read: resolved like any secret, parsed, and refused
/// when it holds no certificate, with what is wrong and never the content.</summary>
public static class PemBundle
{
    /// <summary>At load: a problem at <paramref name="path"/> when the reference or its content is wrong.</summary>
    public static bool TryRead(string path, string? reference, ConfigProblems problems, [NotNullWhen(true)] out X509Certificate2Collection? bundle)
    {
        ArgumentNullException.ThrowIfNull(problems);
        bundle = null;
        if (!SecretReference.TryParse(reference, out var parsed, out var error) || !TryResolve(parsed.Value, out bundle, out error))
        {
            problems.Add(path, error);
            return false;
        }

        return true;
    }

    /// <summary>When the files are read again (rotation): the error instead of a problem.</summary>
    public static bool TryResolve(SecretReference reference, [NotNullWhen(true)] out X509Certificate2Collection? bundle, [NotNullWhen(false)] out string? error)
    {
        bundle = null;
        if (!SecretResolver.TryResolve(reference, out var pem, out error))
        {
            error ??= "cannot be read";
            return false;
        }

        var certificates = new X509Certificate2Collection();
        try
        {
            certificates.ImportFromPem(pem!.Reveal());
        }
        catch (CryptographicException)
        {
            // The exception text can quote the content; the problem names the failure only.
            error = "does not hold PEM certificates";
            return false;
        }

        if (certificates.Count == 0)
        {
            error = "holds no PEM certificate";
            return false;
        }

        bundle = certificates;
        error = null;
        return true;
    }
}
