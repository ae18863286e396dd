using SharedLvm.Contracts.Conventions;
using SharedLvm.Controller;
using SharedLvm.Controller.Catalog;
using SharedLvm.Os.Lvm;

namespace SharedLvm.Tests.Controller.Catalog;

/// <summary>The in-memory model of a pool: claims, capacity accounting, attachments and state.</summary>
public class PoolCatalogTests
{
    private const ulong MiB = 1024 * 1024;

    [Fact]
    public void A_second_operation_on_a_claimed_volume_or_name_is_aborted_until_the_first_releases()
    {
        var catalog = Loaded();
        var claim = catalog.Claim("extend", "vol-1");
        var busy = Assert.Throws<ControllerException>(() => catalog.Claim("delete", "vol-1"));
        Assert.Equal(ControllerErrorKind.Aborted, busy.Kind);
        Assert.Contains("Another operation (extend)", busy.Message, StringComparison.Ordinal);

        using (catalog.Claim("create", PoolCatalog.NameKey("web")))
        {
            var named = Assert.Throws<ControllerException>(() => catalog.Claim("clone", PoolCatalog.NameKey("web")));
            Assert.Contains("volume name 'web'", named.Message, StringComparison.Ordinal);
        }

        claim.Dispose();
        claim.Dispose(); // twice is harmless
        using var again = catalog.Claim("delete", "vol-1");
    }

    [Fact]
    public void A_claim_of_several_keys_takes_none_when_one_is_busy()
    {
        var catalog = Loaded();
        using var held = catalog.Claim("attach", "b");
        Assert.Throws<ControllerException>(() => catalog.Claim("snapshot", "a", "b"));
        using var a = catalog.Claim("extend", "a");
    }

    [Fact]
    public void Free_space_follows_puts_and_removes_and_reapplying_a_put_is_harmless()
    {
        var catalog = Loaded();
        var free = catalog.Capacity.FreeBytes;
        var volume = Record(VolumeId.New(), "v", 8 * MiB);
        catalog.Put(volume);
        catalog.Put(volume);
        Assert.Equal(free - (8 * MiB), catalog.Capacity.FreeBytes);
        catalog.Put(volume with { SizeBytes = 12 * MiB });
        Assert.Equal(free - (12 * MiB), catalog.Capacity.FreeBytes);
        Assert.Equal(1, catalog.Count);
        catalog.Remove(volume.Id);
        catalog.Remove(volume.Id);
        Assert.Equal(free, catalog.Capacity.FreeBytes);
        Assert.Equal(0, catalog.Count);
    }

    [Fact]
    public void State_comes_from_the_operation_in_flight_and_the_attachments()
    {
        var catalog = Loaded();
        var id = VolumeId.New();
        var volume = Record(id, "db", 4 * MiB);
        catalog.Put(volume);
        Assert.Equal(VolumeLifecycle.Available, catalog.StateOf(volume));

        using (catalog.Claim("delete", id))
        {
            Assert.Equal(VolumeLifecycle.Deleting, catalog.StateOf(volume));
        }

        using (catalog.Claim("create", PoolCatalog.NameKey("db")))
        {
            Assert.Equal(VolumeLifecycle.Creating, catalog.StateOf(volume));
        }

        var owned = volume with { Owners = ["node-a"] };
        catalog.Put(owned);
        // A tag without a recorded attachment (a crash between the two) is ATTACHING until confirmed.
        Assert.Equal(VolumeLifecycle.Attaching, catalog.StateOf(owned));
        catalog.SetAttachment(new AttachmentRecord(id, "node-a", AttachmentPhase.Attached, new AttachedDevice("/dev/p/x", "p-x", 254, 3, 4 * MiB), DateTimeOffset.UnixEpoch));
        Assert.Equal(VolumeLifecycle.Attached, catalog.StateOf(owned));
        using (catalog.Claim("extend", id))
        {
            Assert.Equal(VolumeLifecycle.Attached, catalog.StateOf(owned));
        }

        catalog.SetAttachment(new AttachmentRecord(id, "node-a", AttachmentPhase.Detaching, null, DateTimeOffset.UnixEpoch));
        Assert.Equal(VolumeLifecycle.Detaching, catalog.StateOf(owned));
        Assert.Equal(VolumeLifecycle.Copying, catalog.StateOf(volume with { CopyPending = true }));
    }

    [Fact]
    public void Loading_keeps_recorded_attachments_and_rebuilds_records_from_tags()
    {
        var id = VolumeId.New();
        var lv = new LogicalVolume("pool", VolumeId.LvName(id), "uuid", 8 * MiB,
            [LvTags.Managed, LvTags.NamePrefix + "web", OwnerTag.For("node-b"), LvTags.Label("tier", "gold")], "-wi-------", string.Empty, null, null, null);
        var catalog = new PoolCatalog("pool");
        catalog.Load(Report([lv]), [new AttachmentRecord(id, "node-b", AttachmentPhase.Attached, null, DateTimeOffset.UnixEpoch)]);
        var volume = Assert.IsType<VolumeRecord>(catalog.GetByName("web"));
        Assert.Equal((id, "node-b", "gold"), (volume.Id, Assert.Single(volume.Owners), volume.Labels["tier"]));
        Assert.Equal(AttachmentPhase.Attached, Assert.Single(catalog.Attachments(volume)).Phase);
    }

    [Fact]
    public void An_owner_tag_without_a_recorded_attachment_loads_as_attached_with_its_device_unknown()
    {
        var id = VolumeId.New();
        var lv = new LogicalVolume("pool", VolumeId.LvName(id), "uuid", 8 * MiB,
            [LvTags.Managed, LvTags.NamePrefix + "web", OwnerTag.For("node-b")], "-wi-------", string.Empty, null, null, null);
        var catalog = new PoolCatalog("pool");
        catalog.Load(Report([lv]), []); // a successor's empty state directory
        var volume = catalog.GetByName("web")!;
        var attachment = Assert.Single(catalog.Attachments(volume));
        Assert.Equal(("node-b", AttachmentPhase.Attached, (AttachedDevice?)null), (attachment.Node, attachment.Phase, attachment.Device));
        Assert.Equal(VolumeLifecycle.Attached, catalog.StateOf(volume));
    }

    private static PoolCatalog Loaded()
    {
        var catalog = new PoolCatalog("pool");
        catalog.Load(Report([]), []);
        return catalog;
    }

    private static FullReport Report(IReadOnlyList<LogicalVolume> lvs) =>
        new(new VolumeGroup("pool", "vg-uuid", 1024 * MiB, 1024 * MiB, 4 * MiB, 256, 7, lvs.Count, 128 * MiB, 64 * MiB, []), [], lvs);

    private static VolumeRecord Record(string id, string name, ulong size) =>
        new(id, name, "pool", "pool", size, VolumeKind.Standard, string.Empty, new Dictionary<string, string>(), null, false, []);
}
