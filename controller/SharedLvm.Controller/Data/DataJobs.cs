using System.Collections.Concurrent;
using Grpc.Core;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SharedLvm.Contracts.V1;
using SharedLvm.Controller.Agents;
using SharedLvm.Controller.Catalog;
using SharedLvm.Controller.Events;
using SharedLvm.Controller.Faults;
using SharedLvm.Controller.Nodes;
using SharedLvm.Controller.Pools;
using SharedLvm.Controller.State;
using SharedLvm.Controller.Writes;

namespace SharedLvm.Controller.Data;

/// <summary>
/// Runs the data work the VG's tags ask for, to the end: a clone's copy (slvm_copy_pending) and a
/// deleted volume's wipe (slvm_wipe_pending). The tags are the durable intent, so a controller
/// restart, an agent restart or a lost node only delays the work: the next scan finds it and starts
/// it again from the last checkpoint. The I/O runs on a READY node that sees the pool's LU (the
/// least busy), never more than <see cref="ControllerOptions.DataJobsPerNode"/> per node. Only when
/// the agent reports the last byte done does the controller finish the volume: a clone's tag comes
/// off (AVAILABLE), a wiped LV is removed. Never the other way round: a half-copied clone is never
/// called AVAILABLE, an LV is never removed unwiped.
/// </summary>
public sealed class DataJobs : BackgroundService
{
    /// <summary>
    /// After a copy is cancelled (its clone deleted), the wipe waits this long before any node other
    /// than the copying one may start: a cancelled stream stops the agent's copy at its next chunk,
    /// but the controller can't see when, and a late chunk landing after the wipe would leave data in
    /// freed extents. On the same node the agent itself serializes them.
    /// </summary>
    private static readonly TimeSpan CancelledCopyGrace = TimeSpan.FromSeconds(60);

    private static readonly TimeSpan ScanInterval = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan CheckpointEvery = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan EventEvery = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(60);

    private readonly PoolRegistry _pools;
    private readonly NodeDirectory _nodes;
    private readonly AgentClients _agents;
    private readonly ControllerEpoch _epoch;
    private readonly ControllerStore _store;
    private readonly EventBus _events;
    private readonly FaultInjector _faults;
    private readonly ControllerOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<DataJobs> _logger;
    private readonly ConcurrentDictionary<string, Running> _running = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, (int Failures, DateTimeOffset NotBefore)> _backoff = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, (string Node, DateTimeOffset Until)> _pinned = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _waitingLogged = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _poke = new(0, 1);
    private readonly ConcurrentDictionary<string, long> _failures = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> _completions = new(StringComparer.Ordinal);

    public DataJobs(PoolRegistry pools, NodeDirectory nodes, AgentClients agents, ControllerEpoch epoch, ControllerStore store, EventBus events,
        FaultInjector faults, ControllerOptions options, TimeProvider time, ILogger<DataJobs> logger)
    {
        _pools = pools;
        _nodes = nodes;
        _agents = agents;
        _epoch = epoch;
        _store = store;
        _events = events;
        _faults = faults;
        _options = options;
        _time = time;
        _logger = logger;
    }

    /// <summary>Jobs running now, by node (for the least-busy choice and the metrics).</summary>
    public IReadOnlyDictionary<string, int> RunningByNode =>
        _running.Values.GroupBy(r => r.Node, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);

    /// <summary>Jobs by operation ("copy", "wipe") and state ("running", or "waiting": asked for by the tags, not running).</summary>
    public IEnumerable<(string Operation, string State, int Count)> Jobs()
    {
        var running = _running.Values.GroupBy(r => r.Operation, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        var wanted = _pools.All.SelectMany(p => p.Catalog.Snapshot())
            .Where(v => (v.WipePending || v.CopyPending) && !_running.ContainsKey(v.Id))
            .GroupBy(v => v.WipePending ? "wipe" : "copy", StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        foreach (var operation in (string[])["copy", "wipe"])
        {
            yield return (operation, "running", running.GetValueOrDefault(operation));
            yield return (operation, "waiting", wanted.GetValueOrDefault(operation));
        }
    }

    /// <summary>Attempts that failed (and will be retried), by operation.</summary>
    public IReadOnlyDictionary<string, long> Failures => _failures;

    /// <summary>Jobs finished to the end, by operation.</summary>
    public IReadOnlyDictionary<string, long> Completions => _completions;

    /// <summary>Look for new work now rather than at the next scan (a clone or a delete was just recorded).</summary>
    public void Poke()
    {
        try
        {
            _poke.Release();
        }
        catch (SemaphoreFullException)
        {
            // A scan is already due.
        }
    }

    /// <summary>
    /// Stops a clone's copy (its clone is being deleted) and pins the wipe that follows to the copying
    /// node for a grace period (<see cref="CancelledCopyGrace"/>).
    /// </summary>
    public async Task CancelCopyAsync(string volumeId, string reason)
    {
        if (!_running.TryGetValue(volumeId, out var running))
        {
            return;
        }

        _pinned[volumeId] = (running.Node, _time.GetUtcNow() + CancelledCopyGrace);
        ControllerLog.DataJobCancelled(_logger, volumeId, running.Name, reason);
        await running.Cancel.CancelAsync().ConfigureAwait(false);
        await running.Task.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                Schedule(stoppingToken);
                await _poke.WaitAsync(ScanInterval, stoppingToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            await Task.WhenAll(_running.Values.Select(r => r.Task)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    /// <summary>Starts a job for every volume whose tags ask for one and that has none running.</summary>
    internal void Schedule(CancellationToken stopping)
    {
        var now = _time.GetUtcNow();
        foreach (var pool in _pools.All)
        {
            foreach (var volume in pool.Catalog.Snapshot().Where(v => v.WipePending || v.CopyPending))
            {
                if (_running.ContainsKey(volume.Id) || (_backoff.TryGetValue(volume.Id, out var backoff) && backoff.NotBefore > now))
                {
                    continue;
                }

                var operation = volume.WipePending ? "wipe" : "copy";
                var source = volume.WipePending ? null : pool.Catalog.Get(volume.SourceVolumeId);
                if (!volume.WipePending && source is null)
                {
                    Wait(pool, volume, operation, $"its source volume {volume.SourceVolumeId} no longer exists; delete this clone");
                    continue;
                }

                if (PickNode(pool, volume, now) is not { } node)
                {
                    continue;
                }

                _waitingLogged.TryRemove(volume.Id, out _);
                var cancel = CancellationTokenSource.CreateLinkedTokenSource(stopping);
                var running = new Running(volume.Name, node.Name, operation, cancel);
                _running[volume.Id] = running;
                running.Task = Task.Run(() => RunAsync(pool, volume, source, node, operation, cancel.Token), CancellationToken.None);
            }
        }
    }

    private NodeRecord? PickNode(PoolRuntime pool, VolumeRecord volume, DateTimeOffset now)
    {
        var operation = volume.WipePending ? "wipe" : "copy";
        if (pool.Row.Wwid.Length == 0)
        {
            Wait(pool, volume, operation, $"pool {pool.Name} was created without a WWID, so no node can be matched to its LU");
            return null;
        }

        var busy = RunningByNode;
        var candidates = _nodes.All
            .Where(n => n.State == NodeLiveness.Ready && n.VisibleWwids.Contains(pool.Row.Wwid, StringComparer.OrdinalIgnoreCase))
            .Where(n => busy.GetValueOrDefault(n.Name) < _options.DataJobsPerNode)
            .OrderBy(n => busy.GetValueOrDefault(n.Name))
            .ThenBy(n => n.Name, StringComparer.Ordinal)
            .ToList();
        if (_pinned.TryGetValue(volume.Id, out var pin))
        {
            if (pin.Until <= now)
            {
                _pinned.TryRemove(volume.Id, out _);
            }
            else
            {
                candidates = candidates.Where(n => n.Name == pin.Node).ToList();
            }
        }

        if (candidates.Count == 0)
        {
            Wait(pool, volume, operation, pin.Node is not null && pin.Until > now
                ? $"the cancelled copy ran on {pin.Node}, which must run the wipe or be gone for {CancelledCopyGrace.TotalSeconds:0} s"
                : $"no READY node that sees LU {pool.Row.Wwid} has a free slot ({_options.DataJobsPerNode} per node)");
            return null;
        }

        return candidates[0];
    }

    private void Wait(PoolRuntime pool, VolumeRecord volume, string operation, string reason)
    {
        var status = $"{operation} waiting: {reason}";
        if (pool.Catalog.Work(volume.Id)?.Status != status)
        {
            pool.Catalog.SetWork(volume.Id, new DataWork(operation, pool.Catalog.Work(volume.Id)?.Progress, status));
        }

        if (!_waitingLogged.TryGetValue(volume.Id, out var logged) || logged != reason)
        {
            _waitingLogged[volume.Id] = reason;
            ControllerLog.DataJobWaiting(_logger, volume.Id, volume.Name, operation, reason);
        }
    }

    private async Task RunAsync(PoolRuntime pool, VolumeRecord volume, VolumeRecord? source, NodeRecord node, string operation, CancellationToken cancellationToken)
    {
        // A checkpoint counts only for the same operation: a wipe after a cancelled copy starts at 0.
        var resume = _store.DataProgress(volume.Id, operation);
        var started = _time.GetTimestamp();
        DataProgress? last = null;
        try
        {
            ControllerLog.DataJobStarted(_logger, volume.Id, volume.Name, operation, node.Name, resume, volume.SizeBytes);
            pool.Catalog.SetWork(volume.Id, new DataWork(operation, pool.Catalog.Work(volume.Id)?.Progress, $"{operation} starting on {node.Name}"));
            _events.VolumeChanged(pool.Catalog, volume, $"Volume {volume.Name} ({volume.Id}): {operation} started on {node.Name}.");
            var agent = _agents.For(node.Name, node.Address);
            using var call = operation == "wipe"
                ? agent.WipeVolume(new WipeVolumeRequest
                {
                    Header = _epoch.HeaderFor(node.Name),
                    Lv = LvRef(pool, volume),
                    Method = pool.Row.WipeOnDelete == WipeOnDelete.Discard ? WipeMethod.Discard : WipeMethod.Zeroout,
                    ResumeFromBytes = resume,
                    MaxBytesPerSecond = _options.DataJobMaxBytesPerSecond,
                }, cancellationToken: cancellationToken)
                : agent.CopyVolume(new CopyVolumeRequest
                {
                    Header = _epoch.HeaderFor(node.Name),
                    Source = LvRef(pool, source!),
                    Target = LvRef(pool, volume),
                    ResumeFromBytes = resume,
                    MaxBytesPerSecond = _options.DataJobMaxBytesPerSecond,
                }, cancellationToken: cancellationToken);
            var checkpoint = _time.GetTimestamp();
            var published = _time.GetTimestamp();
            await foreach (var progress in call.ResponseStream.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                last = progress;
                pool.Catalog.SetWork(volume.Id, new DataWork(operation, progress, Describe(operation, progress)));
                if (_time.GetElapsedTime(checkpoint) >= CheckpointEvery)
                {
                    checkpoint = _time.GetTimestamp();
                    _store.SaveDataProgress(volume.Id, operation, progress.DoneBytes);
                }

                if (_time.GetElapsedTime(published) >= EventEvery)
                {
                    published = _time.GetTimestamp();
                    _events.VolumeChanged(pool.Catalog, volume, $"Volume {volume.Name} ({volume.Id}): {Describe(operation, progress)}.");
                }
            }

            if (last is not { Finished: true } || last.DoneBytes < last.TotalBytes)
            {
                throw new RpcException(new Status(StatusCode.Unavailable, $"node {node.Name} ended the {operation} at byte {last?.DoneBytes ?? resume} without finishing"));
            }

            _faults.Hit(operation + ".before_finish");
            await FinishAsync(pool, volume.Id, operation, cancellationToken).ConfigureAwait(false);
            _store.ForgetDataProgress(volume.Id);
            _backoff.TryRemove(volume.Id, out _);
            _pinned.TryRemove(volume.Id, out _);
            _completions.AddOrUpdate(operation, 1, (_, n) => n + 1);
            ControllerLog.DataJobFinished(_logger, volume.Id, volume.Name, operation, node.Name, last.TotalBytes, _time.GetElapsedTime(started).TotalSeconds);
        }
        catch (Exception e) when (cancellationToken.IsCancellationRequested && e is OperationCanceledException or RpcException { StatusCode: StatusCode.Cancelled })
        {
            // A delete took over, or the controller is stopping: the tags say what is left to do.
            Checkpoint(volume.Id, operation, last);
        }
        catch (Exception e) when (e is RpcException or ControllerException or Os.Lvm.LvmException or Os.Processes.ProcessTimeoutException)
        {
            Checkpoint(volume.Id, operation, last);
            _failures.AddOrUpdate(operation, 1, (_, n) => n + 1);
            var failures = _backoff.TryGetValue(volume.Id, out var previous) ? previous.Failures + 1 : 1;
            var delay = TimeSpan.FromSeconds(Math.Min(MaxBackoff.TotalSeconds, Math.Pow(2, failures)));
            _backoff[volume.Id] = (failures, _time.GetUtcNow() + delay);
            var error = e is RpcException rpc ? $"{rpc.StatusCode}: {rpc.Status.Detail}" : e.Message;
            ControllerLog.DataJobFailed(_logger, volume.Id, volume.Name, operation, node.Name, last?.DoneBytes ?? resume, error, delay.TotalSeconds);
            pool.Catalog.SetWork(volume.Id, new DataWork(operation, last, $"{operation} on {node.Name} failed ({error}); retrying in {delay.TotalSeconds:0} s"));
        }
        finally
        {
            _running.TryRemove(volume.Id, out var running);
            running?.Cancel.Dispose();
        }
    }

    /// <summary>The work is done: the clone becomes usable, or the wiped LV goes.</summary>
    private async Task FinishAsync(PoolRuntime pool, string volumeId, string operation, CancellationToken cancellationToken)
    {
        using var claim = pool.Catalog.Claim("finish " + operation, volumeId);
        var current = pool.Catalog.Get(volumeId);
        if (current is null)
        {
            return;
        }

        if (operation == "wipe")
        {
            await pool.Writer.WriteAsync(new RemoveLv(current), cancellationToken).ConfigureAwait(false);
            _events.Publish(EventKind.VolumeDeleted, volumeId, $"Volume {current.Name} ({volumeId}) wiped and deleted from pool {pool.Name}.");
        }
        else if (!current.WipePending)
        {
            pool.Catalog.SetWork(volumeId, null);
            var ready = await pool.Writer.WriteAsync(new RetagLv("copied", current, current with { CopyPending = false }), cancellationToken).ConfigureAwait(false);
            _events.VolumeChanged(pool.Catalog, ready, $"Clone {ready.Name} ({volumeId}) has all its data and is AVAILABLE.");
        }
    }

    private void Checkpoint(string volumeId, string operation, DataProgress? last)
    {
        if (last is not null)
        {
            _store.SaveDataProgress(volumeId, operation, last.DoneBytes);
        }
    }

    private static string Describe(string operation, DataProgress progress)
    {
        var percent = progress.TotalBytes == 0 ? 100 : 100.0 * progress.DoneBytes / progress.TotalBytes;
        return $"{operation} on {progress.Node}: {percent:0.#}% ({progress.DoneBytes} of {progress.TotalBytes} bytes, {progress.BytesPerSecond / (1024 * 1024)} MiB/s, ETA {progress.EtaSeconds} s)";
    }

    private static LvRef LvRef(PoolRuntime pool, VolumeRecord volume) => new()
    {
        VgName = volume.VgName,
        LvName = volume.LvName,
        VolumeId = volume.Id,
        Lun = new LunAddress { Wwid = pool.Row.Wwid },
    };

    private sealed class Running(string name, string node, string operation, CancellationTokenSource cancel)
    {
        public string Name { get; } = name;

        public string Node { get; } = node;

        public string Operation { get; } = operation;

        public CancellationTokenSource Cancel { get; } = cancel;

        public Task Task { get; set; } = Task.CompletedTask;
    }
}
