using System.Buffers.Binary;
using SharedLvm.Os.Devices;

namespace SharedLvm.Agent.Data;

/// <summary>
/// Reads an LVM COW snapshot's data below LVM, from its origin's extents and its COW store's,
/// without activating either (so a snapshot can be cloned on any node, while its origin is attached
/// and written elsewhere). The COW store is device-mapper's persistent exception store
/// (drivers/md/dm-snap-persistent.c), read the way the kernel reads it when it activates the
/// snapshot: a header chunk (magic "SnAp", valid, version 1, chunk size in sectors), then areas of
/// one metadata chunk of {le64 old_chunk, le64 new_chunk} pairs followed by the data chunks they
/// point at; the first pair with new_chunk 0 ends the table.
/// <para>
/// A live origin is safe to read this way because the kernel commits an exception (the old chunk
/// copied into the COW store, then the metadata chunk written with FUA) before it lets the write to
/// that origin chunk proceed. So <see cref="Overlay"/> reads the origin first, then the table: any
/// chunk changed before that origin read finished already has its exception on disk, and its old
/// data is taken from the COW store instead.
/// </para>
/// </summary>
public sealed class CowExceptionTable : IDisposable
{
    /// <summary>"SnAp", little-endian, at the start of the COW store.</summary>
    public const uint Magic = 0x70416e53;

    public const int ExceptionBytes = 16;

    private const int SectorBytes = 512;

    /// <summary>LVM's smallest chunk (4 KiB): the header is read with it before the real chunk size is known.</summary>
    private const int MinChunkBytes = 4096;

    private readonly Action<Span<byte>, ulong> _readCow;
    private readonly ulong _cowBytes;
    private readonly ulong _originBytes;
    private readonly Dictionary<ulong, ulong> _exceptions = [];
    private readonly AlignedBuffer _area;
    private readonly AlignedBuffer _header;

    /// <summary>The first area not yet known to be full: the only one (with the ones after it) a refresh reads again.</summary>
    private ulong _openArea;

    private CowExceptionTable(Action<Span<byte>, ulong> readCow, ulong cowBytes, ulong originBytes, uint chunkBytes, AlignedBuffer header)
    {
        _header = header;
        _readCow = readCow;
        _cowBytes = cowBytes;
        _originBytes = originBytes;
        ChunkBytes = chunkBytes;
        _area = new AlignedBuffer((int)chunkBytes);
    }

    public uint ChunkBytes { get; }

    /// <summary>Exceptions (origin chunks whose snapshot data is in the COW store) known so far.</summary>
    public int Count => _exceptions.Count;

    private ulong ExceptionsPerArea => ChunkBytes / ExceptionBytes;

    /// <summary>
    /// Reads the header and the whole table. <paramref name="readCow"/> reads bytes of the COW store
    /// at an offset (both multiples of 4 KiB, for direct I/O); it must not cache.
    /// </summary>
    public static CowExceptionTable Open(Action<Span<byte>, ulong> readCow, ulong cowBytes, ulong originBytes)
    {
        var header = new AlignedBuffer(MinChunkBytes);
        uint chunk;
        try
        {
            chunk = ReadHeader(readCow, header.Span);
        }
        catch
        {
            header.Dispose();
            throw;
        }

        if (chunk < MinChunkBytes || (chunk & (chunk - 1)) != 0 || chunk > cowBytes)
        {
            header.Dispose();
            throw new InvalidDataException($"The COW store's header gives a chunk of {chunk} bytes: not a power of two from 4 KiB to the store's size.");
        }

        var table = new CowExceptionTable(readCow, cowBytes, originBytes, chunk, header);
        try
        {
            table.RefreshAreas();
            return table;
        }
        catch
        {
            table.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Reads what the kernel committed since the last call: the header again (an overflowed snapshot
    /// is marked invalid, and its data is gone) and the areas from the first one not known full.
    /// </summary>
    public void Refresh()
    {
        if (ReadHeader(_readCow, _header.Span) != ChunkBytes)
        {
            throw new InvalidDataException("The COW store's chunk size changed under the copy.");
        }

        RefreshAreas();
    }

    /// <summary>The areas from the first one not known full (Open has just read the header).</summary>
    private void RefreshAreas()
    {
        while (true)
        {
            var location = AreaLocation(_openArea) * ChunkBytes;
            if (location + ChunkBytes > _cowBytes)
            {
                return; // the store is full to its last area
            }

            _readCow(_area.Span, location);
            for (var i = 0; i < (int)ExceptionsPerArea; i++)
            {
                var entry = _area.Span.Slice(i * ExceptionBytes, ExceptionBytes);
                var oldChunk = BinaryPrimitives.ReadUInt64LittleEndian(entry);
                var newChunk = BinaryPrimitives.ReadUInt64LittleEndian(entry[8..]);
                if (newChunk == 0)
                {
                    return; // the end of the table: this area is not full
                }

                Check(oldChunk, newChunk);
                _exceptions[oldChunk] = newChunk;
            }

            _openArea++;
        }
    }

    /// <summary>
    /// Turns <paramref name="block"/>, just read from the origin at <paramref name="originOffset"/>,
    /// into the snapshot's data: refreshes the table (after the origin read, see the class remarks),
    /// then reads every chunk with an exception from the COW store over the origin's bytes.
    /// </summary>
    public void Overlay(Span<byte> block, ulong originOffset)
    {
        Refresh();
        var end = originOffset + (ulong)block.Length;
        for (var chunk = originOffset / ChunkBytes; chunk * ChunkBytes < end; chunk++)
        {
            if (!_exceptions.TryGetValue(chunk, out var newChunk))
            {
                continue;
            }

            var from = Math.Max(originOffset, chunk * ChunkBytes);
            var to = Math.Min(end, (chunk + 1) * ChunkBytes);
            _readCow(block.Slice((int)(from - originOffset), (int)(to - from)), (newChunk * ChunkBytes) + (from - (chunk * ChunkBytes)));
        }
    }

    /// <summary>Area n's metadata chunk: after the header chunk, every (exceptions per area + 1) chunks.</summary>
    private ulong AreaLocation(ulong area) => 1 + ((ExceptionsPerArea + 1) * area);

    private void Check(ulong oldChunk, ulong newChunk)
    {
        var stride = ExceptionsPerArea + 1;
        if ((newChunk + 1) * ChunkBytes > _cowBytes || newChunk % stride == 1 || oldChunk * ChunkBytes >= _originBytes)
        {
            throw new InvalidDataException(
                $"The COW store's exception table maps origin chunk {oldChunk} to chunk {newChunk}, outside the origin ({_originBytes} bytes) or the store's data chunks ({_cowBytes} bytes); refusing to read it.");
        }
    }

    public void Dispose()
    {
        _area.Dispose();
        _header.Dispose();
    }

    private static uint ReadHeader(Action<Span<byte>, ulong> readCow, Span<byte> header)
    {
        readCow(header, 0);
        var magic = BinaryPrimitives.ReadUInt32LittleEndian(header);
        var valid = BinaryPrimitives.ReadUInt32LittleEndian(header[4..]);
        var version = BinaryPrimitives.ReadUInt32LittleEndian(header[8..]);
        var chunkSectors = BinaryPrimitives.ReadUInt32LittleEndian(header[12..]);
        if (magic != Magic)
        {
            throw new InvalidDataException($"The COW store has no snapshot header (magic 0x{magic:x8}, not 0x{Magic:x8}).");
        }

        if (valid == 0)
        {
            throw new InvalidDataException("The snapshot is invalid (its COW store overflowed, or the kernel dropped it): its data is gone.");
        }

        if (version != 1)
        {
            throw new InvalidDataException($"The COW store has on-disk version {version}; only version 1 is known.");
        }

        return chunkSectors * SectorBytes;
    }
}
