using SharedLvm.Contracts.Conventions;
using SharedLvm.Controller.Catalog;
using SharedLvm.Controller.Volumes;
using SharedLvm.Os.Lvm;

namespace SharedLvm.Tests.Lvm;

/// <summary>
/// Parsers and encoders against output captured from lvm2 2.03.16 on this machine kind (the
/// metadata-full line excepted: its wording is from the field notes, not reproduced here).
/// </summary>
public class LvmParsingTests
{
    private static string Fixture(string name) => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "lvm", name));

    [Fact]
    public void Fullreport_becomes_domain_types_with_byte_sizes_and_tags()
    {
        var report = Assert.Single(LvmReportParser.ParseFullReport(Fixture("fullreport-vg-with-snapshot.json")));
        var vg = report.VolumeGroup;
        Assert.Equal("vgt", vg.Name);
        Assert.Equal(2009071616UL, vg.SizeBytes);
        Assert.Equal(4194304UL, vg.ExtentSizeBytes);
        Assert.Equal(135262208UL, vg.MetadataAreaSizeBytes);
        Assert.Equal(67627008UL, vg.MetadataAreaFreeBytes);
        Assert.Equal(6, vg.LvCount);
        Assert.Equal(7UL, vg.Seqno);
        Assert.Equal("/dev/loop0", Assert.Single(report.PhysicalVolumes).Name);
        Assert.Equal(6, report.LogicalVolumes.Count);
        var lv = report.LogicalVolumes[0];
        Assert.Equal(("vgt", "lv1", 8388608UL), (lv.VgName, lv.Name, lv.SizeBytes));
        Assert.Equal(["sharedlvm", "slvm.name=a+2Fb"], lv.Tags);
        Assert.NotNull(lv.CreatedAt);
        // With activation disabled lvm reports major/minor as -1 and lv_attr[4] as 'X' (unknown).
        Assert.Null(lv.Major);
        Assert.False(lv.IsActive);
    }

    [Fact]
    public void A_fullreport_captured_on_a_lab_node_shows_the_active_lv_and_its_owner_tag()
    {
        // scripts/lab capture-fixtures on node-a: lvm 2.03.16 on a guest kernel with device-mapper,
        // so unlike this machine's reports the active LV has a real major:minor.
        var json = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "sysfs", "lab-node-a", "commands", "fullreport.json"));
        var reports = LvmReportParser.ParseFullReport(json);
        Assert.Equal(["lab", "lab2"], reports.Select(r => r.VolumeGroup.Name).Order(StringComparer.Ordinal));
        var active = Assert.Single(reports.SelectMany(r => r.LogicalVolumes), lv => lv.IsActive);
        Assert.Equal(("lab2", 253, 2), (active.VgName, active.Major, active.Minor));
        Assert.Contains("sharedlvm_owner_node-a", active.Tags);
        Assert.All(reports, r => Assert.False(r.VolumeGroup.AutoActivation));
    }

    [Fact]
    public void A_report_without_byte_units_is_a_format_error_not_a_wrong_number()
    {
        var json = Fixture("fullreport-vg-with-snapshot.json").Replace("\"vg_size\":\"2009071616\"", "\"vg_size\":\"1.87g\"", StringComparison.Ordinal);
        var e = Assert.Throws<FormatException>(() => LvmReportParser.ParseFullReport(json));
        Assert.Contains("vg_size", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(5, "  Logical Volume \"lv1\" already exists in volume group \"vgt\"", LvmErrorKind.AlreadyExists)]
    [InlineData(5, "  Volume group \"vgt\" has insufficient free space (467 extents): 20480 required.", LvmErrorKind.InsufficientSpace)]
    [InlineData(5, "  Failed to find logical volume \"vgt/nope\"", LvmErrorKind.NotFound)]
    [InlineData(5, "  Volume group \"vgx\" not found\n  Cannot process volume group vgx", LvmErrorKind.NotFound)]
    [InlineData(5, "  WARNING: Activation disabled. No device-mapper interaction will be attempted.\n  Can't create snapshot without using device-mapper kernel driver.", LvmErrorKind.NeedsDeviceMapper)]
    [InlineData(3, "  Invalid argument for --addtag: bad tag\n  Error during parsing of command line.", LvmErrorKind.InvalidArgument)]
    [InlineData(5, "  VG vgt metadata on /dev/loop0 (521 bytes) exceeds maximum metadata size (520 bytes)", LvmErrorKind.MetadataFull)]
    [InlineData(5, "  Something else went wrong.", LvmErrorKind.Failed)]
    public void Lvm_errors_are_classified_from_their_C_locale_text(int exitCode, string stderr, LvmErrorKind kind)
    {
        var e = new LvmException("lvcreate", exitCode, stderr);
        Assert.Equal(kind, e.Kind);
        Assert.DoesNotContain("WARNING: Activation disabled", e.Message, StringComparison.Ordinal);
    }

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
            "global{activation=0} devices{use_devicesfile=0 obtain_device_list_from_udev=0 global_filter=[\"a|^/dev/mapper/35000c500a0000001$|\",\"r|.*|\"]} " +
            "backup{backup=1 backup_dir=\"/var/lib/sharedlvm/lvm/backup\" archive=1 archive_dir=\"/var/lib/sharedlvm/lvm/archive\" retain_days=0 retain_min=20}",
            controller);

        var agent = new LvmConfig { ActivationEnabled = true, MetadataReadOnly = true, DevicePatterns = ["^/dev/mapper/3[0-9a-f]+$"], VolumeList = ["@sharedlvm_owner_node-a"] }.Render();
        Assert.Contains("global{activation=1 metadata_read_only=1}", agent, StringComparison.Ordinal);
        Assert.Contains("activation{volume_list=[\"@sharedlvm_owner_node-a\"]}", agent, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => new LvmConfig { Devices = ["/dev/sda\"]} global{activation=1"] }.Render());
    }

    [Theory]
    [InlineData("plain")]
    [InlineData("ünïcode = + , / spaces \" ' $(x)")]
    [InlineData("")]
    public void Tag_encoding_round_trips_and_stays_in_lvms_tag_charset(string value)
    {
        var tag = LvTags.Label("key.with-dash", value);
        Assert.Matches("^[A-Za-z0-9_+.=-]+$", tag);
        Assert.True(LvTags.TryParseLabel(tag, out var key, out var decoded));
        Assert.Equal(("key.with-dash", value), (key, decoded));
    }

    [Fact]
    public void Volume_ids_are_26_base32_characters_and_name_their_lv()
    {
        var ids = Enumerable.Range(0, 1000).Select(_ => VolumeId.New()).ToHashSet();
        Assert.Equal(1000, ids.Count);
        Assert.All(ids, id => Assert.True(VolumeId.IsValid(id), id));
        var one = ids.First();
        Assert.Equal(one, VolumeId.FromLvName(VolumeId.LvName(one)));
        Assert.Null(VolumeId.FromLvName("lv1"));
        Assert.False(VolumeId.IsValid("ABCDEFGHIJKLMNOPQRSTUVWXYZ"));
    }

    [Fact]
    public void Backup_file_gives_seqno_and_size()
    {
        var path = Path.GetTempFileName();
        File.WriteAllText(path, "# Generated by LVM2\ncontents = \"Text Format Volume Group\"\n\nvgt {\n\tid = \"x\"\n\tseqno = 42\n\tformat = \"lvm2\"\n}\n");
        var backup = BackupFile.Read(path);
        File.Delete(path);
        Assert.Equal(42UL, backup!.Value.Seqno);
        Assert.Null(BackupFile.Read("/nonexistent/backup"));
    }
}
