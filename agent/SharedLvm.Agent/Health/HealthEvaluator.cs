using SharedLvm.Agent.Discovery;

namespace SharedLvm.Agent.Health;

/// <summary>Where I/O to a shared volume can fail, bottom to top (seed 000: "where are all the places an IO can fail").</summary>
public enum IoLayer
{
    Transport,
    Scsi,
    Multipath,
    Lvm,
    Lv,
}

public enum Severity
{
    Ok,
    Degraded,
    Failed,
}

public sealed record Finding(IoLayer Layer, Severity Severity, string Subject, string Code, string Message, string Remedy = "");

/// <summary>
/// Turns what the node sees into findings that name the failing layer, so an operator at 3 a.m.
/// reads "LU 35000c500a0000001: all 2 paths down, I/O is queued" rather than "the VM hangs".
/// </summary>
public static class HealthEvaluator
{
    public static IReadOnlyList<Finding> Evaluate(NodeView view, IReadOnlyCollection<string> expectedWwids)
    {
        var findings = new List<Finding>();
        foreach (var host in view.Hosts.Where(h => h.Fc is not null))
        {
            if (!string.Equals(host.Fc!.PortState, "Online", StringComparison.OrdinalIgnoreCase))
            {
                findings.Add(new Finding(IoLayer.Transport, Severity.Failed, $"host{host.Number}", "fc_port_down",
                    $"FC port {host.Fc.PortName} on host{host.Number} ({host.Driver}) is {host.Fc.PortState}.",
                    "Check the cable, SFP and switch port; paths through this HBA fail over to others."));
            }
        }

        foreach (var session in view.IscsiSessions.Where(s => !string.Equals(s.State, "LOGGED_IN", StringComparison.Ordinal)))
        {
            findings.Add(new Finding(IoLayer.Transport, Severity.Failed, session.Name, "iscsi_session_down",
                $"iSCSI session {session.Name} to {session.Target} is {session.State}.", "Check the network path to the target portal."));
        }

        foreach (var disk in view.Disks.Where(d => d.State != "running"))
        {
            findings.Add(new Finding(IoLayer.Scsi, Severity.Failed, disk.Wwid ?? disk.Name, "scsi_device_not_running",
                $"SCSI device {disk.Name} ({disk.Hctl}) of LU {disk.Wwid ?? "unknown"} is {disk.State}.",
                "The midlayer took it offline after errors or a transport loss; multipath uses the other paths."));
        }

        foreach (var map in view.Maps)
        {
            var subject = map.Wwid;
            if (map.Suspended)
            {
                findings.Add(new Finding(IoLayer.Multipath, Severity.Failed, subject, "map_suspended",
                    $"Multipath map {map.Name} ({map.DmDevice}) is suspended: I/O to it blocks.", "A reload did not finish; check multipathd's log."));
            }

            if (map.Paths.Count > 0 && map.ActivePaths == 0)
            {
                findings.Add(new Finding(IoLayer.Multipath, Severity.Failed, subject, "all_paths_down",
                    $"LU {map.Wwid}: all {map.Paths.Count} paths are down; I/O {(map.Queueing ? "is queued (processes block until a path returns)" : "fails with EIO")}.",
                    map.Queueing ? "Restore a path; queueing is bounded by no_path_retry." : "Restore a path; consumers see I/O errors now."));
            }
            else if (map.FailedPaths > 0)
            {
                findings.Add(new Finding(IoLayer.Multipath, Severity.Degraded, subject, "path_failed",
                    $"LU {map.Wwid}: {map.FailedPaths} of {map.Paths.Count} paths failed ({string.Join(", ", map.Paths.Where(p => p.Status == PathStatus.Failed).Select(p => $"{p.Device} {p.Hctl}"))}); I/O continues on {map.ActivePaths}.",
                    "Redundancy is lost until the path returns."));
            }
            else if (map.Paths.Count == 1)
            {
                findings.Add(new Finding(IoLayer.Multipath, Severity.Degraded, subject, "single_path",
                    $"LU {map.Wwid} is reachable over one path only.", "Check zoning and the second fabric."));
            }
        }

        foreach (var wwid in expectedWwids.Where(w => view.MapFor(w) is null))
        {
            var raw = view.Disks.Where(d => string.Equals(d.Wwid, wwid, StringComparison.OrdinalIgnoreCase)).ToArray();
            findings.Add(new Finding(IoLayer.Multipath, Severity.Failed, wwid, raw.Length > 0 ? "no_multipath_map" : "lu_not_visible",
                raw.Length > 0
                    ? $"LU {wwid} is visible as {string.Join(", ", raw.Select(d => d.Name))} but has no multipath map."
                    : $"LU {wwid} is not visible on this node.",
                raw.Length > 0 ? "Is multipathd running with find_multipaths and this WWID allowed?" : "Rescan (slvm node rescan) or check LUN masking and zoning."));
        }

        foreach (var lv in view.ActiveLvs.Where(l => l.Suspended))
        {
            findings.Add(new Finding(IoLayer.Lv, Severity.Failed, lv.DmName, "lv_suspended",
                $"LV device {lv.DmName} ({lv.DmDevice}) is suspended: I/O to it blocks.", "A refresh or extend did not finish; resume it or retry the refresh."));
        }

        return findings;
    }

    public static Severity Overall(IEnumerable<Finding> findings) =>
        findings.Select(f => f.Severity).DefaultIfEmpty(Severity.Ok).Max();
}
