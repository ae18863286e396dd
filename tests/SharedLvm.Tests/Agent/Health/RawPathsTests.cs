using SharedLvm.Agent.Discovery;
using SharedLvm.Agent.Health;
using static SharedLvm.Tests.Support.SysfsFixtures;

namespace SharedLvm.Tests.Agent.Health;

/// <summary>The rule for an LV activated through a raw path instead of its LU's multipath map.</summary>
public sealed class RawPathsTests
{
    private const string Lu2 = "35000c500a0000002";

    [Fact]
    public async Task A_volume_lv_on_a_raw_sd_path_is_found_with_the_path_and_the_map_it_should_use()
    {
        var view = await DiscoveryOf("raw-path").ScanAsync(CancellationToken.None);
        var use = Assert.Single(RawPaths.Find(view, []));
        Assert.Equal(("lab2", "slvm-lvldpx2vh6egi4znq4li2psqoq", "/dev/sdc", Lu2), (use.Vg, use.Lv, use.Device, use.Wwid));
        Assert.Equal(("/dev/mapper/" + Lu2, false), (use.MapPath, use.MapPresent));
        Assert.Equal("lab2/slvm-lvldpx2vh6egi4znq4li2psqoq", use.Subject);
    }

    [Fact]
    public async Task An_lv_on_its_map_is_no_finding()
    {
        Assert.Empty(RawPaths.Find(await CapturedView("lab-node-a"), [Lu2]));
    }

    [Fact]
    public async Task Another_lv_on_a_path_counts_only_when_its_lu_is_shared_here_and_a_partition_is_its_disk()
    {
        // The node's own LV (not a volume) on a partition of sdc: a local disk as far as this node
        // knows, until LU 2 is expected here or has a map.
        var view = await DiscoveryOf("raw-path").ScanAsync(CancellationToken.None);
        var own = view with { ActiveLvs = [new ActiveLv("vg0-root", "dm-9", 253, 9, 1 << 20, false) { Devices = ["sdc1"] }] };
        Assert.Empty(RawPaths.Find(own, []));
        var use = Assert.Single(RawPaths.Find(own, [Lu2]));
        Assert.Equal(("vg0", "root", "/dev/sdc1"), (use.Vg, use.Lv, use.Device));

        // sda is a path of LU 1, whose map exists: an LV on sda is on a raw path with the map right there.
        var besideItsMap = view with { ActiveLvs = [new ActiveLv("vg0-data", "dm-9", 253, 9, 1 << 20, false) { Devices = ["sda"] }] };
        var beside = Assert.Single(RawPaths.Find(besideItsMap, []));
        Assert.Equal(("/dev/mapper/35000c500a0000001", true), (beside.MapPath, beside.MapPresent));

        // Not a SCSI disk of this node (a loop device, a virtio disk): nothing SharedLvm can say.
        Assert.Empty(RawPaths.Find(view with { ActiveLvs = [new ActiveLv("lab2-slvm--x", "dm-9", 253, 9, 1 << 20, false) { Devices = ["loop0", "vda"] }] }, [Lu2]));
    }
}
