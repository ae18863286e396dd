using System.Buffers.Binary;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace SharedLvm.Agent.Udev;

/// <summary>One kernel or udev event: ACTION, DEVPATH, SUBSYSTEM and the rest of its properties.</summary>
public sealed record Uevent(string Action, string DevPath, string Subsystem, IReadOnlyDictionary<string, string> Properties, bool FromUdev);

/// <summary>
/// Listens to device events on the NETLINK_KOBJECT_UEVENT socket, so new paths, failed paths and new
/// maps are seen within a second (Tmds.DBus is not obtainable here, and udev's netlink group is what
/// libudev's monitor reads anyway). Group 1 carries the kernel's events, group 2 udev's, sent after
/// its rules ran (symlinks such as /dev/mapper/&lt;wwid&gt; exist by then).
/// </summary>
public sealed partial class UeventMonitor : IDisposable
{
    public const uint KernelGroup = 1;
    public const uint UdevGroup = 2;
    private const int AfNetlink = 16;
    private const int SockRaw = 3;
    private const int SockCloexec = 0x80000;
    private const int NetlinkKobjectUevent = 15;
    private static readonly byte[] UdevMagicPrefix = "libudev\0"u8.ToArray();

    private readonly Socket _socket;

    public UeventMonitor(uint groups = KernelGroup | UdevGroup)
    {
        var fd = NativeMethods.socket(AfNetlink, SockRaw | SockCloexec, NetlinkKobjectUevent);
        if (fd < 0)
        {
            throw new IOException($"socket(AF_NETLINK, NETLINK_KOBJECT_UEVENT) failed: errno {Marshal.GetLastPInvokeError()}");
        }

        var address = new SockAddrNl { Family = AfNetlink, Pid = 0, Groups = groups };
        if (NativeMethods.bind(fd, ref address, Marshal.SizeOf<SockAddrNl>()) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            NativeMethods.close(fd);
            throw new IOException($"bind to uevent groups {groups} failed: errno {errno} (needs root or CAP_NET_ADMIN)");
        }

        _socket = new Socket(new SafeSocketHandle(fd, ownsHandle: true));
        // Event storms (a fabric event surfacing hundreds of paths) must not overflow the buffer.
        _socket.ReceiveBufferSize = 4 * 1024 * 1024;
    }

    public async IAsyncEnumerable<Uevent> ReadAllAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var buffer = new byte[64 * 1024];
        while (!cancellationToken.IsCancellationRequested)
        {
            int received;
            try
            {
                received = await _socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                yield break;
            }

            if (Parse(buffer.AsSpan(0, received)) is { } uevent)
            {
                yield return uevent;
            }
        }
    }

    /// <summary>
    /// Kernel format: "add@/devices/...\0KEY=VALUE\0...". Udev format: "libudev\0", a header whose
    /// magic is 0xfeedcafe (network order) with the offset and length of the KEY=VALUE\0 block.
    /// </summary>
    public static Uevent? Parse(ReadOnlySpan<byte> message)
    {
        ReadOnlySpan<byte> properties;
        var fromUdev = message.StartsWith(UdevMagicPrefix);
        if (fromUdev)
        {
            if (message.Length < 24 || BinaryPrimitives.ReadUInt32BigEndian(message[8..]) != 0xfeedcafe)
            {
                return null;
            }

            var offset = (int)BinaryPrimitives.ReadUInt32LittleEndian(message[16..]);
            var length = (int)BinaryPrimitives.ReadUInt32LittleEndian(message[20..]);
            if (offset < 24 || length < 0 || offset + length > message.Length)
            {
                return null;
            }

            properties = message.Slice(offset, length);
        }
        else
        {
            var header = message.IndexOf((byte)0);
            if (header < 0 || message[..header].IndexOf((byte)'@') < 0)
            {
                return null;
            }

            properties = message[(header + 1)..];
        }

        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var entry in Encoding.UTF8.GetString(properties).Split('\0', StringSplitOptions.RemoveEmptyEntries))
        {
            var split = entry.IndexOf('=', StringComparison.Ordinal);
            if (split > 0)
            {
                values[entry[..split]] = entry[(split + 1)..];
            }
        }

        return values.TryGetValue("ACTION", out var action) && values.TryGetValue("DEVPATH", out var devPath)
            ? new Uevent(action, devPath, values.GetValueOrDefault("SUBSYSTEM", string.Empty), values, fromUdev)
            : null;
    }

    public void Dispose() => _socket.Dispose();

    [StructLayout(LayoutKind.Sequential)]
    private struct SockAddrNl
    {
        public ushort Family;
        public ushort Pad;
        public uint Pid;
        public uint Groups;
    }

    private static partial class NativeMethods
    {
        [LibraryImport("libc", SetLastError = true)]
        internal static partial int socket(int domain, int type, int protocol);

        [LibraryImport("libc", SetLastError = true)]
        internal static partial int bind(int fd, ref SockAddrNl address, int length);

        [LibraryImport("libc", SetLastError = true)]
        internal static partial int close(int fd);
    }
}
