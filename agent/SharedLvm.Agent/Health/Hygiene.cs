using SharedLvm.Contracts.Conventions;
using System.Globalization;
using SharedLvm.Agent.Discovery;
using SharedLvm.Agent.Lvm;

using SharedLvm.Contracts.V1;

namespace SharedLvm.Agent.Health;

/// <summary>
/// Host settings that make shared LVM unsafe, each reported with its fix. None of these is wrong on
/// a single host; each has bitten someone running a VG on a shared LU.
/// </summary>
public static class Hygiene
{
    public static IEnumerable<Finding> Inspect(NodeView view, LvmView? lvm)
    {
        if (!view.MultipathdAnswered && view.Disks.GroupBy(d => d.Wwid).Any(g => g.Key is not null && g.Count() > 1))
        {
            yield return new Finding(Layer.Multipath, HealthState.Failed, "multipathd", "multipathd_not_running",
                view.Maps.Count > 0
                    ? "LUs are visible over several paths but multipathd does not answer: the maps exist, but nothing checks their paths or reinstates failed ones."
                    : "LUs are visible over several paths but multipathd does not answer: there are no maps to use, and LVM may pick a single raw path.",
                "systemctl enable --now multipathd");
        }

        foreach (var map in view.Maps.Where(m => !string.Equals(m.Name, m.Wwid, StringComparison.OrdinalIgnoreCase)))
        {
            yield return new Finding(Layer.Multipath, HealthState.Degraded, map.Wwid, "user_friendly_names",
                $"Map of LU {map.Wwid} is named {map.Name}: with user_friendly_names the name differs from node to node.",
                "Set user_friendly_names no in /etc/multipath.conf (SharedLvm finds LUs by WWID either way).");
        }

        if (lvm is null)
        {
            yield break;
        }

        if (VersionBelow(lvm.Version, 2, 3, 12))
        {
            yield return new Finding(Layer.Lvm, HealthState.Failed, "lvm2", "lvm_too_old",
                $"lvm2 {lvm.Version} is older than 2.03.12: it has no --setautoactivation, so shared LVs may be auto-activated at boot (Proxmox #4997).",
                "Upgrade lvm2.");
        }

        if (lvm.HostConfig.GetValueOrDefault("devices/multipath_component_detection") == "0"
            && lvm.HostConfig.GetValueOrDefault("devices/use_devicesfile") != "1"
            && !RejectsSomething(lvm.HostConfig.GetValueOrDefault("devices/global_filter")) && !RejectsSomething(lvm.HostConfig.GetValueOrDefault("devices/filter")))
        {
            yield return new Finding(Layer.Lvm, HealthState.Degraded, "lvm.conf", "lvm_scans_raw_paths",
                "The host's lvm (outside SharedLvm) scans every device with multipath component detection off: it sees the shared PVs as duplicates over the raw sdX paths.",
                "Set devices/multipath_component_detection=1 or a filter that rejects the sdX paths of shared LUs.");
        }

        foreach (var vg in lvm.VolumeGroups.Select(r => r.VolumeGroup).Where(v => v.AutoActivation))
        {
            var autoLvs = lvm.VolumeGroups.Single(r => r.VolumeGroup.Name == vg.Name).LogicalVolumes.Where(l => l.AutoActivation).Select(l => l.Name).ToArray();
            if (autoLvs.Length > 0)
            {
                yield return new Finding(Layer.Lvm, HealthState.Degraded, vg.Name, "shared_autoactivation",
                    $"Shared VG {vg.Name} has LVs that hosts auto-activate at boot ({string.Join(", ", autoLvs.Take(5))}{(autoLvs.Length > 5 ? ", ..." : string.Empty)}).",
                    $"From the controller: vgchange --setautoactivation n {vg.Name}.");
            }
        }

        foreach (var lv in view.ActiveLvs)
        {
            if (DmName.Split(lv.DmName) is var (vgName, lvName) && lvm.Find(vgName, lvName) is { } metadata && metadata.SizeBytes != lv.SizeBytes)
            {
                // Proxmox saw corruption when a resized LV was used on another node with its old table.
                yield return new Finding(Layer.Lv, HealthState.Degraded, $"{vgName}/{lvName}", "table_stale",
                    $"LV {vgName}/{lvName}: the active device is {lv.SizeBytes} bytes but the metadata says {metadata.SizeBytes}: its table is stale.",
                    "Refresh it (the owner agent's RefreshVolume, lvchange --refresh).");
            }
        }
    }

    private static bool RejectsSomething(string? filter) => filter is not null && filter.Contains("\"r|", StringComparison.Ordinal);

    internal static bool VersionBelow(string version, int major, int minor, int patch)
    {
        var numbers = version.Split('(', ' ')[0].Split('.').Select(p => int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : 0).ToArray();
        if (numbers.Length < 3)
        {
            return false;
        }

        return (numbers[0], numbers[1], numbers[2]).CompareTo((major, minor, patch)) < 0;
    }
}
