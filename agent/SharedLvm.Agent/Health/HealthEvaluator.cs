using SharedLvm.Agent.Discovery;
using SharedLvm.Contracts.V1;

namespace SharedLvm.Agent.Health;

/// <summary>
/// One thing wrong (or worth knowing) on this node: the layer where I/O can fail (seed 000: "where
/// are all the places an IO can fail"), bottom to top transport, SCSI, multipath, LVM, LV; how bad;
/// about what; and what to do. The contract's enums, so what the agent finds is what the
/// controller stores and the operator reads, layer and remedy included.
/// </summary>
public sealed record Finding(Layer Layer, HealthState Severity, string Subject, string Code, string Message, string Remedy = "")
{
    public HealthFinding ToContract() => new()
    {
        Layer = Layer,
        State = Severity,
        Subject = Subject,
        Code = Code,
        Message = Message,
        Remedy = Remedy,
    };
}

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
                findings.Add(new Finding(Layer.Transport, HealthState.Failed, $"host{host.Number}", "fc_port_down",
                    $"FC port {host.Fc.PortName} on host{host.Number} ({host.Driver}) is {host.Fc.PortState}.",
                    "Check the cable, SFP and switch port; paths through this HBA fail over to others."));
            }
        }

        foreach (var session in view.IscsiSessions.Where(s => !string.Equals(s.State, "LOGGED_IN", StringComparison.Ordinal)))
        {
            findings.Add(new Finding(Layer.Transport, HealthState.Failed, session.Name, "iscsi_session_down",
                $"iSCSI session {session.Name} to {session.Target} is {session.State}.", "Check the network path to the target portal."));
        }

        foreach (var disk in view.Disks.Where(d => d.State != "running"))
        {
            findings.Add(new Finding(Layer.Scsi, HealthState.Failed, disk.Wwid ?? disk.Name, "scsi_device_not_running",
                $"SCSI device {disk.Name} ({disk.Hctl}) of LU {disk.Wwid ?? "unknown"} is {disk.State}.",
                "The midlayer took it offline after errors or a transport loss; multipath uses the other paths."));
        }

        foreach (var map in view.Maps)
        {
            var subject = map.Wwid;
            if (map.Suspended)
            {
                findings.Add(new Finding(Layer.Multipath, HealthState.Failed, subject, "map_suspended",
                    $"Multipath map {map.Name} ({map.DmDevice}) is suspended: I/O to it blocks.", "A reload did not finish; check multipathd's log."));
            }

            if (map.Paths.Count > 0 && map.ActivePaths == 0)
            {
                findings.Add(new Finding(Layer.Multipath, HealthState.Failed, subject, "all_paths_down",
                    $"LU {map.Wwid}: all {map.Paths.Count} paths are down; I/O {(map.Queueing ? "is queued (processes block until a path returns)" : "fails with EIO")}.",
                    map.Queueing ? "Restore a path; queueing is bounded by no_path_retry." : "Restore a path; consumers see I/O errors now."));
            }
            else if (map.FailedPaths > 0)
            {
                findings.Add(new Finding(Layer.Multipath, HealthState.Degraded, subject, "path_failed",
                    $"LU {map.Wwid}: {map.FailedPaths} of {map.Paths.Count} paths failed ({string.Join(", ", map.Paths.Where(p => p.Status == PathStatus.Failed).Select(p => $"{p.Device} {p.Hctl}"))}); I/O continues on {map.ActivePaths}.",
                    "Redundancy is lost until the path returns."));
            }
            else if (map.Paths.Count == 1)
            {
                findings.Add(new Finding(Layer.Multipath, HealthState.Degraded, subject, "single_path",
                    $"LU {map.Wwid} is reachable over one path only.", "Check zoning and the second fabric."));
            }
        }

        foreach (var wwid in expectedWwids.Where(w => view.MapFor(w) is null))
        {
            var raw = view.Disks.Where(d => string.Equals(d.Wwid, wwid, StringComparison.OrdinalIgnoreCase)).ToArray();
            findings.Add(new Finding(Layer.Multipath, HealthState.Failed, wwid, raw.Length > 0 ? "no_multipath_map" : "lu_not_visible",
                raw.Length > 0
                    ? $"LU {wwid} is visible as {string.Join(", ", raw.Select(d => d.Name))} but has no multipath map."
                    : $"LU {wwid} is not visible on this node.",
                raw.Length > 0 ? "Is multipathd running with find_multipaths and this WWID allowed?" : "Rescan (slvm node rescan) or check LUN masking and zoning."));
        }

        foreach (var lv in view.ActiveLvs.Where(l => l.Suspended))
        {
            findings.Add(new Finding(Layer.Lv, HealthState.Failed, lv.DmName, "lv_suspended",
                $"LV device {lv.DmName} ({lv.DmDevice}) is suspended: I/O to it blocks.", "A refresh or extend did not finish; resume it or retry the refresh."));
        }

        return findings;
    }

    public static HealthState Overall(IEnumerable<Finding> findings) =>
        findings.Select(f => f.Severity).DefaultIfEmpty(HealthState.Ok).Max();
}
