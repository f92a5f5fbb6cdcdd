using AgentGateway.Host;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Primitives;

namespace AgentGateway.FunctionalTests.Configuration;

/// <summary>
/// The configuration file is reloaded however it is changed — written in place, replaced by a
/// rename as editors do, or swapped as Kubernetes updates a mounted ConfigMap — and a busy file
/// beside it (an audit log) does not wake the watch. Real files, real change notifications.
/// </summary>
public sealed class ConfigurationFileWatchTests : IDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(15);
    private readonly DirectoryInfo _directory = Directory.CreateTempSubdirectory("agentgateway-watch-");

    public void Dispose() => _directory.Delete(recursive: true);

    [Fact]
    public async Task A_file_replaced_by_a_rename_is_reloaded_and_a_busy_file_beside_it_is_not_a_change()
    {
        var path = Path.Combine(_directory.FullName, "gateway.json");
        await File.WriteAllTextAsync(path, """{ "Value": "one" }""");
        using var configuration = (IDisposable)new ConfigurationBuilder().AddWatchedJsonFile(path).Build();
        var root = (IConfigurationRoot)configuration;
        var reloads = 0;
        using var watching = ChangeToken.OnChange(root.GetReloadToken, () => Interlocked.Increment(ref reloads));

        // An audit log written beside the configuration, again and again.
        var audit = Path.Combine(_directory.FullName, "audit.jsonl");
        for (var i = 0; i < 20; i++)
        {
            await File.AppendAllTextAsync(audit, $"{{\"seq\":{i}}}\n");
        }

        // Past the framework's reload delay (250 ms), so a reload it caused would have happened.
        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.Equal(0, Volatile.Read(ref reloads));

        // An editor's save: a new file, renamed over the old one.
        var saved = Path.Combine(_directory.FullName, ".gateway.json.swp");
        await File.WriteAllTextAsync(saved, """{ "Value": "two" }""");
        File.Move(saved, path, overwrite: true);
        await UntilAsync(() => root["Value"] == "two");

        // Written in place.
        await File.WriteAllTextAsync(path, """{ "Value": "three" }""");
        await UntilAsync(() => root["Value"] == "three");
    }

    [Fact]
    public async Task A_ConfigMap_update_which_swaps_a_link_over_the_directory_is_reloaded()
    {
        // The layout the kubelet mounts: gateway.json -> ..data/gateway.json, ..data -> ..v1.
        var mount = _directory.FullName;
        await WriteVersionAsync(mount, "..v1", "one");
        File.CreateSymbolicLink(Path.Combine(mount, "..data"), "..v1");
        var path = Path.Combine(mount, "gateway.json");
        File.CreateSymbolicLink(path, "..data/gateway.json");
        Assert.Equal(["gateway.json", "..data"], ConfigurationFileWatch.WatchedNames(path));

        using var configuration = (IDisposable)new ConfigurationBuilder().AddWatchedJsonFile(path).Build();
        var root = (IConfigurationRoot)configuration;
        Assert.Equal("one", root["Value"]);

        // The update: a new version's directory, a new link to it, renamed over ..data at once.
        await WriteVersionAsync(mount, "..v2", "two");
        File.CreateSymbolicLink(Path.Combine(mount, "..data_tmp"), "..v2");
        await RenameAsync(Path.Combine(mount, "..data_tmp"), Path.Combine(mount, "..data"));
        await UntilAsync(() => root["Value"] == "two");
    }

    /// <summary>rename(2) of a link over a link, as the kubelet does it (.NET's moves follow a link
    /// to a directory, and will not replace one).</summary>
    private static async Task RenameAsync(string from, string to)
    {
        using var mv = System.Diagnostics.Process.Start("mv", ["-T", from, to])!;
        await mv.WaitForExitAsync();
        Assert.Equal(0, mv.ExitCode);
    }

    private static async Task WriteVersionAsync(string mount, string version, string value)
    {
        Directory.CreateDirectory(Path.Combine(mount, version));
        await File.WriteAllTextAsync(Path.Combine(mount, version, "gateway.json"), $$"""{ "Value": "{{value}}" }""");
    }

    private static async Task UntilAsync(Func<bool> condition)
    {
        var until = DateTime.UtcNow + Deadline;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < until, "the configuration was not reloaded in time");
            await Task.Delay(50);
        }
    }
}
