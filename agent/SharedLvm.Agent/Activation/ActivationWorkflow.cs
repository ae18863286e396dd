using SharedLvm.Agent.Discovery;
using SharedLvm.Agent.Health;
using SharedLvm.Agent.Lvm;
using SharedLvm.Agent.Rescan;

namespace SharedLvm.Agent.Activation;

/// <summary>The outcome of an activation: the device, how the node got there, and where the time went.</summary>
public sealed record Activated(ActiveDevice Device, bool WasActive, bool Rescanned, TimeSpan San, TimeSpan Lvm);

/// <summary>
/// What the node does when the controller says activate, deactivate or refresh: make the LU visible
/// (rescanning by WWID if it is not), activate through LVM's volume_list (LVM itself refuses an LV
/// not tagged for this node), refuse to pull a device from under its users.
/// </summary>
public sealed class ActivationWorkflow(SanDiscovery discovery, SanWatcher watcher, ScsiRescanner rescanner, IVolumeActivator activator, AgentOptions options)
{
    private static readonly TimeSpan RescanWait = TimeSpan.FromSeconds(30);

    public async Task<Activated> ActivateAsync(string vg, string lv, string wwid, CancellationToken cancellationToken)
    {
        var rescanned = false;
        var timer = System.Diagnostics.Stopwatch.StartNew();
        // The watcher's view (kept current by uevents and resyncs) when it has the map usable;
        // otherwise a fresh SAN scan (sysfs, multipathd; not the watcher's full refresh, whose lvm
        // inspection doubled the attach time under TCG). The fresh scan on every attach was 200-420 ms
        // of the lab's attach (issue 18's breakdown). A view that missed a map's removal costs a clear
        // "VG not found" from lvm, and the controller's retry finds the resynced view.
        if (wwid.Length > 0 && watcher.Current?.View.IsUsable(wwid) != true
            && !(await discovery.ScanAsync(cancellationToken).ConfigureAwait(false)).IsUsable(wwid))
        {
            // The LU was mapped to this node after its last scan (LUN masking changes raise no event).
            var outcome = await rescanner.RescanAsync([], [], [wwid], false, RescanWait, cancellationToken).ConfigureAwait(false);
            rescanned = true;
            if (outcome.Missing.Count > 0)
            {
                throw new AgentException(AgentErrorKind.Unavailable, $"LU {wwid} of {vg}/{lv} is not visible on node {options.NodeName}, even after a rescan.");
            }
        }

        var san = timer.Elapsed;
        var wasActive = await activator.DeviceAsync(vg, lv, cancellationToken).ConfigureAwait(false) is not null;
        var device = await activator.ActivateAsync(vg, lv, cancellationToken).ConfigureAwait(false);
        return new Activated(device, wasActive, rescanned, san, timer.Elapsed - san);
    }

    /// <summary>True when the LV was active; refused while something holds it open.</summary>
    public async Task<bool> DeactivateAsync(string vg, string lv, CancellationToken cancellationToken)
    {
        if (await activator.DeviceAsync(vg, lv, cancellationToken).ConfigureAwait(false) is null)
        {
            return false;
        }

        var openers = await activator.OpenersAsync(vg, lv, cancellationToken).ConfigureAwait(false);
        if (openers.Count > 0)
        {
            throw new AgentException(AgentErrorKind.FailedPrecondition,
                $"{vg}/{lv} is open on node {options.NodeName} by {string.Join(", ", openers)}; stop its user before detaching.");
        }

        await activator.DeactivateAsync(vg, lv, cancellationToken).ConfigureAwait(false);
        if (await activator.DeviceAsync(vg, lv, cancellationToken).ConfigureAwait(false) is not null)
        {
            throw new AgentException(AgentErrorKind.Unavailable, $"{vg}/{lv} was deactivated but its device is still present on node {options.NodeName}.");
        }

        return true;
    }

    /// <summary>Reloads the active table from the metadata (after an extend); the device as it is now.</summary>
    public async Task<ActiveDevice> RefreshAsync(string vg, string lv, CancellationToken cancellationToken)
    {
        if (await activator.DeviceAsync(vg, lv, cancellationToken).ConfigureAwait(false) is null)
        {
            throw new AgentException(AgentErrorKind.FailedPrecondition, $"{vg}/{lv} is not active on node {options.NodeName}; nothing to refresh.");
        }

        await activator.RefreshAsync(vg, lv, cancellationToken).ConfigureAwait(false);
        return await activator.DeviceAsync(vg, lv, cancellationToken).ConfigureAwait(false)
            ?? throw new AgentException(AgentErrorKind.Unavailable, $"{vg}/{lv} disappeared during its refresh.");
    }
}
