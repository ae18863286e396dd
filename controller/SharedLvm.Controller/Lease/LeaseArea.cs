using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using SharedLvm.Os.Devices;
using SharedLvm.Os.Lvm;
using SharedLvm.Os.Sanlock;

namespace SharedLvm.Controller.Lease;

/// <summary>
/// A pool's lease area: the LV <see cref="LvName"/> in its VG, addressed by the PV's path and byte
/// offset (no device-mapper on the controller host). 1 MiB sanlock lockspace, 1 MiB "writer" resource,
/// then two 4 KiB slots of <see cref="LeaseRecord"/> written in turn (a torn write leaves the other).
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
    private const int HashBytes = 32;
    private static readonly byte[] Magic = "SLVMLEASE1"u8.ToArray();

    /// <summary>
    /// Magic, u32 length, SHA-256 of the JSON, the JSON, zero padding; null for anything else (never
    /// written, or torn: a torn JSON can still parse, as another record).
    /// </summary>
    public static LeaseRecord? Parse(ReadOnlySpan<byte> slot)
    {
        if (!slot.StartsWith(Magic))
        {
            return null;
        }

        var length = BinaryPrimitives.ReadInt32LittleEndian(slot[Magic.Length..]);
        var start = Magic.Length + 4 + HashBytes;
        if (length <= 0 || length > slot.Length - start)
        {
            return null;
        }

        var json = slot.Slice(start, length);
        if (!SHA256.HashData(json).AsSpan().SequenceEqual(slot.Slice(Magic.Length + 4, HashBytes)))
        {
            return null;
        }

        try
        {
            return JsonSerializer.Deserialize(json, LeaseJsonContext.Default.LeaseRecord);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    public void Format(Span<byte> slot)
    {
        slot.Clear();
        var json = JsonSerializer.SerializeToUtf8Bytes(this, LeaseJsonContext.Default.LeaseRecord);
        Magic.CopyTo(slot);
        BinaryPrimitives.WriteInt32LittleEndian(slot[Magic.Length..], json.Length);
        SHA256.HashData(json).CopyTo(slot[(Magic.Length + 4)..]);
        json.CopyTo(slot[(Magic.Length + 4 + HashBytes)..]);
    }

    public override string ToString() => Encoding.UTF8.GetString(JsonSerializer.SerializeToUtf8Bytes(this, LeaseJsonContext.Default.LeaseRecord));
}

[JsonSerializable(typeof(LeaseRecord))]
internal sealed partial class LeaseJsonContext : JsonSerializerContext;
