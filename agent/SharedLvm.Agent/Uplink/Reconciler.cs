using Microsoft.Extensions.Logging;
using SharedLvm.Agent.Health;
using SharedLvm.Agent.Lvm;
using SharedLvm.Contracts.Conventions;
using SharedLvm.Contracts.V1;

namespace SharedLvm.Agent.Uplink;

/// <summary>
/// Brings the node in line with what the controller says it owns, at every registration (agent
/// start, controller restart): a SharedLvm LV active here but not owned is deactivated (it was
/// auto-activated at boot, or left behind by a crash) unless something has it open, which is raised
/// as an alarm instead: pulling a disk from under a running VM is worse than the alarm.
/// </summary>
public sealed class Reconciler
{
    private readonly SanWatcher _watcher;
    private readonly IVolumeActivator _activator;
    private readonly ILogger<Reconciler> _logger;
    private IReadOnlyList<Finding> _findings = [];

    public Reconciler(SanWatcher watcher, IVolumeActivator activator, ILogger<Reconciler> logger)
    {
        _watcher = watcher;
        _activator = activator;
        _logger = logger;
    }

    /// <summary>Alarms of the last reconciliation: LVs active here that the node does not own and can't release.</summary>
    public IReadOnlyList<Finding> Findings => Volatile.Read(ref _findings);

    public async Task<int> ReconcileAsync(IReadOnlyList<OwnedVolume> owned, CancellationToken cancellationToken)
    {
        var snapshot = await _watcher.RefreshAsync(cancellationToken).ConfigureAwait(false);
        var ownedSet = owned.Select(o => o.VgName + "/" + o.LvName).ToHashSet(StringComparer.Ordinal);
        var findings = new List<Finding>();
        var deactivated = 0;
        foreach (var lv in snapshot.View.ActiveLvs)
        {
            if (DmName.Split(lv.DmName) is not var (vg, name) || !VolumeId.IsVolumeLv(name) || ownedSet.Contains(vg + "/" + name))
            {
                continue;
            }

            var openers = await _activator.OpenersAsync(vg, name, cancellationToken).ConfigureAwait(false);
            if (openers.Count > 0)
            {
                AgentLog.NotOwnedButOpen(_logger, vg, name, string.Join(", ", openers));
                findings.Add(new Finding(Layer.Lv, HealthState.Failed, $"{vg}/{name}", "active_not_owned",
                    $"LV {vg}/{name} is active and open here ({string.Join(", ", openers)}) but the controller does not record this node as its owner.",
                    "Find who should own it before anything else attaches it: another node may be using it too."));
                continue;
            }

            try
            {
                await _activator.DeactivateAsync(vg, name, cancellationToken).ConfigureAwait(false);
                deactivated++;
                AgentLog.Deactivated(_logger, vg, name);
            }
            catch (Exception e) when (e is AgentException or SharedLvm.Os.Lvm.LvmException or SharedLvm.Os.Processes.ProcessTimeoutException or SharedLvm.Os.Processes.ProcessStartException)
            {
                // One LV that won't deactivate must not stop the others, nor the node's heartbeats.
                AgentLog.DeactivateFailed(_logger, vg, name, e.Message);
                findings.Add(new Finding(Layer.Lv, HealthState.Failed, $"{vg}/{name}", "stray_deactivate_failed",
                    $"LV {vg}/{name} is active here but not owned by this node, and deactivating it failed: {e.Message}",
                    "Deactivate it by hand (lvchange -an) once whatever blocks it is resolved."));
            }
        }

        Volatile.Write(ref _findings, findings);
        return deactivated;
    }
}
