using System.Diagnostics.Metrics;
using SharedLvm.Telemetry;

namespace SharedLvm.Controller.Telemetry;

/// <summary>How a pool's writer committed: one lvm command for one write, or a batch of several.</summary>
public enum WriteCommit
{
    /// <summary>One write, its own lvm command (lvcreate, lvextend, lvchange, lvremove).</summary>
    Single,

    /// <summary>Several creates, extends or tag changes spliced into one vgcfgrestore.</summary>
    Restore,

    /// <summary>Several removes in one multi-LV lvremove.</summary>
    Remove,
}

/// <summary>Why a batch did not commit as one; its writes then run alone (or, after a timeout, are settled from the VG).</summary>
public enum BatchFailure
{
    /// <summary>The VG's text was at another seqno than the controller last wrote: re-read, alarm, single commands.</summary>
    SeqnoChanged,

    /// <summary>The VG (more than one PV, thin, snapshot or hidden LVs) or the writes could not be spliced.</summary>
    NotSpliceable,

    /// <summary><see cref="SharedLvm.Os.Lvm.MetadataInvariants"/> refused the spliced text.</summary>
    InvariantRefused,

    /// <summary>lvm refused the batch command (atomic: nothing committed).</summary>
    LvmFailed,

    /// <summary>An lvm command of the batch timed out.</summary>
    LvmTimeout,

    /// <summary>Anything else (the archive could not be written, a text that does not parse).</summary>
    Error,
}

/// <summary>
/// The pool writers' group commit (ARCHITECTURE.md, "Group commit"), recorded as commits happen:
/// batch sizes and commit times are events, which the scrape-time gauges of
/// <see cref="ControllerMetrics"/> cannot observe. Labels: pool, kind, reason; all bounded.
/// </summary>
public sealed class WriteMetrics : IDisposable
{
    // Up to ControllerOptions.WriteBatchLimit (64 by default), in powers of two.
    private static readonly int[] SizeBuckets = [1, 2, 4, 8, 16, 32, 64, 128];

    // An lvm commit costs 48 ms at 0 LVs and 444 ms at 8k (issue 18); the tail is the lvm timeout.
    private static readonly double[] SecondBuckets = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

    private readonly Meter _meter;
    private readonly Histogram<int> _size;
    private readonly Histogram<double> _seconds;
    private readonly Counter<long> _failures;
    private readonly Counter<long> _retried;

    public WriteMetrics(MetricScope scope)
    {
        // The controller's meter name, so the exporter takes these with the rest; a meter of its own
        // because the pools' writers are built before ControllerMetrics, which reads the pools.
        _meter = scope.CreateMeter(ControllerMetrics.MeterName);
        _size = _meter.CreateHistogram<int>("sharedlvm_pool_write_batch_size", "{write}",
            "Writes per metadata commit, by pool and kind (single: one lvm command; restore: one vgcfgrestore of spliced metadata; remove: one multi-LV lvremove).",
            advice: new InstrumentAdvice<int> { HistogramBucketBoundaries = SizeBuckets });
        _seconds = _meter.CreateHistogram("sharedlvm_pool_write_commit_duration_seconds", "s",
            "Time the lvm command of each metadata commit took, by pool and kind; failed and timed-out commits included.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = SecondBuckets });
        _failures = _meter.CreateCounter<long>("sharedlvm_pool_write_batch_failures", "{batch}",
            "Batches of several writes that did not commit as one, by pool and reason.");
        _retried = _meter.CreateCounter<long>("sharedlvm_pool_write_batch_retried_writes", "{write}",
            "Writes taken into a batch that then ran alone with their own lvm command, by pool and reason.");
    }

    public static string LabelOf(WriteCommit kind) => kind switch
    {
        WriteCommit.Single => "single",
        WriteCommit.Restore => "restore",
        _ => "remove",
    };

    public static string LabelOf(BatchFailure reason) => reason switch
    {
        BatchFailure.SeqnoChanged => "seqno_changed",
        BatchFailure.NotSpliceable => "not_spliceable",
        BatchFailure.InvariantRefused => "invariant_refused",
        BatchFailure.LvmFailed => "lvm_failed",
        BatchFailure.LvmTimeout => "lvm_timeout",
        _ => "error",
    };

    /// <summary>
    /// Starts the pool's counters at 0: Prometheus' increase() cannot see a series' first sample as an
    /// increase, so without this the first failure of a pool would never fire an alert.
    /// </summary>
    public void PoolAdded(string pool)
    {
        foreach (var reason in Enum.GetValues<BatchFailure>())
        {
            _failures.Add(0, Pool(pool), Reason(reason));
            _retried.Add(0, Pool(pool), Reason(reason));
        }
    }

    public void Committed(string pool, WriteCommit kind, int writes) => _size.Record(writes, Pool(pool), Kind(kind));

    public void CommitTook(string pool, WriteCommit kind, TimeSpan elapsed) => _seconds.Record(elapsed.TotalSeconds, Pool(pool), Kind(kind));

    public void BatchFailed(string pool, BatchFailure reason) => _failures.Add(1, Pool(pool), Reason(reason));

    public void RanAlone(string pool, BatchFailure reason, int writes)
    {
        if (writes > 0)
        {
            _retried.Add(writes, Pool(pool), Reason(reason));
        }
    }

    public void Dispose() => _meter.Dispose();

    private static KeyValuePair<string, object?> Pool(string pool) => new("pool", pool);

    private static KeyValuePair<string, object?> Kind(WriteCommit kind) => new("kind", LabelOf(kind));

    private static KeyValuePair<string, object?> Reason(BatchFailure reason) => new("reason", LabelOf(reason));
}
