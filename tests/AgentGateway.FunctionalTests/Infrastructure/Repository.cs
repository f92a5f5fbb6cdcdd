namespace AgentGateway.FunctionalTests.Infrastructure;

/// <summary>The repository the tests run from, for checks on the files it ships (README, config/, deploy/).</summary>
public static class Repository
{
    /// <summary>The directory holding AgentGateway.sln, found upward from the test binaries.</summary>
    public static string Root { get; } = FindRoot();

    private static string FindRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "AgentGateway.sln")))
        {
            directory = directory.Parent;
        }

        return directory?.FullName ?? throw new InvalidOperationException("repository root not found");
    }
}
