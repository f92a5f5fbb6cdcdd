using AgentGateway.Configuration;
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
            SecretResolver.TryRead(section.Path + ":Key", s.Key, problems, out _);
        }

        return s.Path;
    }
}
