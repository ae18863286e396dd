namespace SharedLvm.Agent.Discovery;

/// <summary>
/// What an active LV's device sits on, read from /sys/block/dm-N/slaves: the one walk both the
/// raw-path finding (<see cref="Health.RawPaths"/>) and the deactivation of such an LV
/// (<see cref="Lvm.AgentLvm"/>) use. It descends through other LVs' devices (a snapshot's -real and
/// -cow) and kpartx partitions of a map, and stops at a multipath map ("mpath-" dm uuid), at any other
/// dm device (crypt, ...) and at a device that is not device-mapper at all: an sdX path, a partition
/// of one, a loop device. Only that last kind can be a raw path.
/// </summary>
public static class DeviceStack
{
    private const int MaxDepth = 8;

    /// <summary>The block devices (kernel names: "dm-0", "sda") at the bottom of dm device <paramref name="dm"/>.</summary>
    public static IReadOnlyList<string> Beneath(SysfsTree sysfs, string dm)
    {
        var bottom = new List<string>();
        Walk(sysfs, dm, 0, bottom);
        return bottom.Distinct(StringComparer.Ordinal).ToArray();
    }

    /// <summary>The devices beneath that are not device-mapper ("sda", "sdb1", "loop0"): what lvm must scan to find the LV's VG.</summary>
    public static IReadOnlyList<string> NonDmBeneath(SysfsTree sysfs, string dm) =>
        Beneath(sysfs, dm).Where(d => !IsDm(d)).ToArray();

    public static bool IsDm(string device) => device.StartsWith("dm-", StringComparison.Ordinal);

    private static void Walk(SysfsTree sysfs, string dm, int depth, List<string> bottom)
    {
        foreach (var slave in sysfs.List($"sys/block/{dm}/slaves"))
        {
            var uuid = IsDm(slave) ? sysfs.Read($"sys/block/{slave}/dm/uuid") ?? string.Empty : string.Empty;
            var through = uuid.StartsWith("LVM-", StringComparison.Ordinal) || uuid.StartsWith("part", StringComparison.Ordinal);
            if (through && depth < MaxDepth)
            {
                Walk(sysfs, slave, depth + 1, bottom);
            }
            else
            {
                bottom.Add(slave);
            }
        }
    }
}
