using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using SharedLvm.Os.Devices;

namespace SharedLvm.Os.Lvm;

/// <summary>
/// The seqno of the VG metadata a PV holds right now, read from the disk itself (O_DIRECT: a page
/// cache must not answer for a LU other hosts may write) without running lvm: the PV label
/// (LABELONE in the first four sectors), its first metadata area, that area's header (" LVM2 x[5A%r0N*>")
/// and the first bytes of the current text ("VG {\n id = ...\n seqno = N"). About a millisecond
/// against 100-300 ms for `vgs` at 2k-8k LVs: cheap enough to check before every batched commit
/// that nobody wrote since the controller's last commit (lib/format_text/layout.h has the layouts).
/// </summary>
public static class MetadataArea
{
    private const int Block = BlockDevice.Alignment;
    private static readonly byte[] LabelId = "LABELONE"u8.ToArray();
    private static readonly byte[] MdaMagic = " LVM2 x[5A%r0N*>"u8.ToArray();

    /// <exception cref="FormatException">No PV label, no metadata area, or no seqno where lvm puts it.</exception>
    /// <exception cref="BlockDeviceException">The device could not be read.</exception>
    public static ulong ReadSeqno(string device)
    {
        using var disk = BlockDevice.Open(device, writable: false);
        using var buffer = new AlignedBuffer(Block);
        disk.Read(buffer.Span, 0);
        var label = -1;
        for (var sector = 0; sector < 4; sector++)
        {
            if (buffer.Span.Slice(sector * 512, 8).SequenceEqual(LabelId))
            {
                label = sector * 512;
                break;
            }
        }

        if (label < 0)
        {
            throw new FormatException($"{device} carries no LVM2 PV label.");
        }

        // label_header: id[8] sector u64 crc u32 offset u32 type[8]; pv_header at label + offset:
        // uuid[32] size u64, then {offset u64, size u64} data areas up to a zero entry, then metadata areas.
        var header = label + (int)BinaryPrimitives.ReadUInt32LittleEndian(buffer.Span.Slice(label + 20, 4));
        var at = header + 40;
        while (at + 16 <= Block && BinaryPrimitives.ReadUInt64LittleEndian(buffer.Span.Slice(at, 8)) != 0)
        {
            at += 16;
        }

        at += 16;
        var mdaOffset = at + 16 <= Block ? BinaryPrimitives.ReadUInt64LittleEndian(buffer.Span.Slice(at, 8)) : 0;
        if (mdaOffset == 0)
        {
            throw new FormatException($"{device}: the PV has no metadata area.");
        }

        // mda_header: checksum u32 magic[16] version u32 start u64 size u64, raw_locn {offset u64, size u64, checksum u32, flags u32}.
        disk.Read(buffer.Span, mdaOffset);
        if (!buffer.Span.Slice(4, 16).SequenceEqual(MdaMagic))
        {
            throw new FormatException($"{device}: no metadata area header at {mdaOffset}.");
        }

        var mdaSize = BinaryPrimitives.ReadUInt64LittleEndian(buffer.Span.Slice(32, 8));
        var textOffset = BinaryPrimitives.ReadUInt64LittleEndian(buffer.Span.Slice(40, 8));
        var textSize = BinaryPrimitives.ReadUInt64LittleEndian(buffer.Span.Slice(48, 8));
        if (textOffset == 0 || textSize == 0)
        {
            throw new FormatException($"{device}: the metadata area holds no VG text.");
        }

        // The text is a ring inside the area after its 512-byte header; the seqno is in its first lines.
        var head = new byte[Math.Min(512, (int)textSize)];
        var first = (int)Math.Min((ulong)head.Length, mdaSize - textOffset);
        ReadUnaligned(disk, buffer, mdaOffset + textOffset, head.AsSpan(0, first));
        if (first < head.Length)
        {
            ReadUnaligned(disk, buffer, mdaOffset + 512, head.AsSpan(first));
        }

        var text = Encoding.ASCII.GetString(head);
        var seqno = text.IndexOf("seqno = ", StringComparison.Ordinal);
        var end = seqno < 0 ? -1 : text.IndexOf('\n', seqno);
        return end > 0 && ulong.TryParse(text.AsSpan(seqno + 8, end - seqno - 8), NumberStyles.None, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new FormatException($"{device}: no seqno in the current metadata text.");
    }

    private static void ReadUnaligned(BlockDevice disk, AlignedBuffer buffer, ulong offset, Span<byte> into)
    {
        var start = offset / Block * Block;
        var skip = (int)(offset - start);
        var length = skip + into.Length <= Block ? Block : 2 * Block;
        if (length == Block)
        {
            disk.Read(buffer.Span, start);
            buffer.Span.Slice(skip, into.Length).CopyTo(into);
            return;
        }

        using var scratch = new AlignedBuffer(length);
        disk.Read(scratch.Span, start);
        scratch.Span.Slice(skip, into.Length).CopyTo(into);
    }

    private sealed unsafe class AlignedBuffer : IDisposable
    {
        private readonly void* _memory;
        private readonly int _length;

        public AlignedBuffer(int length)
        {
            _length = length;
            _memory = NativeMemory.AlignedAlloc((nuint)length, Block);
        }

        public Span<byte> Span => new(_memory, _length);

        public void Dispose() => NativeMemory.AlignedFree(_memory);
    }
}
