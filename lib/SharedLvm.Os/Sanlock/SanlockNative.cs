using System.Runtime.InteropServices;
using System.Text;

namespace SharedLvm.Os.Sanlock;

/// <summary>
/// libsanlock_client (Debian 12: libsanlock-client1, sanlock 3.8.5), the client half of the sanlock
/// daemon's API. Its structs are built as byte images at the offsets of sanlock.h (x86-64, natural
/// alignment): sanlk_disk 1040 bytes (path[1024], offset u64, 2 x u32 pad); sanlk_lockspace 1104
/// (name[48], host_id u64 @48, flags u32 @56, disk @64); sanlk_resource 128 + 1040 per disk
/// (lockspace_name[48], name[48], lver @96, data64 @104, data32 @112, unused @116, flags @120,
/// num_disks @124, disks @128).
/// </summary>
internal static unsafe partial class SanlockNative
{
    public const int NameLength = 48;
    public const int PathLength = 1024;
    public const int DiskSize = 1040;
    public const int LockspaceSize = 64 + DiskSize;
    public const int ResourceSize = 128 + DiskSize;

    // sanlock.h: 4K sectors with 1 MiB alignment work on 512-byte and 4K-native LUs alike (250 hosts
    // at most, far more controllers than anyone runs), so one lease layout fits every array.
    public const uint LockspaceAlign1MSector4K = 0x10 | 0x200;
    public const uint ResourceAlign1MSector4K = 0x10 | 0x200;
    public const int Eexist = 17;

    private const string Library = "libsanlock_client.so.1";

    [LibraryImport(Library)]
    public static partial int sanlock_register();

    [LibraryImport(Library)]
    public static partial int sanlock_write_lockspace(byte* lockspace, int maxHosts, uint flags, uint ioTimeout);

    [LibraryImport(Library)]
    public static partial int sanlock_write_resource(byte* resource, int maxHosts, int numHosts, uint flags);

    [LibraryImport(Library)]
    public static partial int sanlock_add_lockspace_timeout(byte* lockspace, uint flags, uint ioTimeout);

    [LibraryImport(Library)]
    public static partial int sanlock_inq_lockspace(byte* lockspace, uint flags);

    [LibraryImport(Library)]
    public static partial int sanlock_acquire(int socket, int pid, uint flags, int count, byte** resources, nint options);

    [LibraryImport(Library)]
    public static partial int sanlock_release(int socket, int pid, uint flags, int count, byte** resources);

    [LibraryImport(Library)]
    public static partial nint sanlock_strerror(int rv);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int close(int fd);

    public static byte[] Lockspace(string name, ulong hostId, uint flags, SanlockDisk disk)
    {
        var image = new byte[LockspaceSize];
        PutName(image.AsSpan(0, NameLength), name);
        BitConverter.TryWriteBytes(image.AsSpan(48, 8), hostId);
        BitConverter.TryWriteBytes(image.AsSpan(56, 4), flags);
        PutDisk(image.AsSpan(64, DiskSize), disk);
        return image;
    }

    public static byte[] Resource(string lockspace, string name, uint flags, SanlockDisk disk)
    {
        var image = new byte[ResourceSize];
        PutName(image.AsSpan(0, NameLength), lockspace);
        PutName(image.AsSpan(NameLength, NameLength), name);
        BitConverter.TryWriteBytes(image.AsSpan(120, 4), flags);
        BitConverter.TryWriteBytes(image.AsSpan(124, 4), 1u);
        PutDisk(image.AsSpan(128, DiskSize), disk);
        return image;
    }

    public static string Describe(int rv)
    {
        var text = Marshal.PtrToStringUTF8(sanlock_strerror(rv));
        return string.IsNullOrEmpty(text) || text == "Unknown error" ? $"error {rv}" : $"{text} ({rv})";
    }

    private static void PutName(Span<byte> target, string name)
    {
        if (Encoding.ASCII.GetByteCount(name) >= NameLength)
        {
            throw new ArgumentException($"sanlock name '{name}' is longer than {NameLength - 1} bytes.", nameof(name));
        }

        Encoding.ASCII.GetBytes(name, target);
    }

    private static void PutDisk(Span<byte> target, SanlockDisk disk)
    {
        if (Encoding.UTF8.GetByteCount(disk.Path) >= PathLength || disk.Path.Contains(':', StringComparison.Ordinal))
        {
            // sanlock's text forms separate fields with ':'; a path holding one would need escaping.
            throw new ArgumentException($"sanlock disk path '{disk.Path}' is too long or contains ':'.", nameof(disk));
        }

        Encoding.UTF8.GetBytes(disk.Path, target);
        BitConverter.TryWriteBytes(target.Slice(PathLength, 8), disk.Offset);
    }
}
