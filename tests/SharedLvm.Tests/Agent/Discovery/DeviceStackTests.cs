using SharedLvm.Agent.Discovery;
using SharedLvm.Tests.Support;
using static SharedLvm.Tests.Support.SysfsFixtures;

namespace SharedLvm.Tests.Agent.Discovery;

/// <summary>What an active LV's device sits on, from /sys/block/dm-N/slaves: a map, or a raw path.</summary>
public sealed class DeviceStackTests : IDisposable
{
    private readonly SysfsFixtures _fixtures = new();

    public void Dispose() => _fixtures.Dispose();

    [Fact]
    public void An_lv_activated_by_the_agent_sits_on_its_lus_map_and_the_walk_stops_there()
    {
        var sysfs = new SysfsTree(FixtureRoot("lab-node-a"));
        Assert.Equal(["dm-1"], DeviceStack.Beneath(sysfs, "dm-2"));
        Assert.Empty(DeviceStack.NonDmBeneath(sysfs, "dm-2"));
    }

    [Fact]
    public void An_lv_activated_by_another_lvm_sits_on_a_raw_path()
    {
        var sysfs = new SysfsTree(FixtureRoot("raw-path"));
        Assert.Equal(["sdc"], DeviceStack.Beneath(sysfs, "dm-2"));
        Assert.Equal(["sdc"], DeviceStack.NonDmBeneath(sysfs, "dm-2"));
    }

    [Fact]
    public void The_walk_goes_through_other_lvs_and_kpartx_partitions_but_stops_at_maps_and_foreign_dm_devices()
    {
        // A snapshot (dm-5) over its origin's -real (dm-4) on a raw sda, and its -cow (dm-3) on a
        // kpartx partition (dm-6) of map dm-0; dm-7, a crypt device, is no LV and not walked into.
        var root = _fixtures.Copy("lab-node-a");
        void Dm(string dm, string uuid, params string[] slaves)
        {
            Directory.CreateDirectory(Path.Combine(root, "sys/block", dm, "dm"));
            File.WriteAllText(Path.Combine(root, "sys/block", dm, "dm/uuid"), uuid + "\n");
            Directory.CreateDirectory(Path.Combine(root, "sys/block", dm, "slaves"));
            foreach (var slave in slaves)
            {
                File.WriteAllText(Path.Combine(root, "sys/block", dm, "slaves", slave), string.Empty);
            }
        }

        Dm("dm-4", "LVM-aaaa-real", "sda");
        Dm("dm-6", "part1-mpath-35000c500a0000001", "dm-0");
        Dm("dm-3", "LVM-aaaa-cow", "dm-6");
        Dm("dm-7", "CRYPT-LUKS2-x", "sdb");
        Dm("dm-5", "LVM-aaaa", "dm-4", "dm-3", "dm-7");
        var sysfs = new SysfsTree(root);
        // Slaves in name order: dm-3 (-> dm-6 -> map dm-0), dm-4 (-> sda), dm-7.
        Assert.Equal(["dm-0", "sda", "dm-7"], DeviceStack.Beneath(sysfs, "dm-5"));
        Assert.Equal(["sda"], DeviceStack.NonDmBeneath(sysfs, "dm-5"));
        Assert.True(DeviceStack.IsDm("dm-12"));
        Assert.False(DeviceStack.IsDm("sda"));
    }
}
