using System.Diagnostics.Metrics;
using SharedLvm.Controller.Api;
using SharedLvm.Controller.Catalog;
using SharedLvm.Controller.Data;
using SharedLvm.Controller.Fencing;
using SharedLvm.Controller.Lease;
using SharedLvm.Controller.Nodes;
using SharedLvm.Controller.Pools;
using SharedLvm.Telemetry;

namespace SharedLvm.Controller.Telemetry;

/// <summary>
/// The controller's metrics (catalogue: deploy/METRICS.md). State is observed from the in-memory
/// model at scrape time, never by running lvm. Labels are bounded: pool and node names, volume
/// states, operation kinds and status codes; never volume ids.
/// </summary>
public sealed class ControllerMetrics : IDisposable
{
    public const string MeterName = "SharedLvm.Controller";

    private readonly Meter _meter;
    private readonly OperationMeter _operations;

    public ControllerMetrics(MetricScope scope, PoolRegistry pools, NodeDirectory nodes, NodeFencing fencing, DataJobs dataJobs, ControllerEpoch epoch, IWriterLease lease, TimeProvider time)
    {
        _meter = scope.CreateMeter(MeterName);
        _operations = new OperationMeter(_meter, "sharedlvm_volume_operation", "Volume operations through the API (queueing and lvm included)", ControllerStatusMapper.CodeOf);

        _meter.CreateObservableGauge("sharedlvm_pool_volumes", () => ByPoolAndState(pools, _ => 1L), "{volume}", "Volumes by pool and state.");
        _meter.CreateObservableGauge("sharedlvm_pool_volume_bytes", () => ByPoolAndState(pools, v => (long)v.SizeBytes), "By",
            "Provisioned bytes of volumes, by pool and state.");
        PoolGauge(pools, "sharedlvm_pool_size_bytes", "By", "Size of the pool's VG.", c => (long)c.SizeBytes);
        PoolGauge(pools, "sharedlvm_pool_free_bytes", "By", "Unallocated bytes in the pool's VG.", c => (long)c.FreeBytes);
        PoolGauge(pools, "sharedlvm_pool_metadata_size_bytes", "By",
            "Usable size of the VG metadata area (half the area: LVM keeps two copies). Fixed at pvcreate.", c => (long)c.MetadataUsableBytes);
        PoolGauge(pools, "sharedlvm_pool_metadata_free_bytes", "By",
            "Free bytes in the VG metadata area; new volumes are refused before it runs out.", c => (long)c.MetadataFreeBytes);
        PoolGauge(pools, "sharedlvm_pool_lvs", "{lv}", "LVs in the pool's VG (volumes and snapshots).", c => c.LvCount);
        PoolGauge(pools, "sharedlvm_pool_vg_seqno", "1", "The VG metadata sequence number the controller last wrote or read.", c => (long)c.Seqno);
        _meter.CreateObservableGauge("sharedlvm_pool_write_queue_depth", () => pools.All.Select(p => new Measurement<int>(p.Writer.QueueDepth, Tag("pool", p.Name))),
            "{operation}", "Metadata writes waiting on the pool's single writer.");
        _meter.CreateObservableCounter("sharedlvm_pool_foreign_writes", () => pools.All.Select(p => new Measurement<long>(p.ForeignWrites, Tag("pool", p.Name))),
            "{event}", "Times the VG seqno changed without the controller writing: another host wrote the metadata (invariant 1 broken).");

        _meter.CreateObservableGauge("sharedlvm_nodes", () => Enum.GetValues<NodeLiveness>()
                .Select(state => new Measurement<int>(nodes.All.Count(n => n.State == state), Tag("state", state.ToString().ToLowerInvariant()))),
            "{node}", "Registered nodes by state (ready, unreachable, fenced, draining).");
        _meter.CreateObservableGauge("sharedlvm_node_heartbeat_age_seconds", () => nodes.All
                .Where(n => n.LastHeartbeat is not null)
                .Select(n => new Measurement<double>((time.GetUtcNow() - n.LastHeartbeat!.Value).TotalSeconds, Tag("node", n.Name))),
            "s", "Seconds since the node's last heartbeat (absent until its first one after a controller start).");
        _meter.CreateObservableGauge("sharedlvm_node_attachments", () => AttachmentsByNode(pools, nodes), "{volume}",
            "Volumes tagged for each node (attached or attaching), including unreachable and fenced nodes.");
        _meter.CreateObservableGauge("sharedlvm_node_up", () => nodes.All.Select(n => new Measurement<int>(n.State == NodeLiveness.Ready ? 1 : 0, Tag("node", n.Name))),
            "1", "1 when the node is READY (heartbeating), else 0.");
        _meter.CreateObservableCounter("sharedlvm_node_fences", () =>
            {
                var (storage, declared, automatic, _) = fencing.Counts;
                // Automatic fences are storage fences (the policy never declares); the operator's are the rest.
                return new[]
                {
                    new Measurement<long>(automatic, Tag("method", "storage"), Tag("trigger", "automatic")),
                    new Measurement<long>(storage - automatic, Tag("method", "storage"), Tag("trigger", "operator")),
                    new Measurement<long>(declared, Tag("method", "declared"), Tag("trigger", "operator")),
                };
            }, "{event}", "Nodes fenced, by method (storage: key preempted and read back absent; declared: an operator's word) and trigger.");
        _meter.CreateObservableCounter("sharedlvm_node_fence_failures", () => fencing.Counts.Failures, "{event}",
            "Fence attempts that did not complete (no READY node to preempt from, agent errors, automatic fencing on an LU without PR); pending ones are retried.");
        _meter.CreateObservableGauge("sharedlvm_node_fenced", () => nodes.All.Where(n => n.State == NodeLiveness.Fenced)
                .Select(n => new Measurement<int>(1, Tag("node", n.Name), Tag("method", n.Fence?.Method == FenceMethod.Storage ? "storage" : "declared"))),
            "1", "1 for each FENCED node, labelled with how it was fenced.");
        _meter.CreateObservableCounter("sharedlvm_double_activations", () => nodes.DoubleActivations, "{event}",
            "Times an LV of a single-attach volume was reported active on two nodes at once.");
        _meter.CreateObservableGauge("sharedlvm_data_jobs", () => dataJobs.Jobs()
                .Select(j => new Measurement<int>(j.Count, Tag("operation", j.Operation), Tag("state", j.State))),
            "{job}", "Clone copies and delete wipes: running on an agent, or waiting (for a node that sees the LU, or a retry).");
        _meter.CreateObservableCounter("sharedlvm_data_job_failures", () => ((string[])["copy", "wipe"])
                .Select(op => new Measurement<long>(dataJobs.Failures.GetValueOrDefault(op), Tag("operation", op))),
            "{attempt}", "Copy or wipe attempts that failed on an agent (retried with backoff).");
        _meter.CreateObservableCounter("sharedlvm_data_job_completions", () => ((string[])["copy", "wipe"])
                .Select(op => new Measurement<long>(dataJobs.Completions.GetValueOrDefault(op), Tag("operation", op))),
            "{job}", "Copies and wipes finished to the last byte.");
        _meter.CreateObservableGauge("sharedlvm_controller_epoch", () => (long)epoch.Value, "1", "This controller's epoch; agents refuse commands from older ones.");
        _meter.CreateObservableGauge("sharedlvm_controller_active", () => lease.IsActive ? 1 : 0, "1",
            "1 on the controller that holds the writer lease (or the only one, lease none); 0 on standbys.");
        _meter.CreateObservableGauge("sharedlvm_controller_lease_verified_age_seconds",
            () => lease.LastVerified is { } at ? [new Measurement<double>((time.GetUtcNow() - at).TotalSeconds)] : Array.Empty<Measurement<double>>(), "s",
            "Seconds since the active controller last read its writer lease back from the LU (sanlock only).");
    }

    /// <summary>Times one API operation and counts it by the status it ended with.</summary>
    public Task<T> Measure<T>(string operation, Func<Task<T>> call) => _operations.Measure(operation, call);

    public void Dispose() => _meter.Dispose();

    private void PoolGauge(PoolRegistry pools, string name, string unit, string description, Func<PoolCapacity, long> value) =>
        _meter.CreateObservableGauge(name, () => pools.All.Select(p => new Measurement<long>(value(p.Catalog.Capacity), Tag("pool", p.Name))), unit, description);

    private static IEnumerable<Measurement<long>> ByPoolAndState(PoolRegistry pools, Func<VolumeRecord, long> value)
    {
        foreach (var pool in pools.All)
        {
            var totals = Enum.GetValues<VolumeLifecycle>().ToDictionary(s => s, _ => 0L);
            foreach (var volume in pool.Catalog.Snapshot())
            {
                totals[pool.Catalog.StateOf(volume)] += value(volume);
            }

            foreach (var (state, total) in totals)
            {
                yield return new Measurement<long>(total, Tag("pool", pool.Name), Tag("state", state.ToString().ToLowerInvariant()));
            }
        }
    }

    private static IEnumerable<Measurement<int>> AttachmentsByNode(PoolRegistry pools, NodeDirectory nodes)
    {
        var counts = nodes.All.ToDictionary(n => n.Name, _ => 0, StringComparer.Ordinal);
        foreach (var owner in pools.All.SelectMany(p => p.Catalog.Snapshot()).SelectMany(v => v.Owners))
        {
            counts[owner] = counts.GetValueOrDefault(owner) + 1;
        }

        return counts.Select(c => new Measurement<int>(c.Value, Tag("node", c.Key)));
    }

    private static KeyValuePair<string, object?> Tag(string key, object? value) => new(key, value);
}
