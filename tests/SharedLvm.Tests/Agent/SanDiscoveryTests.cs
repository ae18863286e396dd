using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using SharedLvm.Agent;
using SharedLvm.Agent.Discovery;
using SharedLvm.Agent.Health;
using SharedLvm.Agent.Rescan;
using SharedLvm.Tests.Support;

using SharedLvm.Contracts.V1;

namespace SharedLvm.Tests.Agent;

public sealed class SanDiscoveryTests : IDisposable
{
    private const string Lu = "35000c500a0000001";
    private readonly List<string> _temp = [];

    public void Dispose()
    {
        foreach (var dir in _temp)
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task The_lu_is_its_multipath_map_found_by_wwid_whatever_the_sd_names()
    {
        var view = await Discovery("two-paths").ScanAsync(CancellationToken.None);
        var map = Assert.Single(view.Maps);
        Assert.Equal(Lu, map.Wwid);
        Assert.Equal("/dev/mapper/" + Lu, map.DevicePath);
        Assert.Equal(["sdc", "sdd"], map.Paths.Select(p => p.Device));
        Assert.Equal(["0:0:0:0", "1:0:0:0"], map.Paths.Select(p => p.Hctl));
        Assert.Equal(2, map.ActivePaths);
        Assert.Equal(1073741824UL, map.SizeBytes);
        Assert.All(view.Disks, d => Assert.Equal((Lu, "dm-0"), (d.Wwid, d.Holder)));
        var fc = Assert.Single(view.Hosts, h => h.Fc is not null);
        Assert.Equal((2, "qla2xxx", "Online"), (fc.Number, fc.Driver, fc.Fc!.PortState));
        var lv = Assert.Single(view.ActiveLvs);
        Assert.Equal(("pool1-slvm--aaaaaaaaaaaaaaaaaaaaaaaaaa", 254, 1), (lv.DmName, lv.Major, lv.Minor));
        Assert.Empty(HealthEvaluator.Evaluate(view, [Lu]));
    }

    [Fact]
    public async Task An_offline_path_is_seen_at_the_scsi_and_multipath_layers()
    {
        var view = await Discovery("failed-path").ScanAsync(CancellationToken.None);
        var findings = HealthEvaluator.Evaluate(view, [Lu]);
        Assert.Contains(findings, f => f is { Layer: Layer.Scsi, Code: "scsi_device_not_running", Severity: HealthState.Failed });
        var path = Assert.Single(findings, f => f.Layer == Layer.Multipath);
        Assert.Equal(("path_failed", HealthState.Degraded, Lu), (path.Code, path.Severity, path.Subject));
        Assert.Contains("1 of 2 paths failed (sdd 1:0:0:0)", path.Message, StringComparison.Ordinal);
        Assert.Equal(HealthState.Degraded, HealthEvaluator.Overall(findings.Where(f => f.Layer == Layer.Multipath)));
    }

    [Fact]
    public async Task Paths_without_a_map_and_lus_not_visible_are_named()
    {
        var view = await Discovery("missing-map").ScanAsync(CancellationToken.None);
        var findings = HealthEvaluator.Evaluate(view, [Lu, "36000000000000000000000000000dead"]);
        Assert.Contains(findings, f => f is { Code: "no_multipath_map", Subject: Lu } && f.Message.Contains("sdc, sdd", StringComparison.Ordinal));
        Assert.Contains(findings, f => f is { Code: "lu_not_visible", Severity: HealthState.Failed });
    }

    [Fact]
    public async Task Multipathd_path_states_and_queueing_win_over_sysfs()
    {
        var json = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "multipathd", "show-maps-json-two-paths-one-failed.json"));
        var parsed = MultipathdJson.Parse(json);
        var map = Assert.Single(parsed);
        Assert.True(map.IsQueueing);
        Assert.Equal(("sdd", "failed", "faulty"), (map.Paths[1].Device, map.Paths[1].DmState, map.Paths[1].CheckerState));

        var view = await new SanDiscovery(new SysfsTree(FixtureRoot("two-paths")), new FixedMultipathd(parsed), TimeProvider.System).ScanAsync(CancellationToken.None);
        Assert.True(view.MultipathdAnswered);
        var info = Assert.Single(view.Maps);
        Assert.Equal((1, 1, true), (info.ActivePaths, info.FailedPaths, info.Queueing));
    }

    [Fact]
    public async Task All_paths_down_says_whether_io_blocks_or_fails()
    {
        var parsed = MultipathdJson.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "multipathd", "show-maps-json-two-paths-one-failed.json"))
            .Replace("\"chk_st\" : \"ready\"", "\"chk_st\" : \"faulty\"", StringComparison.Ordinal));
        var view = await new SanDiscovery(new SysfsTree(FixtureRoot("two-paths")), new FixedMultipathd(parsed), TimeProvider.System).ScanAsync(CancellationToken.None);
        var finding = Assert.Single(HealthEvaluator.Evaluate(view, [Lu]));
        Assert.Equal(("all_paths_down", HealthState.Failed), (finding.Code, finding.Severity));
        Assert.Contains("is queued", finding.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Trees_captured_in_the_san_lab_resolve_each_lu_to_its_map_by_wwid()
    {
        // scripts/lab capture-fixtures: node-a with LU 1 and a hot-added LU 2 (one LV active on it),
        // node-b with LU 1 and its second path set offline. Real kernel 6.1 sysfs and multipathd.
        const string Lu2 = "35000c500a0000002";
        var a = await CapturedView("lab-node-a");
        Assert.Equal([Lu, Lu2], a.Maps.Select(m => m.Wwid).Order(StringComparer.Ordinal));
        Assert.All(a.Maps, m => Assert.Equal((2, 0, true, true), (m.ActivePaths, m.FailedPaths, m.Queueing, m.Usable)));
        Assert.Equal("/dev/mapper/" + Lu, a.MapFor(Lu)!.DevicePath);
        var lv = Assert.Single(a.ActiveLvs);
        Assert.Equal(("lab2-slvm--lvldpx2vh6egi4znq4li2psqoq", 253, 2, 16UL << 20), (lv.DmName, lv.Major, lv.Minor, lv.SizeBytes));
        Assert.Empty(HealthEvaluator.Evaluate(a, [Lu, Lu2]));

        var b = await CapturedView("lab-node-b-path-down");
        var map = Assert.Single(b.Maps);
        Assert.Equal((Lu, 1, 1), (map.Wwid, map.ActivePaths, map.FailedPaths));
        // The same LU, other sd names: node-b probes a local disk first.
        Assert.NotEqual(a.MapFor(Lu)!.Paths.Select(p => p.Device), map.Paths.Select(p => p.Device));
        var findings = HealthEvaluator.Evaluate(b, [Lu, Lu2]);
        Assert.Contains(findings, f => f is { Layer: Layer.Scsi, Code: "scsi_device_not_running", Severity: HealthState.Failed } && f.Message.Contains("sdc", StringComparison.Ordinal));
        Assert.Contains(findings, f => f is { Layer: Layer.Multipath, Code: "path_failed", Subject: Lu });
        Assert.Contains(findings, f => f is { Code: "lu_not_visible", Subject: Lu2 });
    }

    [Theory]
    [InlineData("naa.5000c500a0000001", "35000c500a0000001")]
    [InlineData("naa.600A0B80002A5C4E", "3600a0b80002a5c4e")]
    [InlineData("eui.0025385a71b12345", "20025385a71b12345")]
    [InlineData("t10.ATA     QEMU HARDDISK   QM00001", "1ATA_QEMU_HARDDISK_QM00001")]
    [InlineData("", null)]
    public void Sysfs_wwids_become_multipath_wwids(string raw, string? wwid) => Assert.Equal(wwid, Wwid.FromSysfs(raw));

    [Fact]
    public async Task A_malformed_sysfs_file_reads_as_missing_not_as_a_crash()
    {
        var root = CopyFixture("two-paths");
        File.WriteAllText(Path.Combine(root, "sys/block/dm-0/size"), "garbage\n");
        Directory.Delete(Path.Combine(root, "sys/block/sdc/device"), recursive: true);
        var view = await new SanDiscovery(new SysfsTree(root), new FixedMultipathd(null), TimeProvider.System).ScanAsync(CancellationToken.None);
        Assert.Equal(0UL, Assert.Single(view.Maps).SizeBytes);
        Assert.Equal("unknown", view.Disks.Single(d => d.Name == "sdc").State);
    }

    [Fact]
    public async Task Targeted_scans_write_c_t_l_and_wildcards_go_to_san_hosts_only()
    {
        var root = CopyFixture("two-paths");
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
    public async Task A_rescan_of_a_host_that_does_not_exist_is_refused()
    {
        var e = await Assert.ThrowsAsync<AgentException>(() =>
            Rescanner(CopyFixture("two-paths")).RescanAsync([], [7], [], false, TimeSpan.Zero, CancellationToken.None));
        Assert.Equal(AgentErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("host7", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_hung_scan_write_times_out_and_the_rescan_still_answers()
    {
        var root = CopyFixture("two-paths");
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
        var root = CopyFixture("missing-map");
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

    private static Task<NodeView> CapturedView(string fixture)
    {
        var multipathd = MultipathdJson.Parse(File.ReadAllText(Path.Combine(FixtureRoot(fixture), "commands", "multipathd-show-maps.json")));
        return new SanDiscovery(new SysfsTree(FixtureRoot(fixture)), new FixedMultipathd(multipathd), TimeProvider.System).ScanAsync(CancellationToken.None);
    }

    private static string FixtureRoot(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "sysfs", name);

    private static SanDiscovery Discovery(string fixture) =>
        new(new SysfsTree(FixtureRoot(fixture)), new FixedMultipathd(null), TimeProvider.System);

    private static ScsiRescanner Rescanner(string root, TimeSpan? writeTimeout = null)
    {
        var sysfs = new SysfsTree(root);
        var options = new RescanOptions { MaxJitter = TimeSpan.Zero, MinInterval = TimeSpan.Zero, PollInterval = TimeSpan.FromMilliseconds(50), WriteTimeout = writeTimeout ?? TimeSpan.FromSeconds(10) };
        return new ScsiRescanner(sysfs, new SanDiscovery(sysfs, new FixedMultipathd(null), TimeProvider.System), options, NullLogger<ScsiRescanner>.Instance);
    }

    private string CopyFixture(string name)
    {
        var target = Directory.CreateTempSubdirectory("slvm-sysfs-").FullName;
        _temp.Add(target);
        foreach (var file in Directory.EnumerateFiles(FixtureRoot(name), "*", SearchOption.AllDirectories))
        {
            var destination = Path.Combine(target, Path.GetRelativePath(FixtureRoot(name), file));
            Directory.CreateDirectory(Path.GetDirectoryName(destination)!);
            File.Copy(file, destination);
        }

        return target;
    }

    private sealed class FixedMultipathd(IReadOnlyList<MultipathdMap>? maps) : IMultipathd
    {
        public Task<IReadOnlyList<MultipathdMap>?> ShowMapsAsync(CancellationToken cancellationToken) => Task.FromResult(maps);
    }
}
