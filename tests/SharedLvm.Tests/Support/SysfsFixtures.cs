using Microsoft.Extensions.Logging.Abstractions;
using SharedLvm.Agent.Discovery;
using SharedLvm.Agent.Rescan;

namespace SharedLvm.Tests.Support;

/// <summary>
/// The sysfs/udev trees under Fixtures/sysfs (captured from real hosts and the SAN lab), and what
/// the agent builds on them; writable copies for tests that change a tree, removed on dispose.
/// </summary>
internal sealed class SysfsFixtures : IDisposable
{
    private readonly List<string> _copies = [];

    public static string FixtureRoot(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "sysfs", name);

    public static SanDiscovery DiscoveryOf(string fixture) =>
        new(new SysfsTree(FixtureRoot(fixture)), new FixedMultipathd(null), TimeProvider.System);

    /// <summary>A view of a tree captured with scripts/lab capture-fixtures, multipathd's answer included.</summary>
    public static Task<NodeView> CapturedView(string fixture)
    {
        var multipathd = MultipathdJson.Parse(File.ReadAllText(Path.Combine(FixtureRoot(fixture), "commands", "multipathd-show-maps.json")));
        return new SanDiscovery(new SysfsTree(FixtureRoot(fixture)), new FixedMultipathd(multipathd), TimeProvider.System).ScanAsync(CancellationToken.None);
    }

    public static ScsiRescanner Rescanner(string root, TimeSpan? writeTimeout = null)
    {
        var sysfs = new SysfsTree(root);
        var options = new RescanOptions { MaxJitter = TimeSpan.Zero, MinInterval = TimeSpan.Zero, PollInterval = TimeSpan.FromMilliseconds(50), WriteTimeout = writeTimeout ?? TimeSpan.FromSeconds(10) };
        return new ScsiRescanner(sysfs, new SanDiscovery(sysfs, new FixedMultipathd(null), TimeProvider.System), options, NullLogger<ScsiRescanner>.Instance);
    }

    /// <summary>A writable copy of a fixture tree.</summary>
    public string Copy(string name)
    {
        var target = Directory.CreateTempSubdirectory("slvm-sysfs-").FullName;
        _copies.Add(target);
        foreach (var file in Directory.EnumerateFiles(FixtureRoot(name), "*", SearchOption.AllDirectories))
        {
            var destination = Path.Combine(target, Path.GetRelativePath(FixtureRoot(name), file));
            Directory.CreateDirectory(Path.GetDirectoryName(destination)!);
            File.Copy(file, destination);
        }

        return target;
    }

    public void Dispose()
    {
        foreach (var dir in _copies)
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
