using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Configuration.Json;
using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.FileProviders.Physical;
using Microsoft.Extensions.Primitives;

namespace AgentGateway.Host;

/// <summary>
/// The configuration file, reloaded when it changes and on nothing else. The framework's file
/// watch for <c>AddJsonFile</c> watches the file's whole directory tree and matches every event
/// against the file: an audit log, a socket or a cache written next to the configuration wakes it
/// on every write (2 % of a loaded gateway's CPU, measured). This one watches the file's own
/// directory, not its subtree, and raises only for the file's own name — which still sees the file
/// written in place, replaced by a rename (editors, <c>mv</c>), deleted and created again. (On
/// Linux, inotify has no name filter: the runtime's watcher thread still reads each event in the
/// directory and drops those naming another file before any callback, token or reload runs.) It
/// also raises for the subdirectory entry a symbolic-link file points through: Kubernetes mounts a
/// ConfigMap as <c>gateway.json → ..data/gateway.json</c> and <c>..data → ..2026_11_28_…</c>, and
/// updates it by renaming a new <c>..data</c> link over the old one, which changes nothing named
/// <c>gateway.json</c>. With <c>DOTNET_USE_POLLING_FILE_WATCHER</c> set, the framework's polling
/// watch is used instead (file systems without change notifications).
/// </summary>
internal static class ConfigurationFileWatch
{
    public static IConfigurationBuilder AddWatchedJsonFile(this IConfigurationBuilder builder, string path)
    {
        var full = Path.GetFullPath(path);
        if (Environment.GetEnvironmentVariable("DOTNET_USE_POLLING_FILE_WATCHER") is "1" or "true" or "True" or "TRUE")
        {
            return builder.AddJsonFile(full, optional: false, reloadOnChange: true);
        }

        return builder.Add(new WatchedJsonSource
        {
            FileProvider = new FileWatch(full),
            Path = Path.GetFileName(full),
            Optional = false,
            ReloadOnChange = true,
        });
    }

    /// <summary>The entries of <paramref name="path"/>'s directory whose change changes what it
    /// reads: its own name, and the first step of its link target when that is a subdirectory.</summary>
    internal static IReadOnlyList<string> WatchedNames(string path)
    {
        var name = Path.GetFileName(path);
        var target = new FileInfo(path).LinkTarget;
        if (target is null || Path.IsPathRooted(target))
        {
            return [name];
        }

        var steps = target.Split('/', 2);
        return steps.Length < 2 || steps[0] is "" or "." or ".." ? [name] : [name, steps[0]];
    }

    private sealed class WatchedJsonSource : JsonConfigurationSource
    {
        public override IConfigurationProvider Build(IConfigurationBuilder builder)
        {
            EnsureDefaults(builder);
            return new Provider(this);
        }

        /// <summary>Owns the watch, as the framework's provider owns the one it makes.</summary>
        private sealed class Provider(WatchedJsonSource source) : JsonConfigurationProvider(source)
        {
            protected override void Dispose(bool disposing)
            {
                base.Dispose(disposing);
                (source.FileProvider as IDisposable)?.Dispose();
            }
        }
    }

    /// <summary>Reads through the file's directory; signals a change of the watched names only.</summary>
    private sealed class FileWatch : IFileProvider, IDisposable
    {
        private readonly PhysicalFileProvider _files;
        private readonly FileSystemWatcher _watcher;
        private CancellationTokenSource _changed = new();

        public FileWatch(string path)
        {
            var directory = Path.GetDirectoryName(path)!;
            // No exclusions: the operator named this file; a dot-prefixed name is still theirs.
            _files = new PhysicalFileProvider(directory, ExclusionFilters.None);
            _watcher = new FileSystemWatcher(directory)
            {
                IncludeSubdirectories = false,
                NotifyFilter = NotifyFilters.FileName | NotifyFilters.DirectoryName | NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.CreationTime,
            };
            foreach (var name in WatchedNames(path))
            {
                _watcher.Filters.Add(name);
            }

            _watcher.Changed += (_, _) => Signal();
            _watcher.Created += (_, _) => Signal();
            _watcher.Deleted += (_, _) => Signal();
            _watcher.Renamed += (_, _) => Signal();
            // Events were lost (the kernel's queue overflowed): the file may have changed.
            _watcher.Error += (_, _) => Signal();
            _watcher.EnableRaisingEvents = true;
        }

        public IFileInfo GetFileInfo(string subpath) => _files.GetFileInfo(subpath);

        public IDirectoryContents GetDirectoryContents(string subpath) => _files.GetDirectoryContents(subpath);

        /// <summary>One token for every watcher of the file, fired by its next change. (The reload
        /// re-reads the file a moment later, so a burst of events is one reload.)</summary>
        public IChangeToken Watch(string filter) => new CancellationChangeToken(Volatile.Read(ref _changed).Token);

        private void Signal()
        {
            // Not disposed: a reader may still be registering on the token it just got.
            Interlocked.Exchange(ref _changed, new CancellationTokenSource()).Cancel();
        }

        public void Dispose()
        {
            _watcher.Dispose();
            _files.Dispose();
        }
    }
}
