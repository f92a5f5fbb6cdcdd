using AgentGateway.Credentials.Configuration;
using AgentGateway.Credentials.Secrets;
using Microsoft.Extensions.Configuration;

namespace AgentGateway.Proxy.Audit;

/// <summary>Checks <c>Gateway:Audit</c>: the file's directory exists and the HMAC key, if any,
/// resolves. The compiled form is the file path (null: no audit file).</summary>
public static class AuditCompiler
{
    public static string? Compile(IConfigurationSection section, ConfigProblems problems)
    {
        var s = SectionReader.Read<AuditSettings>(section, problems);
        if (s.Path is { } path)
        {
            var directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path));
            if (string.IsNullOrWhiteSpace(path) || directory is null || !Directory.Exists(directory))
            {
                problems.Add(section.Path + ":Path", "must be a file in an existing directory");
            }
        }

        if (s.Key is not null)
        {
            if (!SecretReference.TryParse(s.Key, out var reference, out var error))
            {
                problems.Add(section.Path + ":Key", error);
            }
            else if (!SecretResolver.TryResolve(reference.Value, out _, out var unresolved))
            {
                problems.Add(section.Path + ":Key", unresolved!);
            }
        }

        return s.Path;
    }
}
