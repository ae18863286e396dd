using System.Text;
using SharedLvm.Agent.Udev;
using SharedLvm.Tests.Support;

namespace SharedLvm.Tests.Agent.Udev;

public class UeventMonitorTests
{
    [Fact]
    public async Task A_new_block_device_is_seen_on_the_real_netlink_socket()
    {
        Requirement.SkipIfRequested(LoopDevice.SkipVariable, "netlink and loop devices (root)");
        using var monitor = new UeventMonitor(UeventMonitor.KernelGroup);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var seen = Task.Run(async () =>
        {
            await foreach (var e in monitor.ReadAllAsync(timeout.Token))
            {
                if (e.Subsystem == "block" && e.DevPath.Contains("/loop", StringComparison.Ordinal))
                {
                    return e;
                }
            }

            return null;
        });
        await Task.Delay(200);
        using var lu = LoopDevice.Create(16 * 1024 * 1024)!;
        var uevent = await seen;
        Assert.NotNull(uevent);
        Assert.False(uevent.FromUdev);
        Assert.Contains(uevent.Action, new[] { "add", "change" });
        Assert.StartsWith("loop", uevent.Properties["DEVNAME"], StringComparison.Ordinal);
    }

    [Fact]
    public void Parses_kernel_and_udev_formats_and_rejects_garbage()
    {
        var kernel = Encoding.UTF8.GetBytes("add@/devices/virtual/block/dm-0\0ACTION=add\0DEVPATH=/devices/virtual/block/dm-0\0SUBSYSTEM=block\0DM_UUID=mpath-35000c500a0000001\0");
        var k = UeventMonitor.Parse(kernel)!;
        Assert.Equal(("add", "block", false), (k.Action, k.Subsystem, k.FromUdev));
        Assert.Equal("mpath-35000c500a0000001", k.Properties["DM_UUID"]);

        var properties = Encoding.UTF8.GetBytes("ACTION=change\0DEVPATH=/devices/virtual/block/dm-0\0SUBSYSTEM=block\0");
        var header = new byte[40];
        Encoding.ASCII.GetBytes("libudev\0").CopyTo(header, 0);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(8), 0xfeedcafe);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(12), 40);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(16), 40);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(20), (uint)properties.Length);
        var u = UeventMonitor.Parse([.. header, .. properties])!;
        Assert.Equal(("change", true), (u.Action, u.FromUdev));

        Assert.Null(UeventMonitor.Parse("no header here"u8));
        Assert.Null(UeventMonitor.Parse([.. header[..20], 0, 0, 0, 0])); // offsets beyond the message
    }
}
