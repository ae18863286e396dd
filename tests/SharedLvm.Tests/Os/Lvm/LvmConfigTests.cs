using SharedLvm.Contracts.Conventions;
using SharedLvm.Controller.Catalog;
using SharedLvm.Controller.Volumes;
using SharedLvm.Os.Lvm;

namespace SharedLvm.Tests.Os.Lvm;

/// <summary>The --config text every lvm call carries.</summary>
public class LvmConfigTests
{
    [Fact]
    public void Config_restricts_scanning_to_exact_devices_and_carries_every_safety_setting()
    {
        var controller = new LvmConfig
        {
            Devices = ["/dev/mapper/35000c500a0000001"],
            BackupDirectory = "/var/lib/sharedlvm/lvm/backup",
            ArchiveDirectory = "/var/lib/sharedlvm/lvm/archive",
            ArchiveRetainCount = 20,
        }.Render();
        Assert.Equal(
            "global{activation=0} devices{use_devicesfile=0 obtain_device_list_from_udev=0 hints=\"none\" global_filter=[\"a|^/dev/mapper/35000c500a0000001$|\",\"r|.*|\"]} " +
            "backup{backup=1 backup_dir=\"/var/lib/sharedlvm/lvm/backup\" archive=1 archive_dir=\"/var/lib/sharedlvm/lvm/archive\" retain_days=0 retain_min=20}",
            controller);

        Assert.EndsWith(" backup{backup=0 archive=0 backup_dir=\"/var/lib/sharedlvm/lvm/backup\"}",
            new LvmConfig { BackupDirectory = "/var/lib/sharedlvm/lvm/backup", ArchiveDirectory = "/var/lib/sharedlvm/lvm/archive" }.ForReads().Render(),
            StringComparison.Ordinal);

        var agent = new LvmConfig { ActivationEnabled = true, MetadataReadOnly = true, DevicePatterns = ["^/dev/mapper/3[0-9a-f]+$"], VolumeList = ["@sharedlvm_owner_node-a"] }.Render();
        Assert.Contains("global{activation=1 metadata_read_only=1}", agent, StringComparison.Ordinal);
        Assert.Contains("activation{volume_list=[\"@sharedlvm_owner_node-a\"]}", agent, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => new LvmConfig { Devices = ["/dev/sda\"]} global{activation=1"] }.Render());

        // Only the deactivation of an LV found on a raw path turns component detection off.
        Assert.DoesNotContain("multipath_component_detection", agent, StringComparison.Ordinal);
        Assert.Contains("devices{use_devicesfile=0 obtain_device_list_from_udev=0 hints=\"none\" multipath_component_detection=0 global_filter=[\"a|^/dev/sdc$|\",",
            new LvmConfig { Devices = ["/dev/sdc"], MultipathComponentDetection = false }.Render(), StringComparison.Ordinal);
    }

    [Fact]
    public void Reads_and_activations_never_run_with_backup_on()
    {
        var runner = new SharedLvm.Tests.Support.CannedRunner(null);
        var config = new LvmConfig { Devices = ["/dev/loop7"], BackupDirectory = "/b", ArchiveDirectory = "/a" };
        Assert.Contains("backup{backup=0 archive=0", new LvmReader(runner, config, TimeSpan.FromSeconds(5)).Config.Render(), StringComparison.Ordinal);
        Assert.Contains("backup{backup=0 archive=0", new LvmActivation(runner, config, TimeSpan.FromSeconds(5)).Config.Render(), StringComparison.Ordinal);
        Assert.Contains("backup{backup=1", new SharedLvm.Os.Lvm.LvmMetadataWriter(runner, config, TimeSpan.FromSeconds(5)).Config.Render(), StringComparison.Ordinal);
    }
}
