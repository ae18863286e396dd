using Microsoft.Extensions.Hosting;
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
///
/// And, every <see cref="AgentOptions.RawPathCheckInterval"/> whether or not the controller is
/// reachable, an LV active through a raw path (<see cref="RawPaths"/>) is deactivated, owned or not,
/// unless it is open. Deactivating an LV the controller has attached here is still right: through a
/// raw path its I/O has no failover and bypasses the map the reservation is kept on. Nothing here
/// activates anything: the next attach (the controller's retry, `slvm volume attach`) activates it
/// with the agent's lvm, which scans multipath maps only, so through the map.
/// </summary>
public sealed class Reconciler : BackgroundService
{
    /// <summary>What the node's lvm.conf and initramfs need, said with every raw-path finding.</summary>
    public const string InitramfsRemedy =
        "An lvm with another config activated it, typically the initramfs at boot (its lvm.conf is not the system's): " +
        "in /etc/lvm/lvm.conf accept only multipath maps in devices/global_filter (\"a|^/dev/disk/by-id/dm-uuid-mpath-|\", \"r|.*|\") " +
        "and keep multipath_component_detection=1, then rebuild the initramfs (update-initramfs -u) so the next boot uses the same config.";

    private readonly SanWatcher _watcher;
    private readonly IVolumeActivator _activator;
    private readonly AgentOptions _options;
    private readonly ILogger<Reconciler> _logger;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly Dictionary<string, Finding> _rawPaths = new(StringComparer.Ordinal);
    private IReadOnlySet<string> _owned = new HashSet<string>(StringComparer.Ordinal);
    private IReadOnlyList<Finding> _strays = [];
    private IReadOnlyList<Finding> _rawFindings = [];

    public Reconciler(SanWatcher watcher, IVolumeActivator activator, AgentOptions options, ILogger<Reconciler> logger)
    {
        _watcher = watcher;
        _activator = activator;
        _options = options;
        _logger = logger;
    }

    /// <summary>
    /// Alarms: LVs active here that the node does not own and can't release (from the last
    /// registration), and LVs found on a raw path (kept, once deactivated, until the LV is active here
    /// again through its map or the agent restarts: the cause, the boot's lvm config, is still there).
    /// </summary>
    public IReadOnlyList<Finding> Findings => [.. Volatile.Read(ref _strays), .. Volatile.Read(ref _rawFindings)];

    public async Task<int> ReconcileAsync(IReadOnlyList<OwnedVolume> owned, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var snapshot = await _watcher.RefreshAsync(cancellationToken).ConfigureAwait(false);
            var ownedSet = owned.Select(o => o.VgName + "/" + o.LvName).ToHashSet(StringComparer.Ordinal);
            Volatile.Write(ref _owned, ownedSet);
            var (deactivated, onRawPaths) = await ReleaseRawPathsLockedAsync(snapshot, cancellationToken).ConfigureAwait(false);
            var findings = new List<Finding>();
            foreach (var lv in snapshot.View.ActiveLvs)
            {
                if (DmName.Split(lv.DmName) is not var (vg, name) || !VolumeId.IsVolumeLv(name) || ownedSet.Contains(vg + "/" + name) || onRawPaths.Contains(vg + "/" + name))
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
                catch (Exception e) when (IsLvmFailure(e))
                {
                    // One LV that won't deactivate must not stop the others, nor the node's heartbeats.
                    AgentLog.DeactivateFailed(_logger, vg, name, e.Message);
                    findings.Add(new Finding(Layer.Lv, HealthState.Failed, $"{vg}/{name}", "stray_deactivate_failed",
                        $"LV {vg}/{name} is active here but not owned by this node, and deactivating it failed: {e.Message}",
                        "Deactivate it by hand (lvchange -an) once whatever blocks it is resolved."));
                }
            }

            Volatile.Write(ref _strays, findings);
            return deactivated;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>One pass over the watcher's current view for LVs on raw paths; the number deactivated.</summary>
    public async Task<int> ReleaseRawPathsAsync(CancellationToken cancellationToken)
    {
        if (_watcher.Current is not { } snapshot)
        {
            return 0;
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return (await ReleaseRawPathsLockedAsync(snapshot, cancellationToken).ConfigureAwait(false)).Deactivated;
        }
        finally
        {
            _gate.Release();
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await _watcher.WaitForFirstScanAsync(stoppingToken).ConfigureAwait(false);
        using var timer = new PeriodicTimer(_options.RawPathCheckInterval);
        do
        {
            await ReleaseRawPathsAsync(stoppingToken).ConfigureAwait(false);
        }
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
    }

    public override void Dispose()
    {
        _gate.Dispose();
        base.Dispose();
    }

    private async Task<(int Deactivated, IReadOnlySet<string> OnRawPaths)> ReleaseRawPathsLockedAsync(SanSnapshot snapshot, CancellationToken cancellationToken)
    {
        var uses = RawPaths.Find(snapshot.View, _options.ExpectedWwids);
        var node = _options.NodeName;
        var deactivated = 0;
        var changed = false;
        foreach (var lv in uses.GroupBy(u => u.Subject, StringComparer.Ordinal))
        {
            var use = lv.First();
            // The view may be older than a deactivation this loop made a moment ago: lvm is asked
            // only about an LV that is still active now (sysfs).
            if (await _activator.DeviceAsync(use.Vg, use.Lv, cancellationToken).ConfigureAwait(false) is null)
            {
                continue;
            }

            var devices = string.Join(", ", lv.Select(u => u.Device).Distinct(StringComparer.Ordinal));
            var map = use.MapPath + (use.MapPresent ? string.Empty : " (not on this node now: a held path keeps multipathd from building it)");
            string What(string tense) => $"LV {use.Subject} {tense} active on node {node} through raw path {devices} instead of the multipath map {map} of LU {use.Wwid ?? "unknown"}: " +
                $"its I/O {(tense == "is" ? "bypasses" : "bypassed")} multipath (no failover) and the map the reservation is kept on.";
            var owned = _owned.Contains(use.Subject);
            Finding finding;
            var openers = await _activator.OpenersAsync(use.Vg, use.Lv, cancellationToken).ConfigureAwait(false);
            if (openers.Count > 0)
            {
                finding = new Finding(Layer.Lv, HealthState.Failed, use.Subject, RawPathCode,
                    $"{What("is")} It is open ({string.Join(", ", openers)}), so the agent left it active.",
                    $"Stop what uses it (the agent then deactivates it), restore the map (multipath -r) and attach the volume again. {InitramfsRemedy}");
                if (Changed(use.Subject, finding))
                {
                    AgentLog.RawPathOpen(_logger, use.Vg, use.Lv, devices, use.MapPath, string.Join(", ", openers));
                }
            }
            else
            {
                try
                {
                    await _activator.DeactivateAsync(use.Vg, use.Lv, cancellationToken).ConfigureAwait(false);
                    deactivated++;
                    AgentLog.DeactivatedRawPath(_logger, use.Vg, use.Lv, devices, use.MapPath);
                    finding = new Finding(Layer.Lv, HealthState.Failed, use.Subject, RawPathCode,
                        $"{What("was")} The agent deactivated {use.Subject}" + (owned ? "; it is attached to this node: attach it again to activate it through the map." : "."),
                        $"Restore the map if it is missing (multipath -r). {InitramfsRemedy}");
                }
                catch (Exception e) when (IsLvmFailure(e))
                {
                    // Tried again every pass, logged when it first fails (or fails differently).
                    finding = new Finding(Layer.Lv, HealthState.Failed, use.Subject, RawPathCode,
                        $"{What("is")} Deactivating it failed: {e.Message}",
                        $"Deactivate it by hand (lvchange -an with a --config that accepts {devices}), restore the map (multipath -r) and attach the volume again. {InitramfsRemedy}");
                    if (Changed(use.Subject, finding))
                    {
                        AgentLog.DeactivateFailed(_logger, use.Vg, use.Lv, e.Message);
                    }
                }
            }

            changed |= Changed(use.Subject, finding);
            _rawPaths[use.Subject] = finding;
        }

        // A reported LV that is active here again through its map (attached again) is sound now.
        foreach (var subject in _rawPaths.Keys.ToArray())
        {
            if (!uses.Any(u => u.Subject == subject) && snapshot.View.ActiveLvs.Any(l =>
                    DmName.ToVgLv(l.DmName) == subject && l.Devices.Count > 0 && l.Devices.All(Discovery.DeviceStack.IsDm)))
            {
                _rawPaths.Remove(subject);
                changed = true;
            }
        }

        if (changed)
        {
            Volatile.Write(ref _rawFindings, _rawPaths.Values.ToArray());
            // The next heartbeat should carry it, and the view show the LV gone, not the next resync's.
            _watcher.Poke();
        }

        return (deactivated, uses.Select(u => u.Subject).ToHashSet(StringComparer.Ordinal));
    }

    public const string RawPathCode = "lv_on_raw_path";

    private bool Changed(string subject, Finding finding) => !_rawPaths.TryGetValue(subject, out var previous) || previous != finding;

    private static bool IsLvmFailure(Exception e) =>
        e is AgentException or SharedLvm.Os.Lvm.LvmException or SharedLvm.Os.Processes.ProcessTimeoutException or SharedLvm.Os.Processes.ProcessStartException;
}
