using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using SharedLvm.Agent;
using SharedLvm.Agent.Discovery;
using SharedLvm.Agent.Health;
using SharedLvm.Agent.Rescan;
using SharedLvm.Contracts.V1;
using SharedLvm.Tests.Support;
using static SharedLvm.Tests.Support.SysfsFixtures;

namespace SharedLvm.Tests.Agent.Rescan;

/// <summary>SCSI rescans on a writable copy of a captured tree: targeted or wildcard, bounded, waiting for the expected LU.</summary>
public sealed class ScsiRescannerTests : IDisposable
{
    private const string Lu = "35000c500a0000001";
    private readonly SysfsFixtures _fixtures = new();

    public void Dispose() => _fixtures.Dispose();

    [Fact]
    public async Task Targeted_scans_write_c_t_l_and_wildcards_go_to_san_hosts_only()
    {
        var root = _fixtures.Copy("two-paths");
        var rescanner = Rescanner(root);
        var targeted = await rescanner.RescanAsync([new ScanTarget(0, 0, 0, 1)], [], [], false, TimeSpan.Zero, CancellationToken.None);
        Assert.Equal("0 0 1", File.ReadAllText(Path.Combine(root, "sys/class/scsi_host/host0/scan")));
        Assert.Equal(0, Assert.Single(targeted.Hosts).Host);

        var wildcard = await rescanner.RescanAsync([], [], [], false, TimeSpan.Zero, CancellationToken.None);
        Assert.Equal(2, Assert.Single(wildcard.Hosts).Host); // the FC host, not the virtio ones
        Assert.Equal("- - -", File.ReadAllText(Path.Combine(root, "sys/class/scsi_host/host2/scan")));
        Assert.Equal(string.Empty, File.ReadAllText(Path.Combine(root, "sys/class/fc_host/host2/issue_lip")));
    }

    [Fact]
    public async Task A_rescan_for_a_known_wwid_scans_exactly_its_paths_and_a_new_one_only_the_san_target_ports()
    {
        var root = _fixtures.Copy("two-paths");
        // The LU's two paths are 0:0:0:0 and 1:0:0:0: exactly those, no wildcard.
        var known = await Rescanner(root).RescanAsync([], [], [Lu], false, TimeSpan.Zero, CancellationToken.None);
        Assert.Equal([(0, "0 0 0"), (1, "0 0 0")], known.Hosts.Select(h => (h.Host, h.Written)).Order());

        // A WWID this node has never seen: first every LUN behind the ports that show SAN LUs; the
        // wildcard on the SAN (FC) host only after that brought nothing.
        var unknown = await Rescanner(root).RescanAsync([], [], ["36000000000000000000000000000beef"], false, TimeSpan.Zero, CancellationToken.None);
        Assert.Equal([(0, "0 0 -"), (1, "0 0 -")], unknown.Hosts.Take(2).Select(h => (h.Host, h.Written)).Order());
        Assert.Equal((2, "- - -"), (unknown.Hosts[2].Host, unknown.Hosts[2].Written));
        Assert.Equal(3, unknown.Hosts.Count);
    }

    [Fact]
    public async Task A_rescan_of_a_host_that_does_not_exist_is_refused()
    {
        var e = await Assert.ThrowsAsync<AgentException>(() =>
            Rescanner(_fixtures.Copy("two-paths")).RescanAsync([], [7], [], false, TimeSpan.Zero, CancellationToken.None));
        Assert.Equal(AgentErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("host7", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_hung_scan_write_times_out_and_the_rescan_still_answers()
    {
        var root = _fixtures.Copy("two-paths");
        var scan = Path.Combine(root, "sys/class/scsi_host/host1/scan");
        File.Delete(scan);
        Assert.Equal(0, LoopDevice.Run("mkfifo", scan).Code); // opening a FIFO with no reader blocks, like a hung scan
        var started = DateTime.UtcNow;
        var outcome = await Rescanner(root, writeTimeout: TimeSpan.FromMilliseconds(300)).RescanAsync([], [0, 1], [], false, TimeSpan.Zero, CancellationToken.None);
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(10));
        Assert.Null(outcome.Hosts.Single(h => h.Host == 0).Error);
        Assert.Contains("did not return within", outcome.Hosts.Single(h => h.Host == 1).Error, StringComparison.Ordinal);
        using (File.OpenRead(scan))
        {
            // Unblock the abandoned writer thread.
        }
    }

    [Fact]
    public async Task The_rescan_waits_for_the_expected_lu_and_reports_what_appeared()
    {
        var root = _fixtures.Copy("missing-map");
        var appear = Task.Run(async () =>
        {
            await Task.Delay(400);
            foreach (var (file, text) in new[] { ("dm/name", Lu), ("dm/uuid", "mpath-" + Lu), ("dm/suspended", "0"), ("size", "2097152"), ("slaves/sdc", string.Empty), ("slaves/sdd", string.Empty) })
            {
                var path = Path.Combine(root, "sys/block/dm-0", file);
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                File.WriteAllText(path, text);
            }

            // udev makes /dev/mapper/<wwid> a moment after the map is in sysfs; lvm needs the node.
            await Task.Delay(400);
            Directory.CreateDirectory(Path.Combine(root, "dev/mapper"));
            File.WriteAllText(Path.Combine(root, "dev/mapper", Lu), string.Empty);
        });
        var started = Stopwatch.StartNew();
        var outcome = await Rescanner(root).RescanAsync([new ScanTarget(2, 0, 3, 5)], [], [Lu], false, TimeSpan.FromSeconds(10), CancellationToken.None);
        await appear;
        Assert.True(started.ElapsedMilliseconds >= 800, $"the rescan returned after {started.ElapsedMilliseconds} ms, before the device node existed");
        Assert.Equal([Lu], outcome.Appeared);
        Assert.Empty(outcome.Missing);

        var none = await Rescanner(root).RescanAsync([], [0], ["36000000000000000000000000000dead"], false, TimeSpan.FromMilliseconds(300), CancellationToken.None);
        Assert.Equal(["36000000000000000000000000000dead"], none.Missing);
    }
}
