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

    [Fact]
    public void Marks_exported_by_one_state_directory_are_taken_over_by_an_empty_one()
    {
        var since = DateTimeOffset.Parse("2026-12-03T06:00:00Z", System.Globalization.CultureInfo.InvariantCulture);
        ClusterMarks marks;
        using (var old = new ControllerStore(Database))
        {
            old.AddPool(new PoolRow("san1", "san1", "/dev/mapper/3600a", "3600a", WipeOnDelete.None));
            old.ReservationNumber("node-a");
            old.ReservationNumber("node-b");
            old.ReservationNumber("node-c");
            old.SaveNode(new NodeRow("node-a", "10.0.0.1:7401", "Fenced", "0.1.0"));
            old.SaveFence(new FenceRow("node-a", "freeing", "Storage", "Operator", "hung, ticket 8", since));
            old.SaveNode(new NodeRow("node-b", "10.0.0.2:7401", "Draining", "0.1.0"));
            old.SaveNode(new NodeRow("node-c", "10.0.0.3:7401", "Ready", "0.1.0"));
            old.SaveAttachment(new AttachmentRecord("vol-attaching", "node-c", AttachmentPhase.Attaching, null, since));
            old.SaveAttachment(new AttachmentRecord("vol-detaching", "node-c", AttachmentPhase.Detaching, null, since));
            old.SaveAttachment(new AttachmentRecord("vol-attached", "node-c", AttachmentPhase.Attached, new AttachedDevice("/dev/dm-3", "dm", 253, 3, 4096), since));
            marks = old.ExportMarks().Marks;
        }

        using var fresh = new ControllerStore(Path.Combine(_directory, "fresh.db"));
        fresh.AddPool(new PoolRow("san1", "san1", "/dev/mapper/3600a", "3600a")); // discovered: ZERO until the marks say otherwise
        fresh.ReservationNumber("node-d"); // registered here first: number 1, which node-a holds on the LU
        fresh.SaveAttachment(new AttachmentRecord("vol-stale", "node-d", AttachmentPhase.Attaching, null, since)); // never reached the LU
        fresh.SaveAttachment(new AttachmentRecord("vol-attached", "node-c", AttachmentPhase.Attached, null, since));
        fresh.ImportMarks(marks);

        Assert.Equal(WipeOnDelete.None, Assert.Single(fresh.Pools()).WipeOnDelete);
        var numbers = fresh.ReservationNumbers();
        Assert.Equal((1u, 2u, 3u), (numbers["node-a"], numbers["node-b"], numbers["node-c"]));
        Assert.False(numbers.ContainsKey("node-d"), "a number another node holds on the LU is given up");
        Assert.Equal(4u, fresh.ReservationNumber("node-d"));
        var states = fresh.Nodes().ToDictionary(n => n.Name, n => n.State);
        Assert.Equal(("Fenced", "Draining", "Unreachable"), (states["node-a"], states["node-b"], states["node-c"]));
        Assert.Equal(new FenceRow("node-a", "freeing", "Storage", "Operator", "hung, ticket 8", since), Assert.Single(fresh.Fences()));
        // The attaches and detaches in flight are the LU's; a finished attachment is not a mark.
        Assert.Equal(["vol-attached/node-c/Attached", "vol-attaching/node-c/Attaching", "vol-detaching/node-c/Detaching"],
            fresh.Attachments().Select(a => $"{a.VolumeId}/{a.Node}/{a.Phase}").Order(StringComparer.Ordinal));
    }

    [Fact]
    public void The_marks_version_rises_with_marks_and_not_with_liveness()
    {
        using var store = new ControllerStore(Database);
        store.SaveNode(new NodeRow("node-a", "10.0.0.1:7401", "Ready", "0.1.0"));
        var before = store.MarksVersion;
        store.SaveNode(new NodeRow("node-a", "10.0.0.1:7401", "Unreachable", "0.1.0"));
        store.SaveNode(new NodeRow("node-a", "10.0.0.1:7401", "Ready", "0.1.0"));
        Assert.Equal(before, store.MarksVersion);
        store.ReservationNumber("node-a");
        Assert.True(store.MarksVersion > before, "a new reservation number is a mark");
        before = store.MarksVersion;
        store.ReservationNumber("node-a");
        Assert.Equal(before, store.MarksVersion);
        store.SaveNode(new NodeRow("node-a", "10.0.0.1:7401", "Draining", "0.1.0"));
        Assert.True(store.MarksVersion > before, "DRAINING is a mark");
        before = store.MarksVersion;
        store.SaveNode(new NodeRow("node-a", "10.0.0.1:7401", "Ready", "0.1.0"));
        Assert.True(store.MarksVersion > before, "leaving DRAINING is a mark");
        before = store.MarksVersion;
        var since = DateTimeOffset.UnixEpoch;
        store.SaveAttachment(new AttachmentRecord("vol", "node-a", AttachmentPhase.Attaching, null, since));
        Assert.True(store.MarksVersion > before, "an attach in flight is a mark");
        before = store.MarksVersion;
        var device = new AttachedDevice("/dev/dm-3", "dm", 253, 3, 4096);
        store.SaveAttachment(new AttachmentRecord("vol", "node-a", AttachmentPhase.Attached, device, since));
        Assert.True(store.MarksVersion > before, "an attach no longer in flight is a mark");
        before = store.MarksVersion;
        store.SaveAttachment(new AttachmentRecord("vol", "node-a", AttachmentPhase.Attached, device with { SizeBytes = 8192 }, since));
        Assert.Equal(before, store.MarksVersion);
        store.SaveAttachment(new AttachmentRecord("vol", "node-a", AttachmentPhase.Detaching, device, since));
        before = store.MarksVersion;
        store.RemoveAttachment("vol", "node-a");
        Assert.True(store.MarksVersion > before, "a detach no longer in flight is a mark");
    }
}
