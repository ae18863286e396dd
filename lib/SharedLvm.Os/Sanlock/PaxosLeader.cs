using System.Buffers.Binary;
using System.Text;
using SharedLvm.Os.Devices;

namespace SharedLvm.Os.Sanlock;

/// <summary>
/// A sanlock resource's leader record as it lies on the disk: who owns the lease (host id and its
/// generation) and its version (lver, +1 on every acquire by a new owner). Read straight from the
/// device with O_DIRECT, so the answer is the storage's, not any daemon's memory: the writer checks it
/// right before every lvm write, and a controller paused while another took over sees it lost.
/// Layout (sanlock leader.h, little-endian): magic u32, version u32, flags u32, sector_size u32,
/// num_hosts u64, max_hosts u64, owner_id u64 @32, owner_generation u64 @40, lver u64 @48,
/// space_name[48] @56, resource_name[48] @104, timestamp u64 @152 (0: released).
/// </summary>
public sealed record PaxosLeader(ulong OwnerId, ulong OwnerGeneration, ulong Lver, string Space, string Resource, ulong Timestamp)
{
    public const uint Magic = 0x06152010;
    public const int RecordBytes = 160;

    /// <summary>Held (by <see cref="OwnerId"/>) rather than released or never acquired.</summary>
    public bool IsHeld => Timestamp != 0 && OwnerId != 0;

    public static PaxosLeader Parse(ReadOnlySpan<byte> sector)
    {
        if (sector.Length < RecordBytes || BinaryPrimitives.ReadUInt32LittleEndian(sector) != Magic)
        {
            throw new FormatException("No sanlock paxos leader record here (magic missing): the lease area is not formatted.");
        }

        return new PaxosLeader(
            BinaryPrimitives.ReadUInt64LittleEndian(sector[32..]),
            BinaryPrimitives.ReadUInt64LittleEndian(sector[40..]),
            BinaryPrimitives.ReadUInt64LittleEndian(sector[48..]),
            Text(sector.Slice(56, 48)),
            Text(sector.Slice(104, 48)),
            BinaryPrimitives.ReadUInt64LittleEndian(sector[152..]));
    }

    /// <summary>Reads the leader at <paramref name="disk"/> with direct I/O; null when the area holds none.</summary>
    public static PaxosLeader? Read(SanlockDisk disk)
    {
        using var device = BlockDevice.Open(disk.Path, writable: false);
        using var buffer = new AlignedBuffer(BlockDevice.Alignment);
        device.Read(buffer.Span, disk.Offset);
        return BinaryPrimitives.ReadUInt32LittleEndian(buffer.Span) == Magic ? Parse(buffer.Span) : null;
    }

    private static string Text(ReadOnlySpan<byte> field)
    {
        var end = field.IndexOf((byte)0);
        return Encoding.ASCII.GetString(end < 0 ? field : field[..end]);
    }
}
