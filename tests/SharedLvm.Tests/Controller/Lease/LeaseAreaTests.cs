using SharedLvm.Controller.Lease;
using SharedLvm.Controller.State;
using SharedLvm.Os.Sanlock;
using SharedLvm.Tests.Support;

namespace SharedLvm.Tests.Controller.Lease;

/// <summary>The cluster's marks in the lease area, on a real block device with O_DIRECT.</summary>
public sealed class LeaseAreaTests : IDisposable
{
    private const ulong MiB = 1024 * 1024;
    private readonly LoopDevice? _lu = LoopDevice.Create(8L * 1024 * 1024);

    public void Dispose() => _lu?.Dispose();

    [Fact]
    public void The_newest_copy_of_the_marks_is_read_back_and_a_torn_one_leaves_the_other()
    {
        LoopDevice.Present(_lu);
        var area = new LeaseArea("san1", "slvm_x", new SanlockDisk(_lu.Device, MiB), new SanlockDisk(_lu.Device, 2 * MiB), new SanlockDisk(_lu.Device, 3 * MiB));
        Assert.Null(area.ReadMarks());

        var fence = new FenceRow("node-a", "done", "Storage", "Operator", "hung", DateTimeOffset.Parse("2026-12-03T06:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        var attaching = new AttachmentMark("vol-1", "node-b", "Attaching", fence.Since);
        var first = new ClusterMarks(4, 7, [new NodeMark("node-a", 1, "10.0.0.1:7401", "0.1.0", "Fenced", fence)], [new PoolMark("san1", "None")]) { Attachments = [attaching] };
        area.WriteMarks(first);
        var read = area.ReadMarks();
        Assert.NotNull(read);
        Assert.Equal((4UL, 7UL, fence, "None"), (read.Epoch, read.Sequence, read.Nodes[0].Fence, read.Pools[0].WipeOnDelete));
        Assert.Equal(attaching, Assert.Single(read.Attachments!));

        // Thousands of nodes still fit, in the other slot; the higher sequence wins.
        var many = Enumerable.Range(0, 1500).Select(i => new NodeMark($"node-{i:D4}", (uint)i + 1, "10.0.0.1:7401", "0.1.0", string.Empty, null)).ToArray();
        area.WriteMarks(first with { Sequence = 8, Nodes = many });
        Assert.Equal((8UL, 1500), (area.ReadMarks()!.Sequence, area.ReadMarks()!.Nodes.Count));

        // A later epoch wins over a higher sequence from an earlier one (a deposed writer's last copy).
        area.WriteMarks(first with { Epoch = 5, Sequence = 3 });
        Assert.Equal(5UL, area.ReadMarks()!.Epoch);

        // Sequence 3's slot torn: the other slot's copy is what is read.
        using (var device = SharedLvm.Os.Devices.BlockDevice.Open(_lu.Device, writable: true))
        using (var garbage = new SharedLvm.Os.Devices.AlignedBuffer(4096))
        {
            garbage.Span.Fill(0x5a);
            garbage.Span[..10].Clear();
            "SLVMMARKS1"u8.CopyTo(garbage.Span);
            device.Write(garbage.Span, (3 * MiB) + (64 * 1024) + (448 * 1024));
        }

        Assert.Equal(8UL, area.ReadMarks()!.Sequence);
    }
}
