using AgentGateway.Configuration;
using Microsoft.Extensions.Configuration;

namespace AgentGateway.Proxy.Audit;

/// <summary>Checks <c>Gateway:Audit</c>: the file's directory exists and the HMAC key, if any,
/// resolves. Both are process settings (<see cref="Configuration.ProcessSettings"/>): the audit log
/// opens the file and reads the key once, at start.</summary>
public static class AuditCompiler
{
    public static void Check(IConfigurationSection section, ConfigProblems problems)
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

        AuditKey.Check(section.Path + ":Key", s.Key, problems);
    }
}
