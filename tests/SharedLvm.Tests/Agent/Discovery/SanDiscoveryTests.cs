using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using SharedLvm.Agent;
using SharedLvm.Agent.Discovery;
using SharedLvm.Agent.Health;
using SharedLvm.Agent.Rescan;
using SharedLvm.Contracts.V1;
using SharedLvm.Tests.Support;
using static SharedLvm.Tests.Support.SysfsFixtures;

namespace SharedLvm.Tests.Agent.Discovery;

/// <summary>SAN discovery on sysfs/udev trees captured from real hosts: each LU found as its multipath map by WWID.</summary>
public sealed class SanDiscoveryTests : IDisposable
{
    private const string Lu = "35000c500a0000001";
    private readonly SysfsFixtures _fixtures = new();

    public void Dispose() => _fixtures.Dispose();

    [Fact]
    public async Task The_lu_is_its_multipath_map_found_by_wwid_whatever_the_sd_names()
    {
        var view = await DiscoveryOf("two-paths").ScanAsync(CancellationToken.None);
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
        // Its table sits on LU 2's map (dm-1), as the agent's lvm always activates.
        Assert.Equal(["dm-1"], lv.Devices);
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

    [Fact]
    public async Task A_malformed_sysfs_file_reads_as_missing_not_as_a_crash()
    {
        var root = _fixtures.Copy("two-paths");
        File.WriteAllText(Path.Combine(root, "sys/block/dm-0/size"), "garbage\n");
        Directory.Delete(Path.Combine(root, "sys/block/sdc/device"), recursive: true);
        var view = await new SanDiscovery(new SysfsTree(root), new FixedMultipathd(null), TimeProvider.System).ScanAsync(CancellationToken.None);
        Assert.Equal(0UL, Assert.Single(view.Maps).SizeBytes);
        Assert.Equal("unknown", view.Disks.Single(d => d.Name == "sdc").State);
    }

    [Theory]
    [InlineData("naa.5000c500a0000001", "35000c500a0000001")]
    [InlineData("naa.600A0B80002A5C4E", "3600a0b80002a5c4e")]
    [InlineData("eui.0025385a71b12345", "20025385a71b12345")]
    [InlineData("t10.ATA     QEMU HARDDISK   QM00001", "1ATA_QEMU_HARDDISK_QM00001")]
    [InlineData("", null)]
    public void Sysfs_wwids_become_multipath_wwids(string raw, string? wwid) => Assert.Equal(wwid, Wwid.FromSysfs(raw));
}
