using SharedLvm.Controller.Volumes;

namespace SharedLvm.Tests.Controller.Volumes;

public sealed class SnapshotSupportTests : IDisposable
{
    private readonly string _misc = Path.GetTempFileName();

    public void Dispose() => File.Delete(_misc);

    [Fact]
    public void Device_mapper_in_proc_misc_makes_snapshots_available()
    {
        // /proc/misc of a lab guest with dm_mod loaded.
        File.WriteAllText(_misc, "229 fuse\n236 device-mapper\n 60 loop-control\n183 hw_random\n");
        var support = SnapshotSupport.Detect(enabled: true, _misc);
        Assert.True(support.IsAvailable);
        Assert.Null(support.UnavailableReason);
    }

    [Fact]
    public void Without_device_mapper_the_reason_names_it()
    {
        // /proc/misc of this build machine: loop devices, no device-mapper (lvm still creates /dev/mapper/control).
        File.WriteAllText(_misc, "237 loop-control\n183 hw_random\n 1 psaux\n");
        var support = SnapshotSupport.Detect(enabled: true, _misc);
        Assert.False(support.IsAvailable);
        Assert.Contains("no device-mapper driver", support.UnavailableReason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_name_that_only_contains_device_mapper_does_not_count()
    {
        File.WriteAllText(_misc, " 42 not-device-mapper-really\n");
        Assert.False(SnapshotSupport.Detect(enabled: true, _misc).IsAvailable);
    }

    [Fact]
    public void Turned_off_in_the_configuration_wins_over_the_kernel()
    {
        File.WriteAllText(_misc, "236 device-mapper\n");
        var support = SnapshotSupport.Detect(enabled: false, _misc);
        Assert.Contains("Snapshots=false", support.UnavailableReason, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unreadable_proc_misc_is_a_reason_not_a_crash()
    {
        var support = SnapshotSupport.Detect(enabled: true, Path.Combine(_misc + ".d", "misc"));
        Assert.False(support.IsAvailable);
        Assert.Contains("could not read", support.UnavailableReason, StringComparison.Ordinal);
    }
}
