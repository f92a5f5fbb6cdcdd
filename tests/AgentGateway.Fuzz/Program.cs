using AgentGateway.Fuzz;
using SharpFuzz;

// The SharpFuzz entry point. Under AFL++ (see README "Fuzzing" for the environment it needs):
//   afl-fuzz -i tests/AgentGateway.Fuzz/corpus/mcp -o findings -t 5000 -m none -- dotnet AgentGateway.Fuzz.dll mcp
// The published AgentGateway.Proxy.dll must first be instrumented with the sharpfuzz tool.
if (args is not [var name] || !FuzzTargets.All.TryGetValue(name, out var target))
{
    Console.Error.WriteLine($"usage: AgentGateway.Fuzz <{string.Join('|', FuzzTargets.All.Keys)}>");
    return 2;
}

Fuzzer.OutOfProcess.Run(stream =>
{
    using var buffer = new MemoryStream();
    stream.CopyTo(buffer);
    target(buffer.ToArray());
});
return 0;
