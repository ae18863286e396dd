using Grpc.Core;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SharedLvm.Controller.Attachments;
using SharedLvm.Controller.Catalog;
using SharedLvm.Controller.Events;
using SharedLvm.Controller.Faults;
using SharedLvm.Controller.Lease;
using SharedLvm.Controller.Nodes;
using SharedLvm.Controller.Pools;
using SharedLvm.Controller.State;
using SharedLvm.Os.Reservations;

namespace SharedLvm.Controller.Fencing;

public enum FenceTrigger
{
    /// <summary>`slvm node fence`: may fall back to a declared fence when the LU has no PR.</summary>
    Operator,
    /// <summary>The automatic policy: storage fencing only, never a declared fence (nobody vouches for it).</summary>
    Automatic,
}

/// <summary>
/// Fence = preempt, and the one place invariant 2 is kept when a node is lost: a node's volumes are
/// released only after its reservation key was preempted and read back absent on every LU that holds
/// its volumes (every pool's LU when it holds none), or, on an operator's word, declared where such
/// an LU has no PR. The steps, each durable before the
/// next: record intent ("preempting") -> order a READY node's agent that sees the LU to preempt the
/// victim's key, confirm from the keys it reads back -> "freeing" + mark FENCED with the method ->
/// detach its volumes (without its agent) -> "done". A crash anywhere converges on retry (at the next
/// start, or the next tick): a preempt of a key that is already gone is only a read
/// (PreemptReservation answers "already_absent"), and freeing detaches what is still tagged.
///
/// The automatic policy (off by default, <see cref="ControllerOptions.AutoFenceAfter"/>) fences a node
/// UNREACHABLE for longer than the threshold while it holds volumes. sanlock's equivalent takes
/// 8 x io_timeout + the watchdog's fire timeout (field.md: 140 s by default); a preempt takes effect
/// on the array at once, on every path (lab.md), so the threshold is only how long to wait for a
/// node that may be coming back.
/// </summary>
public sealed class NodeFencing : BackgroundService
{
    private const string Preempting = "preempting";
    private const string Freeing = "freeing";
    private const string Done = "done";

    private readonly NodeDirectory _nodes;
    private readonly PoolRegistry _pools;
    private readonly ControllerStore _store;
    private readonly AttachmentService _attachments;
    private readonly IStoragePreempter _preempter;
    private readonly IWriterLease _lease;
    private readonly EventBus _events;
    private readonly FaultInjector _faults;
    private readonly ControllerOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<NodeFencing> _logger;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly HashSet<string> _alarmed = new(StringComparer.Ordinal);
    private readonly DateTimeOffset _started;
    private long _storageFences, _declaredFences, _automaticFences, _failures;

    public NodeFencing(NodeDirectory nodes, PoolRegistry pools, ControllerStore store, AttachmentService attachments, IStoragePreempter preempter, IWriterLease lease,
        EventBus events, FaultInjector faults, ControllerOptions options, TimeProvider time, ILogger<NodeFencing> logger)
    {
        _nodes = nodes;
        _pools = pools;
        _store = store;
        _attachments = attachments;
        _preempter = preempter;
        _lease = lease;
        _events = events;
        _faults = faults;
        _options = options;
        _time = time;
        _logger = logger;
        _started = time.GetUtcNow();
    }

    /// <summary>Fences completed, by method and trigger (a trigger's fences count once, in the method they ended with).</summary>
    public (long Storage, long Declared, long Automatic, long Failures) Counts =>
        (Interlocked.Read(ref _storageFences), Interlocked.Read(ref _declaredFences), Interlocked.Read(ref _automaticFences), Interlocked.Read(ref _failures));

    /// <summary>An operator's fence (interactive) or the policy's; see <see cref="PreemptEverywhereAsync"/> for when it is declared.</summary>
    public Task<NodeRecord> FenceAsync(string name, string reason, FenceTrigger trigger, CancellationToken cancellationToken) =>
        FenceAsync(name, reason, trigger, interactive: trigger == FenceTrigger.Operator, cancellationToken);

    private async Task<NodeRecord> FenceAsync(string name, string reason, FenceTrigger trigger, bool interactive, CancellationToken cancellationToken)
    {
        _ = _nodes.Get(name); // an unknown node is NOT_FOUND before anything waits
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // Read under the gate: a fence that finished while this one waited has marked the node
            // FENCED, and a copy read before the wait would open a second fence. In the SAN lab's full
            // run of 2026-12-04 the tick that retries pending fences waited behind an operator's
            // declared fence of node-a (S9), re-opened it with that stale copy, and as a non-interactive
            // fence it could not finish (LU 2 was seen by node-a only): it was retried at every check for
            // the rest of the run, each retry five mpathpersist calls on node-b, whose one TCG CPU then
            // took over 5 minutes to start a controller (S9z, CI of stop 26).
            var victim = _nodes.Get(name);
            var row = _store.Fences().FirstOrDefault(f => f.Node == name);
            if (row is { Phase: Done } && victim.State == NodeLiveness.Fenced)
            {
                return victim;
            }

            if (row is not { Phase: Freeing })
            {
                row = new FenceRow(name, Preempting, nameof(FenceMethod.Storage), trigger.ToString(), reason, row?.Since ?? _time.GetUtcNow());
                _store.SaveFence(row);
                // On the LU before the preempt: a successor must not tell the victim to register back in.
                await _lease.SaveMarksAsync(cancellationToken).ConfigureAwait(false);
                _faults.Hit("fence.after_intent");
                var method = await PreemptEverywhereAsync(victim, trigger, interactive, cancellationToken).ConfigureAwait(false);
                _faults.Hit("fence.after_preempt");
                row = row with { Phase = Freeing, Kind = method.ToString() };
                _store.SaveFence(row);
                _nodes.MarkFenced(name, NodeDirectory.FenceOf(row));
                // On the LU before any volume is freed: a successor must know the node is FENCED.
                await _lease.SaveMarksAsync(cancellationToken).ConfigureAwait(false);
                Interlocked.Increment(ref method == FenceMethod.Storage ? ref _storageFences : ref _declaredFences);
                if (trigger == FenceTrigger.Automatic)
                {
                    Interlocked.Increment(ref _automaticFences);
                }

                ControllerLog.Fenced(_logger, name, method, trigger, reason);
                _faults.Hit("fence.after_mark");
            }

            await FreeVolumesAsync(name, cancellationToken).ConfigureAwait(false);
            _store.SaveFence(row with { Phase = Done });
            await _lease.SaveMarksAsync(cancellationToken).ConfigureAwait(false);
            return _nodes.Get(name);
        }
        catch (Exception e) when (e is ControllerException or RpcException or PersistentReservationException)
        {
            Interlocked.Increment(ref _failures);
            ControllerLog.FenceFailed(_logger, name, trigger, e.Message);
            throw;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Preempts the victim's key on every pool's LU through a READY node that sees it, and confirms from
    /// the keys read back. Storage when every LU that holds one of the victim's volumes confirmed: those
    /// are the volumes the fence releases. An LU without PR where the victim holds nothing is noted, not
    /// a failure (a cluster may mix arrays: in the SAN lab one LU has PR and one has none), and its
    /// other failures there are logged and left to the next fence. Where an LU it holds has no PR (or the victim no key),
    /// an operator's interactive fence becomes declared and says why; an automatic one is refused:
    /// nobody vouches for it. No READY node to preempt from is transient: an interactive fence falls
    /// back to declared (the operator's word, as before PR), a pending one is retried, never declared
    /// behind anyone's back (right after a controller start no node has reported yet).
    /// </summary>
    private async Task<FenceMethod> PreemptEverywhereAsync(NodeRecord victim, FenceTrigger trigger, bool interactive, CancellationToken cancellationToken)
    {
        var unsupported = new List<string>();
        var transient = new List<string>();
        if (victim.Key is not { } victimKey)
        {
            unsupported.Add($"node {victim.Name} has no reservation key (it has not registered since keys were introduced)");
        }
        else
        {
            var held = _pools.All.Where(p => p.Catalog.Snapshot().Any(v => v.IsOwnedBy(victim.Name)))
                .Select(p => p.Row.Wwid).ToHashSet(StringComparer.Ordinal);
            if (held.Count == 0)
            {
                // A node that holds nothing is fenced everywhere or not at the storage at all: a
                // "storage" label must mean that some LU refuses its writes.
                held.UnionWith(_pools.All.Select(p => p.Row.Wwid));
            }

            foreach (var wwid in _pools.All.Select(p => p.Row.Wwid).Distinct(StringComparer.Ordinal))
            {
                (bool Transient, string? Why) outcome;
                try
                {
                    outcome = await PreemptOnAsync(victim, victimKey, wwid, cancellationToken).ConfigureAwait(false);
                }
                catch (ControllerException e) when (!held.Contains(wwid))
                {
                    outcome = (true, e.Message);
                }

                if (outcome.Why is not { } why)
                {
                    continue;
                }

                if (!held.Contains(wwid))
                {
                    ControllerLog.FenceSkippedLu(_logger, victim.Name, wwid, why);
                }
                else if (outcome.Transient)
                {
                    transient.Add(why);
                }
                else
                {
                    unsupported.Add(why);
                }
            }

            if (_pools.All.Count == 0)
            {
                // Also what a pending fence sees right after a start, before the pools are loaded.
                transient.Add("there are no pools (yet)");
            }
        }

        if (unsupported.Count == 0 && transient.Count == 0)
        {
            return FenceMethod.Storage;
        }

        var reasons = string.Join("; ", unsupported.Concat(transient));
        if (trigger == FenceTrigger.Automatic)
        {
            // Nothing was changed that a retry must undo; the node stays UNREACHABLE and pinned.
            _store.RemoveFence(victim.Name);
            await _lease.SaveMarksAsync(cancellationToken).ConfigureAwait(false);
            if (unsupported.Count > 0 && _alarmed.Add(victim.Name))
            {
                _events.Alarm(victim.Name, $"Node {victim.Name} could not be fenced automatically at the storage: {reasons}. Its volumes stay pinned to it.");
            }

            throw new ControllerException(ControllerErrorKind.FailedPrecondition, $"Node {victim.Name} can't be fenced at the storage: {reasons}.");
        }

        if (!interactive && transient.Count > 0)
        {
            throw new ControllerException(ControllerErrorKind.Unavailable, $"Node {victim.Name}'s pending fence waits: {reasons}.");
        }

        ControllerLog.DeclaredFence(_logger, victim.Name, reasons);
        return FenceMethod.Declared;
    }

    /// <summary>Why null when the victim's key is confirmed gone from the LU; else why it could not be, and whether that may pass (no fencer) or not (no PR).</summary>
    private async Task<(bool Transient, string? Why)> PreemptOnAsync(NodeRecord victim, ReservationKey victimKey, string wwid, CancellationToken cancellationToken)
    {
        var fencers = _nodes.All.Where(n => n.Name != victim.Name && n.State == NodeLiveness.Ready && n.Key is not null
                                            && n.VisibleWwids.Contains(wwid, StringComparer.Ordinal)).ToArray();
        if (fencers.Length == 0)
        {
            return (true, $"no READY node sees LU {wwid} to preempt from");
        }

        Exception? last = null;
        foreach (var fencer in fencers)
        {
            try
            {
                var outcome = await _preempter.PreemptAsync(fencer, wwid, fencer.Key!.Value, victimKey, cancellationToken).ConfigureAwait(false);
                if (!outcome.Supported)
                {
                    return (false, $"LU {wwid} does not implement persistent reservations (asked {fencer.Name})");
                }

                if (outcome.KeysAfter.Contains(victimKey))
                {
                    throw new ControllerException(ControllerErrorKind.Unavailable,
                        $"Node {fencer.Name} preempted {victimKey} on LU {wwid} but the key is still registered; retry the fence.");
                }

                ControllerLog.Preempted(_logger, victim.Name, victimKey.ToString(), wwid, fencer.Name, outcome.Mode);
                return (false, null);
            }
            catch (RpcException e) when (!cancellationToken.IsCancellationRequested)
            {
                // Another READY node that sees the LU may do it.
                last = e;
                ControllerLog.FencerFailed(_logger, fencer.Name, victim.Name, wwid, e.StatusCode, e.Status.Detail);
            }
        }

        throw new ControllerException(ControllerErrorKind.Unavailable,
            $"No node could preempt {victim.Name}'s key on LU {wwid} ({last?.Message}); the node is not fenced yet, retry.");
    }

    private async Task FreeVolumesAsync(string name, CancellationToken cancellationToken)
    {
        foreach (var volumeId in _nodes.AttachedVolumeIds(name).ToArray())
        {
            await _attachments.DetachAsync(volumeId, name, cancellationToken).ConfigureAwait(false);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(_options.FenceCheckInterval, _time);
        do
        {
            await TickAsync(stoppingToken).ConfigureAwait(false);
        }
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
    }

    /// <summary>Finishes fences a crash or a failure left pending, then applies the automatic policy.</summary>
    public async Task TickAsync(CancellationToken cancellationToken)
    {
        if (!_lease.IsActive)
        {
            return; // a standby acts on nothing; the active controller finishes what its state and the LU say is pending
        }

        foreach (var row in _store.Fences().Where(f => f.Phase != Done))
        {
            await TryFenceAsync(row.Node, row.Reason, Enum.TryParse<FenceTrigger>(row.Trigger, out var t) ? t : FenceTrigger.Operator, interactive: false, cancellationToken).ConfigureAwait(false);
        }

        if (_options.AutoFenceAfter is not { } threshold)
        {
            return;
        }

        var now = _time.GetUtcNow();
        foreach (var node in _nodes.All.Where(n => n.State == NodeLiveness.Unreachable))
        {
            // After a controller start nobody has heartbeated: count from the start, never from the past.
            var since = node.LastHeartbeat ?? _started;
            if (now - since <= threshold || !_nodes.AttachedVolumeIds(node.Name).Any())
            {
                continue;
            }

            var reason = $"UNREACHABLE for {(now - since).TotalSeconds:0} s (threshold {threshold.TotalSeconds:0} s) while holding volumes";
            if (await TryFenceAsync(node.Name, reason, FenceTrigger.Automatic, interactive: false, cancellationToken).ConfigureAwait(false))
            {
                _events.Alarm(node.Name, $"Node {node.Name} was fenced automatically at the storage: {reason}. Its volumes were released and can be attached elsewhere.");
            }
        }
    }

    private async Task<bool> TryFenceAsync(string name, string reason, FenceTrigger trigger, bool interactive, CancellationToken cancellationToken)
    {
        try
        {
            await FenceAsync(name, reason, trigger, interactive, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is ControllerException or RpcException or PersistentReservationException)
        {
            // Logged and counted in FenceAsync; the next tick retries what is still pending.
            return false;
        }
    }
}
