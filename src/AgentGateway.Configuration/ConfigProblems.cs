namespace AgentGateway.Configuration;

/// <summary>One thing wrong with a configuration: where (the configuration path, e.g.
/// <c>Gateway:Credentials:crm:TokenEndpoint</c>) and why. Never carries a secret value.</summary>
public sealed record ConfigProblem(string Path, string Message)
{
    public override string ToString() => $"{Path}: {Message}";
}

/// <summary>Collects every problem of one load so that an operator sees all of them at once,
/// not one per restart.</summary>
public sealed class ConfigProblems
{
    private readonly List<ConfigProblem> _problems = [];
    private readonly HashSet<ConfigProblem> _seen = [];

    public IReadOnlyList<ConfigProblem> Items => _problems;

    public bool Any => _problems.Count > 0;

    /// <summary>Adds a problem once: a section read both whole and entry by entry reports a typo once.</summary>
    public void Add(string path, string message)
    {
        var problem = new ConfigProblem(path, message);
        if (_seen.Add(problem))
        {
            _problems.Add(problem);
        }
    }

    public override string ToString() => string.Join(Environment.NewLine, _problems);
}

/// <summary>Thrown when the first configuration load fails; the message lists every problem.</summary>
public sealed class InvalidGatewayConfigurationException(IReadOnlyList<ConfigProblem> problems)
    : Exception(Format(problems))
{
    public IReadOnlyList<ConfigProblem> Problems { get; } = problems;

    private static string Format(IReadOnlyList<ConfigProblem> problems) =>
        $"The configuration has {problems.Count} problem(s):{Environment.NewLine}" +
        string.Join(Environment.NewLine, problems.Select(p => "  - " + p));
}
