using System.Buffers.Binary;
using System.Security.Cryptography;
using SharedLvm.Agent.Data;

namespace SharedLvm.Tests.Agent.Data;

/// <summary>
/// The dm-snapshot persistent store as the kernel lays it out (drivers/md/dm-snap-persistent.c),
/// built in memory: a header chunk, then areas of one metadata chunk and the data chunks it maps.
/// </summary>
internal sealed class CowImage
{
    public const int Chunk = 4096;
    private const int PerArea = Chunk / CowExceptionTable.ExceptionBytes;
    private ulong _nextFree = 2; // chunk 0: header, chunk 1: area 0's metadata
    private int _committed;

    public CowImage(int chunks)
    {
        Bytes = new byte[chunks * Chunk];
        BinaryPrimitives.WriteUInt32LittleEndian(Bytes, CowExceptionTable.Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(Bytes.AsSpan(4), 1); // valid
        BinaryPrimitives.WriteUInt32LittleEndian(Bytes.AsSpan(8), 1); // version
        BinaryPrimitives.WriteUInt32LittleEndian(Bytes.AsSpan(12), Chunk / 512);
    }

    public byte[] Bytes { get; }

    /// <summary>What the kernel does before an origin write to <paramref name="oldChunk"/>: old data into a free chunk, then the entry.</summary>
    public void Commit(ulong oldChunk, ReadOnlySpan<byte> oldData)
    {
        var newChunk = _nextFree++;
        if (_nextFree % (PerArea + 1) == 1)
        {
            _nextFree++; // the next area's metadata chunk
        }

        oldData.CopyTo(Bytes.AsSpan((int)newChunk * Chunk, Chunk));
        var area = _committed / PerArea;
        var entry = Bytes.AsSpan(((1 + ((PerArea + 1) * area)) * Chunk) + (_committed % PerArea * CowExceptionTable.ExceptionBytes));
        BinaryPrimitives.WriteUInt64LittleEndian(entry, oldChunk);
        BinaryPrimitives.WriteUInt64LittleEndian(entry[8..], newChunk);
        _committed++;
    }

    public void Invalidate() => BinaryPrimitives.WriteUInt32LittleEndian(Bytes.AsSpan(4), 0);

    public Action<Span<byte>, ulong> Reader => (buffer, offset) => Bytes.AsSpan((int)offset, buffer.Length).CopyTo(buffer);
}

public sealed class CowExceptionTableTests
{
    private const int Chunk = CowImage.Chunk;

    [Fact]
    public void A_snapshot_reads_its_changed_chunks_from_the_cow_store_across_areas_and_the_rest_from_the_origin()
    {
        // 300 changed chunks: area 0 (256 entries) full, 44 in area 1.
        var origin = RandomNumberGenerator.GetBytes(400 * Chunk);
        var snapshot = origin.ToArray();
        var cow = new CowImage(400);
        for (var chunk = 0UL; chunk < 300; chunk++)
        {
            var old = snapshot.AsSpan((int)(chunk + 50) * Chunk, Chunk);
            cow.Commit(chunk + 50, old);
            RandomNumberGenerator.Fill(origin.AsSpan((int)(chunk + 50) * Chunk, Chunk)); // the origin written after the snapshot
        }

        using var table = CowExceptionTable.Open(cow.Reader, (ulong)cow.Bytes.Length, (ulong)origin.Length);
        var block = origin.ToArray();
        table.Overlay(block, 0);

        Assert.Equal(300, table.Count);
        Assert.Equal((uint)Chunk, table.ChunkBytes);
        Assert.Equal(snapshot, block);
    }

    [Fact]
    public void An_exception_committed_while_the_copy_runs_is_seen_by_the_next_overlay()
    {
        var origin = RandomNumberGenerator.GetBytes(16 * Chunk);
        var snapshot = origin.ToArray();
        var cow = new CowImage(32);
        using var table = CowExceptionTable.Open(cow.Reader, (ulong)cow.Bytes.Length, (ulong)origin.Length);
        Assert.Equal(0, table.Count);

        // The origin's holder writes chunk 9 after the table was read, before this block is read:
        // the kernel commits the exception first, so the overlay (which refreshes after the origin
        // read) finds it and takes the old data.
        cow.Commit(9, snapshot.AsSpan(9 * Chunk, Chunk));
        RandomNumberGenerator.Fill(origin.AsSpan(9 * Chunk, Chunk));
        var block = origin.AsSpan(8 * Chunk, 4 * Chunk).ToArray();
        table.Overlay(block, 8 * Chunk);

        Assert.Equal(snapshot.AsSpan(8 * Chunk, 4 * Chunk).ToArray(), block);
        Assert.Equal(1, table.Count);
    }

    [Fact]
    public void A_block_that_starts_inside_a_chunk_takes_only_its_part_of_the_cow_chunk()
    {
        var origin = RandomNumberGenerator.GetBytes(4 * Chunk);
        var snapshot = origin.ToArray();
        var cow = new CowImage(8);
        cow.Commit(1, snapshot.AsSpan(Chunk, Chunk));
        RandomNumberGenerator.Fill(origin.AsSpan(Chunk, Chunk));
        using var table = CowExceptionTable.Open(cow.Reader, (ulong)cow.Bytes.Length, (ulong)origin.Length);

        var block = origin.AsSpan(Chunk + 1024, 2048).ToArray();
        table.Overlay(block, Chunk + 1024);

        Assert.Equal(snapshot.AsSpan(Chunk + 1024, 2048).ToArray(), block);
    }

    [Fact]
    public void An_invalidated_snapshot_fails_the_copy_instead_of_handing_out_the_origins_new_data()
    {
        var cow = new CowImage(8);
        using var table = CowExceptionTable.Open(cow.Reader, (ulong)cow.Bytes.Length, 4 * Chunk);
        cow.Invalidate(); // the COW store overflowed while the copy ran

        var e = Assert.Throws<InvalidDataException>(() => table.Overlay(new byte[Chunk], 0));
        Assert.Contains("invalid", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_store_without_the_header_or_with_an_entry_outside_the_devices_is_refused()
    {
        var blank = new CowImage(8);
        blank.Bytes.AsSpan(0, 4).Clear();
        var noHeader = Assert.Throws<InvalidDataException>(() => CowExceptionTable.Open(blank.Reader, (ulong)blank.Bytes.Length, 4 * Chunk));
        Assert.Contains("no snapshot header", noHeader.Message, StringComparison.Ordinal);

        var cow = new CowImage(8);
        cow.Commit(100, new byte[Chunk]); // origin chunk 100 of a 4-chunk origin
        var outside = Assert.Throws<InvalidDataException>(() => CowExceptionTable.Open(cow.Reader, (ulong)cow.Bytes.Length, 4 * Chunk));
        Assert.Contains("origin chunk 100", outside.Message, StringComparison.Ordinal);
    }
}
