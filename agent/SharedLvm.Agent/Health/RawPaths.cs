using System.Globalization;
using SharedLvm.Agent.Discovery;
using SharedLvm.Contracts.Conventions;

namespace SharedLvm.Agent.Health;

/// <summary>
/// One managed LV whose device sits on a raw SCSI path (/dev/sdX) of a LU instead of the LU's
/// multipath map: <paramref name="Device"/> is the path it uses, <paramref name="MapPath"/> the map it
/// should use (/dev/mapper/&lt;WWID&gt;; absent from this node when <paramref name="MapPresent"/> is false).
/// </summary>
public sealed record RawPathUse(string Vg, string Lv, string Device, string? Wwid, string MapPath, bool MapPresent)
{
    public string Subject => Vg + "/" + Lv;
}

/// <summary>
/// The rule for "activated through a raw path": an LV of a shared LU whose dm table points at an sdX
/// (or a partition of one) rather than at the LU's multipath map. The agent's own lvm never does
/// this (it scans maps only), but any lvm with another config does: an initramfs whose lvm.conf is
/// not the system's activated a shared LV on raw `sda` in the SAN lab after a reboot (lab.md), and an
/// operator's lvchange with multipath_component_detection=0 does it too. I/O then bypasses
/// multipath (no failover: the LV fails with its one path) and the map the reservation is kept on,
/// and the map can't be built while the path is held. Managed means: a SharedLvm volume LV, or any
/// LV on a path of a LU that has a map here or that this node is told to expect (the node's own
/// LVs on a local single-path disk are neither).
/// </summary>
public static class RawPaths
{
    public static IReadOnlyList<RawPathUse> Find(NodeView view, IReadOnlyCollection<string> expectedWwids)
    {
        var uses = new List<RawPathUse>();
        foreach (var lv in view.ActiveLvs)
        {
            if (DmName.Split(lv.DmName) is not var (vg, name))
            {
                continue;
            }

            foreach (var device in lv.Devices.Where(d => !DeviceStack.IsDm(d)))
            {
                if (DiskOf(view, device) is not { } disk)
                {
                    continue;
                }

                var map = disk.Wwid is null ? null : view.MapFor(disk.Wwid);
                var sharedLu = map is not null || (disk.Wwid is not null && expectedWwids.Contains(disk.Wwid, StringComparer.OrdinalIgnoreCase));
                if (VolumeId.IsVolumeLv(name) || sharedLu)
                {
                    uses.Add(new RawPathUse(vg, name, "/dev/" + device, disk.Wwid,
                        map?.DevicePath ?? MultipathDevice.PathOf(disk.Wwid ?? "<wwid>"), map is not null));
                }
            }
        }

        return uses;
    }

    /// <summary>The SCSI disk a device is, or is a partition of ("sda1" of "sda").</summary>
    private static ScsiDisk? DiskOf(NodeView view, string device) =>
        view.Disks.FirstOrDefault(d => d.Name == device)
        ?? view.Disks.FirstOrDefault(d => device.Length > d.Name.Length && device.StartsWith(d.Name, StringComparison.Ordinal)
            && int.TryParse(device.AsSpan(d.Name.Length), NumberStyles.None, CultureInfo.InvariantCulture, out _));
}
