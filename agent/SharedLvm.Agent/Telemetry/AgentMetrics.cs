using System.Diagnostics.Metrics;
using SharedLvm.Agent.Api;
using SharedLvm.Agent.Uplink;
using SharedLvm.Agent.Discovery;
using SharedLvm.Agent.Health;
using SharedLvm.Agent.Rescan;
using SharedLvm.Telemetry;

namespace SharedLvm.Agent.Telemetry;

/// <summary>
/// The agent's metrics (catalogue: deploy/METRICS.md): where I/O can fail on this node, layer by
/// layer, observed from the SAN watcher's latest view at scrape time (no sysfs walk per scrape).
/// Every series carries the constant label node; per-LU series carry the WWID (bounded by the
/// LUs zoned to the node), never sdX names, which change across reboots and rescans.
/// </summary>
public sealed class AgentMetrics : IDisposable
{
    public const string MeterName = "SharedLvm.Agent";

    private readonly Meter _meter;
    private readonly Counter<long> _rescans;
    private readonly Histogram<double> _rescanSeconds;

    public AgentMetrics(MetricScope scope, SanWatcher watcher, ScsiRescanner rescanner, ControllerLink link, EpochStore epochs, AgentOptions options)
    {
        _meter = scope.CreateMeter(MeterName);
        Operations = new OperationMeter(_meter, "sharedlvm_agent_volume_operation", "Activations, deactivations and refreshes on this node", AgentStatusMapper.CodeOf);
        _rescans = _meter.CreateCounter<long>("sharedlvm_rescans", "{rescan}",
            "SCSI rescans by result: ok, missing (an expected WWID did not appear), host_error (a scan write failed or timed out).");
        _rescanSeconds = _meter.CreateHistogram("sharedlvm_rescan_duration_seconds", "s", "SCSI rescan duration, scan writes plus the wait for multipath maps.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120] });
        rescanner.Completed += Record;

        _meter.CreateObservableGauge("sharedlvm_lu_paths", () => Maps(watcher).SelectMany(m => Enum.GetValues<PathStatus>()
                .Select(status => new Measurement<int>(m.Paths.Count(p => p.Status == status), Tag("wwid", m.Wwid), Tag("state", status.ToString().ToLowerInvariant())))),
            "{path}", "Paths of each multipath LU by state (active, failed, standby).");
        _meter.CreateObservableGauge("sharedlvm_lu_map_present", () => MapPresence(watcher, options.ExpectedWwids), "1",
            "1 when the LU has a multipath map on this node; 0 for an expected LU without one.");
        _meter.CreateObservableGauge("sharedlvm_lu_queueing", () => Maps(watcher).Select(m => new Measurement<int>(m.Queueing ? 1 : 0, Tag("wwid", m.Wwid))),
            "1", "1 when the map queues I/O with no path (queue_if_no_path): processes block instead of failing.");
        _meter.CreateObservableGauge("sharedlvm_lu_map_suspended", () => Maps(watcher).Select(m => new Measurement<int>(m.Suspended ? 1 : 0, Tag("wwid", m.Wwid))),
            "1", "1 when the multipath map is suspended: all I/O to the LU blocks.");
        _meter.CreateObservableGauge("sharedlvm_hba_port_up", () => (watcher.Current?.View.Hosts ?? []).Where(h => h.Fc is not null)
                .Select(h => new Measurement<int>(string.Equals(h.Fc!.PortState, "Online", StringComparison.OrdinalIgnoreCase) ? 1 : 0,
                    Tag("host", "host" + h.Number), Tag("port_name", h.Fc.PortName))),
            "1", "1 when the FC port is Online.");
        _meter.CreateObservableGauge("sharedlvm_active_lvs", () => watcher.Current?.View.ActiveLvs.Count ?? 0, "{lv}", "LVs active (dm-linear devices present) on this node.");
        _meter.CreateObservableGauge("sharedlvm_health_findings", () => Findings(watcher), "{finding}",
            "Current health findings by layer (transport, scsi, multipath, lvm, lv), severity and code; hygiene findings included.");
        _meter.CreateObservableCounter("sharedlvm_san_resyncs", () => watcher.Resyncs, "{scan}", "Views of the SAN taken (uevent-triggered and periodic).");
        _meter.CreateObservableGauge("sharedlvm_agent_controller_connected", () => link.Connected ? 1 : 0, "1", "1 while the agent is registered and heartbeating.");
        _meter.CreateObservableGauge("sharedlvm_agent_controller_epoch", () => (long)epochs.Highest, "1", "Highest controller epoch seen; older commands are refused.");
    }

    /// <summary>Activations, deactivations and refreshes by result, with latency.</summary>
    public OperationMeter Operations { get; }

    public void Dispose() => _meter.Dispose();

    private void Record(RescanOutcome outcome)
    {
        var result = outcome.Hosts.Any(h => h.Error is not null) ? "host_error" : outcome.Missing.Count > 0 ? "missing" : "ok";
        _rescans.Add(1, Tag("result", result));
        _rescanSeconds.Record(outcome.Duration.TotalSeconds);
    }

    private static IReadOnlyList<MultipathMapInfo> Maps(SanWatcher watcher) => watcher.Current?.View.Maps ?? [];

    private static IEnumerable<Measurement<int>> MapPresence(SanWatcher watcher, IEnumerable<string> expected)
    {
        var maps = Maps(watcher);
        return maps.Select(m => new Measurement<int>(1, Tag("wwid", m.Wwid)))
            .Concat(expected.Where(w => watcher.Current?.View.MapFor(w) is null).Select(w => new Measurement<int>(0, Tag("wwid", w))));
    }

    private static IEnumerable<Measurement<int>> Findings(SanWatcher watcher) =>
        (watcher.Current?.Findings ?? [])
            .GroupBy(f => (f.Layer, f.Severity, f.Code))
            .Select(g => new Measurement<int>(g.Count(),
                Tag("layer", g.Key.Layer.ToString().ToLowerInvariant()), Tag("severity", g.Key.Severity.ToString().ToLowerInvariant()), Tag("code", g.Key.Code)));

    private static KeyValuePair<string, object?> Tag(string key, object? value) => new(key, value);
}
