using System.Text;
using AgentGateway.Fuzz;
using AgentGateway.Proxy.Inspection;

namespace AgentGateway.Proxy.Tests.Fuzz;

/// <summary>
/// The fuzz targets of <c>tests/AgentGateway.Fuzz</c> as ordinary tests: every seed of the corpus
/// (and every input AFL found and we kept), then a fixed set of mutations of each seed — flips,
/// cuts, repeats and insertions of the tokens parser disagreements are made of — so each CI run
/// fuzzes a little, deterministically.
/// </summary>
public sealed class FuzzCorpusTests
{
    private const int MutationsPerSeed = 5000;

    private static readonly byte[][] Tokens =
    [
        .. new[]
        {
            "\"", "\\", "\\u0000", "\\u00", "\\ud800", "}", "{", "]", "[", ",", ":", "\"method\"", "\"name\"", "\"model\"",
            "\"params\"", "\"tools/call\"", "\"jsonrpc\":\"2.0\"", "/*", "//", "\ufeff", "%2f", "%2e", "%25", "..", "/", ";", "\\", "%00",
            "-", "_", "\t", " ", "\u00a0", "1e999", "null", "true",
            "\r", "\n", "\r\n", "\n\n", "data: ", "event: endpoint\n", "\"id\":2,", "\"elicitation/create\"", "\"inputRequests\"", "\"tools\"", "{\"name\":\"delete_all\"}",
        }.Select(Encoding.UTF8.GetBytes),
    ];

    public static TheoryData<string, string> Seeds()
    {
        var data = new TheoryData<string, string>();
        foreach (var target in FuzzTargets.All.Keys)
        {
            foreach (var file in Directory.EnumerateFiles(Path.Combine(CorpusRoot, target)).Order(StringComparer.Ordinal))
            {
                data.Add(target, Path.GetFileName(file));
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Seeds))]
    public void A_seed_and_its_mutations_keep_every_invariant(string target, string seed)
    {
        var input = File.ReadAllBytes(Path.Combine(CorpusRoot, target, seed));
        var run = FuzzTargets.All[target];
        Run(run, input, "the seed itself");

        // A seed that is the same in every process (HashCode is randomised per process), so a
        // mutation that fails in CI fails again on the developer's machine.
        var random = new Random(StableSeed(target + "/" + seed));
        for (var i = 0; i < MutationsPerSeed; i++)
        {
            var mutated = Mutate(input, random);
            Run(run, mutated, $"mutation {i}");
        }
    }

    [Fact]
    public void Every_target_has_a_corpus()
    {
        foreach (var target in FuzzTargets.All.Keys)
        {
            Assert.NotEmpty(Directory.EnumerateFiles(Path.Combine(CorpusRoot, target)));
        }
    }

    /// <summary>The oracles must be able to fail: each is handed a decision an inspector with the
    /// classic bug would have made, and must call it a finding.</summary>
    [Fact]
    public void The_oracles_catch_the_bugs_they_are_for()
    {
        var duplicateName = Encoding.UTF8.GetBytes("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"search\",\"name\":\"delete_all\"}}");
        var escapedMethod = Encoding.UTF8.GetBytes("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools\\/call\",\"params\":{\"name\":\"delete_all\"}}");
        var model = Encoding.UTF8.GetBytes("{\"model\":\"o1-pro\"}");

        // First-wins on a duplicate name.
        Assert.Throws<FuzzFindingException>(() => FuzzTargets.CheckMcp(new(BodyKind.Mcp, "tools/call", "search", null, duplicateName), duplicateName));
        // Comparing the raw, still-escaped method text instead of the decoded value.
        Assert.Throws<FuzzFindingException>(() => FuzzTargets.CheckMcp(new(BodyKind.Mcp, "tools\\/call", null, null, escapedMethod), escapedMethod));
        // Deciding on another model than the body names.
        Assert.Throws<FuzzFindingException>(() => FuzzTargets.CheckLlm(new(BodyKind.Llm, null, null, "gpt-4o-mini", model), model));
        // The lenient reader does resolve what a path rule must not be fooled by.
        Assert.Equal("/v1/admin", LenientPath.Normalise("/v1/models/..%2fadmin"));
        Assert.Equal("/v1/admin", LenientPath.Normalise("/v1/models\\..\\admin"));
        // A guard that passed a refused server request, a refused input request, a batch, or an
        // absolute legacy endpoint on to the agent.
        Assert.Throws<FuzzFindingException>(() => FuzzTargets.CheckServerEvent("message", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"elicitation/create\"}"));
        Assert.Throws<FuzzFindingException>(() => FuzzTargets.CheckServerEvent("message", "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"inputRequests\":{\"a\":{\"method\":\"roots/list\"}}}}"));
        Assert.Throws<FuzzFindingException>(() => FuzzTargets.CheckServerEvent("message", "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]"));
        Assert.Throws<FuzzFindingException>(() => FuzzTargets.CheckServerEvent("endpoint", "https://elsewhere.example/messages"));
        // A tool list passed unfiltered, or one that is not a list at all.
        Assert.Throws<FuzzFindingException>(() => FuzzTargets.CheckServerEvent("message", "{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"tools\":[{\"name\":\"lookup_a\"},{\"name\":\"delete_all\"}]}}"));
        Assert.Throws<FuzzFindingException>(() => FuzzTargets.CheckServerEvent("message", "{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"tools\":{\"name\":\"delete_all\"}}}"));
    }

    private static void Run(Action<byte[]> target, byte[] input, string what)
    {
        try
        {
            target(input);
        }
        catch (Exception ex)
        {
            Assert.Fail($"{what} broke an invariant ({ex.GetType().Name}: {ex.Message}); input (base64): {Convert.ToBase64String(input)}");
        }
    }

    private static byte[] Mutate(byte[] input, Random random)
    {
        var bytes = new List<byte>(input);
        var edits = random.Next(1, 4);
        for (var e = 0; e < edits; e++)
        {
            var at = bytes.Count == 0 ? 0 : random.Next(bytes.Count);
            switch (random.Next(5))
            {
                case 0 when bytes.Count > 0:
                    bytes[at] ^= (byte)(1 << random.Next(8));
                    break;
                case 1 when bytes.Count > 0:
                    bytes.RemoveRange(at, Math.Min(bytes.Count - at, random.Next(1, 8)));
                    break;
                case 2 when bytes.Count > 0:
                    var length = Math.Min(bytes.Count - at, random.Next(1, 32));
                    bytes.InsertRange(random.Next(bytes.Count + 1), bytes.GetRange(at, length));
                    break;
                default:
                    bytes.InsertRange(at, Tokens[random.Next(Tokens.Length)]);
                    break;
            }
        }

        return [.. bytes];
    }

    /// <summary>FNV-1a of the name.</summary>
    private static int StableSeed(string name)
    {
        var hash = 2166136261u;
        foreach (var c in name)
        {
            hash = (hash ^ c) * 16777619u;
        }

        return (int)(hash & 0x7FFFFFFF);
    }

    private static string CorpusRoot => Path.Combine(AppContext.BaseDirectory, "corpus");
}
