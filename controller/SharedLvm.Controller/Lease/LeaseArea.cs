using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using SharedLvm.Controller.State;
using SharedLvm.Os.Devices;
using SharedLvm.Os.Lvm;
using SharedLvm.Os.Sanlock;

namespace SharedLvm.Controller.Lease;

/// <summary>
/// A pool's lease area: the LV <see cref="LvName"/> in its VG, addressed by the PV's path and byte
/// offset (no device-mapper on the controller host). 1 MiB sanlock lockspace, 1 MiB "writer" resource,
/// then two 4 KiB slots of <see cref="LeaseRecord"/> written in turn (a torn write leaves the other),
/// and from +2 MiB + 64 KiB two 448 KiB slots of <see cref="ClusterMarks"/>, also written in turn.
/// Its place in the VG is one rule, here: every controller derives the same addresses from `pvs --segments`.
/// </summary>
public sealed record LeaseArea(string Pool, string Lockspace, SanlockDisk LockspaceDisk, SanlockDisk ResourceDisk, SanlockDisk RecordDisk)
{
    /// <summary>Not "slvm-...": the catalogue takes only volume LVs, and agents activate only tagged ones.</summary>
    public const string LvName = "slvm_lease";
    public const string Resource = "writer";
    public const ulong SizeBytes = 3 * MiB;
    private const ulong MiB = 1024 * 1024;
    private const int SlotBytes = BlockDevice.Alignment;
    private const ulong MarksOffset = 64 * 1024;
    private const int MarksSlotBytes = 448 * 1024;
    private static readonly byte[] MarksMagic = "SLVMMARKS1"u8.ToArray();

    /// <summary>The area from the lease LV's layout; null when the LV is not there.</summary>
    public static LeaseArea? From(string pool, LvLayout? layout)
    {
        if (layout is null)
        {
            return null;
        }

        if (!layout.IsLinear || layout.Runs[0].LengthBytes < SizeBytes)
        {
            throw new InvalidOperationException($"{layout.VgName}/{LvName} is not one linear run of at least {SizeBytes / MiB} MiB; it is not a SharedLvm lease area.");
        }

        var run = layout.Runs[0];
        // sanlock names are at most 47 bytes: the LV's uuid (32 characters without dashes) is unique
        // and the same for every controller that reads the VG.
        var lockspace = "slvm_" + layout.LvUuid.Replace("-", string.Empty, StringComparison.Ordinal);
        return new LeaseArea(pool, lockspace,
            new SanlockDisk(run.PvPath, run.DeviceOffsetBytes),
            new SanlockDisk(run.PvPath, run.DeviceOffsetBytes + MiB),
            new SanlockDisk(run.PvPath, run.DeviceOffsetBytes + (2 * MiB)));
    }

    /// <summary>The newest intact record of the two slots; null when neither holds one.</summary>
    public LeaseRecord? ReadRecord()
    {
        using var device = BlockDevice.Open(RecordDisk.Path, writable: false);
        using var buffer = new AlignedBuffer(2 * SlotBytes);
        device.Read(buffer.Span, RecordDisk.Offset);
        return new[] { LeaseRecord.Parse(buffer.Span[..SlotBytes]), LeaseRecord.Parse(buffer.Span[SlotBytes..]) }
            .OfType<LeaseRecord>().MaxBy(r => r.Epoch);
    }

    /// <summary>Writes <paramref name="record"/> over the older slot (only the lease holder does).</summary>
    public void WriteRecord(LeaseRecord record)
    {
        using var device = BlockDevice.Open(RecordDisk.Path, writable: true);
        using var buffer = new AlignedBuffer(SlotBytes);
        record.Format(buffer.Span);
        device.Write(buffer.Span, RecordDisk.Offset + ((record.Epoch % 2) * SlotBytes));
    }

    /// <summary>The newer intact copy of the cluster's marks; null when neither slot holds one (an area from before them).</summary>
    public ClusterMarks? ReadMarks()
    {
        using var device = BlockDevice.Open(RecordDisk.Path, writable: false);
        using var buffer = new AlignedBuffer(2 * MarksSlotBytes);
        device.Read(buffer.Span, RecordDisk.Offset + MarksOffset);
        var first = RecordFrame.Parse(buffer.Span[..MarksSlotBytes], MarksMagic, LeaseJsonContext.Default.ClusterMarks);
        var second = RecordFrame.Parse(buffer.Span[MarksSlotBytes..], MarksMagic, LeaseJsonContext.Default.ClusterMarks);
        return second is not null && second.IsNewerThan(first) ? second : first;
    }

    /// <summary>
    /// Writes <paramref name="marks"/> over the older slot (by its sequence), as many 4 KiB blocks as
    /// the record takes: what lies beyond its length in the slot is never read.
    /// </summary>
    public void WriteMarks(ClusterMarks marks)
    {
        var json = RecordFrame.Serialize(marks, LeaseJsonContext.Default.ClusterMarks);
        var length = RecordFrame.FramedLength(MarksMagic, json.Length);
        var blocks = (length + SlotBytes - 1) / SlotBytes * SlotBytes;
        if (blocks > MarksSlotBytes)
        {
            throw new InvalidOperationException($"The cluster's marks take {length} bytes, more than the {MarksSlotBytes}-byte slot in {LvName}.");
        }

        using var device = BlockDevice.Open(RecordDisk.Path, writable: true);
        using var buffer = new AlignedBuffer(blocks);
        buffer.Span.Clear();
        RecordFrame.Format(buffer.Span, MarksMagic, json);
        device.Write(buffer.Span, RecordDisk.Offset + MarksOffset + ((marks.Sequence % 2) * MarksSlotBytes));
    }
}

/// <summary>
/// What the lease holder writes beside the lease: the epoch it serves under (the counter stored with
/// the lease: it rises on every takeover and survives the loss of every controller host), who it is
/// and where its API listens, for standbys to point clients to.
/// </summary>
public sealed record LeaseRecord(
    [property: JsonPropertyName("epoch")] ulong Epoch,
    [property: JsonPropertyName("controller_id")] string ControllerId,
    [property: JsonPropertyName("host_id")] ulong HostId,
    [property: JsonPropertyName("address")] string Address,
    [property: JsonPropertyName("written")] DateTimeOffset Written)
{
    private static readonly byte[] Magic = "SLVMLEASE1"u8.ToArray();

    /// <summary>The record in a 4 KiB slot; null for anything else (never written, or torn).</summary>
    public static LeaseRecord? Parse(ReadOnlySpan<byte> slot) => RecordFrame.Parse(slot, Magic, LeaseJsonContext.Default.LeaseRecord);

    public void Format(Span<byte> slot)
    {
        slot.Clear();
        RecordFrame.Format(slot, Magic, RecordFrame.Serialize(this, LeaseJsonContext.Default.LeaseRecord));
    }

    public override string ToString() => Encoding.UTF8.GetString(JsonSerializer.SerializeToUtf8Bytes(this, LeaseJsonContext.Default.LeaseRecord));
}

[JsonSerializable(typeof(LeaseRecord))]
[JsonSerializable(typeof(ClusterMarks))]
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
internal sealed partial class LeaseJsonContext : JsonSerializerContext;
