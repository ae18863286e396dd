using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace SharedLvm.Os.Devices;

/// <summary>An I/O error on a block device, with the errno the kernel gave (EIO, EBADE for a reservation conflict...).</summary>
public sealed class BlockDeviceException : Exception
{
    public BlockDeviceException()
    {
    }

    public BlockDeviceException(string message)
        : base(message)
    {
    }

    public BlockDeviceException(string message, Exception inner)
        : base(message, inner)
    {
    }

    public int Errno { get; init; }
}

/// <summary>
/// A block device opened for data I/O below LVM: O_DIRECT (the page cache of one node must not serve
/// stale blocks of a LU other nodes write, and a multi-GiB copy must not evict the VMs' cache),
/// positioned reads and writes of aligned buffers, and the kernel's zeroing and discard ioctls
/// (BLKZEROOUT becomes WRITE SAME / WRITE ZEROES on arrays that offload it).
/// </summary>
public sealed partial class BlockDevice : IDisposable
{
    /// <summary>O_DIRECT alignment that holds for every logical block size Linux supports (512 and 4096).</summary>
    public const int Alignment = 4096;

    private const int OpenReadOnly = 0x0;
    private const int OpenReadWrite = 0x2;
    private const int OpenDirect = 0x4000;
    private const int OpenCloseOnExec = 0x80000;
    private const nuint BlkDiscard = 0x1277;
    private const nuint BlkZeroOut = 0x127f;
    private const nuint BlkGetSize64 = 0x80081272;

    private readonly SafeFileHandle _handle;

    private BlockDevice(SafeFileHandle handle, string path, ulong sizeBytes)
    {
        _handle = handle;
        Path = path;
        SizeBytes = sizeBytes;
    }

    public string Path { get; }

    public ulong SizeBytes { get; }

    public static unsafe BlockDevice Open(string path, bool writable)
    {
        var fd = NativeMethods.open(path, (writable ? OpenReadWrite : OpenReadOnly) | OpenDirect | OpenCloseOnExec);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new BlockDeviceException($"Could not open {path}: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno}).") { Errno = errno };
        }

        var handle = new SafeFileHandle(fd, ownsHandle: true);
        ulong size = 0;
        if (NativeMethods.ioctl(handle, BlkGetSize64, &size) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            handle.Dispose();
            throw new BlockDeviceException($"{path} is not a block device (BLKGETSIZE64: {Marshal.GetPInvokeErrorMessage(errno)}).") { Errno = errno };
        }

        return new BlockDevice(handle, path, size);
    }

    public void Read(Span<byte> buffer, ulong offset)
    {
        CheckRange(offset, (ulong)buffer.Length);
        var done = 0;
        while (done < buffer.Length)
        {
            int read;
            try
            {
                read = RandomAccess.Read(_handle, buffer[done..], (long)offset + done);
            }
            catch (IOException e)
            {
                throw new BlockDeviceException($"{Path}: read at {offset + (ulong)done} failed: {e.Message}", e) { Errno = e.HResult };
            }

            if (read == 0)
            {
                throw new BlockDeviceException($"{Path}: unexpected end of device at {offset + (ulong)done}.");
            }

            done += read;
        }
    }

    public void Write(ReadOnlySpan<byte> buffer, ulong offset)
    {
        CheckRange(offset, (ulong)buffer.Length);
        try
        {
            // RandomAccess.Write loops on short writes itself.
            RandomAccess.Write(_handle, buffer, (long)offset);
        }
        catch (IOException e)
        {
            throw new BlockDeviceException($"{Path}: write at {offset} failed: {e.Message}", e) { Errno = e.HResult };
        }
    }

    /// <summary>Zeroes a range (BLKZEROOUT): the kernel offloads it where the device can.</summary>
    public unsafe void ZeroOut(ulong offset, ulong length) => RangeIoctl(BlkZeroOut, "BLKZEROOUT", offset, length);

    /// <summary>Discards a range (BLKDISCARD): only where discarded blocks are known to read back as zeros.</summary>
    public unsafe void Discard(ulong offset, ulong length) => RangeIoctl(BlkDiscard, "BLKDISCARD", offset, length);

    public void Dispose() => _handle.Dispose();

    private unsafe void RangeIoctl(nuint request, string name, ulong offset, ulong length)
    {
        CheckRange(offset, length);
        var range = stackalloc ulong[2];
        range[0] = offset;
        range[1] = length;
        if (NativeMethods.ioctl(_handle, request, range) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new BlockDeviceException($"{Path}: {name} of {length} bytes at {offset} failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno}).") { Errno = errno };
        }
    }

    private void CheckRange(ulong offset, ulong length)
    {
        if (offset % Alignment != 0 || length % 512 != 0 || offset + length > SizeBytes)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), $"{Path}: {length} bytes at {offset} is unaligned or past the end ({SizeBytes} bytes).");
        }
    }

    private static partial class NativeMethods
    {
        [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        internal static partial int open(string path, int flags);

        [LibraryImport("libc", SetLastError = true)]
        internal static unsafe partial int ioctl(SafeFileHandle fd, nuint request, ulong* argument);
    }
}
