using SharedLvm.Controller.Catalog;
using SharedLvm.Controller.State;

namespace SharedLvm.Tests.Controller.State;

/// <summary>The controller's durable state (SQLite): what survives a restart.</summary>
public sealed class ControllerStoreTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("slvm-store-").FullName;

    private string Database => Path.Combine(_directory, "controller.db");

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void Each_start_takes_a_higher_epoch_and_it_survives_a_reopen()
    {
        ulong first;
        using (var store = new ControllerStore(Database))
        {
            first = store.TakeEpoch("c1");
            Assert.Equal(first + 1, store.TakeEpoch("c2"));
        }

        using var reopened = new ControllerStore(Database);
        Assert.Equal(first + 2, reopened.TakeEpoch("c3"));
    }

    [Fact]
    public void Attachments_keep_their_phase_and_device_columns_across_a_reopen()
    {
        var device = new AttachedDevice("/dev/pool/slvm-x", "pool-slvm--x", 254, 7, 16UL << 20);
        var since = DateTimeOffset.Parse("2026-12-02T06:00:00Z", System.Globalization.CultureInfo.InvariantCulture);
        using (var store = new ControllerStore(Database))
        {
            store.SaveAttachment(new AttachmentRecord("vol-1", "node-a", AttachmentPhase.Attaching, null, since));
            store.SaveAttachment(new AttachmentRecord("vol-1", "node-a", AttachmentPhase.Attached, device, since));
            store.SaveAttachment(new AttachmentRecord("vol-2", "node-b", AttachmentPhase.Detaching, null, since));
            store.RemoveAttachment("vol-2", "node-b");
        }

        using var reopened = new ControllerStore(Database);
        var only = Assert.Single(reopened.Attachments());
        Assert.Equal(new AttachmentRecord("vol-1", "node-a", AttachmentPhase.Attached, device, since), only);
    }

    [Fact]
    public void The_journal_keeps_pending_operations_until_finished_and_prunes_old_finished_ones()
    {
        using var store = new ControllerStore(Database);
        var done = store.BeginOperation("create", "pool", "vol-1", "web", 8);
        var pending = store.BeginOperation("delete", "pool", "vol-2", "db", 4);
        store.BeginOperation("extend", "other", "vol-3", "x", 4);
        store.FinishOperation(done, "done");
        var left = Assert.Single(store.PendingOperations("pool"));
        Assert.Equal((pending, "delete", "vol-2", "db", 4UL), (left.Id, left.Kind, left.VolumeId, left.Name, left.SizeBytes));
        Assert.Equal(0, store.PruneOperations(TimeSpan.FromDays(1)));
        Assert.Equal(1, store.PruneOperations(TimeSpan.Zero - TimeSpan.FromSeconds(1)));
    }

    [Fact]
    public void Pools_and_node_marks_are_kept()
    {
        using (var store = new ControllerStore(Database))
        {
            store.AddPool(new PoolRow("san1", "san1", "/dev/mapper/35000c500a0000001", "35000c500a0000001"));
            store.AddPool(new PoolRow("san2", "san2", "/dev/loop9", string.Empty));
            store.RemovePool("san2");
            store.SaveNode(new NodeRow("node-a", "10.0.0.1:7401", "Fenced", "0.1.0"));
        }

        using var reopened = new ControllerStore(Database);
        Assert.Equal("san1", Assert.Single(reopened.Pools()).Name);
        Assert.Equal(new NodeRow("node-a", "10.0.0.1:7401", "Fenced", "0.1.0"), Assert.Single(reopened.Nodes()));
    }
}
