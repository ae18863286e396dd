using Grpc.Core;
using Microsoft.Extensions.Logging;
using SharedLvm.Contracts.Conventions;
using SharedLvm.Contracts.V1;
using SharedLvm.Controller.Agents;
using SharedLvm.Controller.Catalog;
using SharedLvm.Controller.Events;
using SharedLvm.Controller.Faults;
using SharedLvm.Controller.Lease;
using SharedLvm.Controller.Nodes;
using SharedLvm.Controller.Pools;
using SharedLvm.Controller.State;
using SharedLvm.Controller.Telemetry;
using SharedLvm.Controller.Writes;
using AgentRpc = SharedLvm.Contracts.V1.Agent;

namespace SharedLvm.Controller.Attachments;

/// <summary>
/// Exclusive attach, enforced in three places: the controller's durable records (here), the LV's
/// owner tag checked by LVM's volume_list on the node at activation, and the agents' reports
/// (double activations raise alarms). Order of an attach: refuse if another node holds it ->
/// record ATTACHING -> owner tag (a metadata write, through the pool's writer) -> the node's agent
/// activates and refreshes -> ATTACHED with its device. A detach clears the tag only after the
/// agent confirmed the device is gone, or the node is FENCED. ATTACHING and DETACHING are on the LU
/// (<see cref="ClusterMarks.Attachments"/>) before the tag changes, so whichever controller comes
/// next settles what this one left half-way (<see cref="SettleOrphansAsync"/>).
/// </summary>
public sealed class AttachmentService
{
    private readonly PoolRegistry _pools;
    private readonly NodeDirectory _nodes;
    private readonly ControllerStore _store;
    private readonly EventBus _events;
    private readonly AgentClients _agents;
    private readonly FaultInjector _faults;
    private readonly ControllerEpoch _epoch;
    private readonly TimeProvider _time;
    private readonly ILogger<AttachmentService> _logger;
    private readonly TimeSpan _agentTimeout;
    private readonly IWriterLease _lease;

    // The attaches and detaches this process started: a client that saw one fail retries it. Any
    // other in-flight record was left by a process that is gone, and nobody else will finish it.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(string VolumeId, string Node), byte> _started = new();

    public AttachmentService(PoolRegistry pools, NodeDirectory nodes, ControllerStore store, EventBus events, AgentClients agents, ControllerEpoch epoch, ControllerOptions options, TimeProvider time,
        FaultInjector faults, IWriterLease lease, ILogger<AttachmentService> logger)
    {
        _lease = lease;
        _faults = faults;
        _agentTimeout = options.AgentTimeout;
        _pools = pools;
        _nodes = nodes;
        _store = store;
        _events = events;
        _agents = agents;
        _epoch = epoch;
        _time = time;
        _logger = logger;
    }

    public async Task<AttachmentRecord> AttachAsync(string volumeId, string node, bool multiAttach, CancellationToken cancellationToken)
    {
        using var activity = StartActivity("attach", volumeId, node);
        var timer = System.Diagnostics.Stopwatch.StartNew();
        Validation.Id("volume_id", volumeId);
        Validation.NodeName("node", node);
        var (pool, found) = _pools.Find(volumeId) ?? throw ControllerException.NotFound($"Volume {volumeId} does not exist.");
        if (found.Kind == Catalog.VolumeKind.Snapshot)
        {
            // Activating a COW snapshot activates its origin with it, on that node: a second holder
            // of the origin behind the origin's owner tag (invariant 2).
            throw new ControllerException(ControllerErrorKind.FailedPrecondition,
                $"Volume {volumeId} is a snapshot; snapshots can't be attached. Restore it into its origin {found.SourceVolumeId} (slvm volume restore), then attach the origin.");
        }

        var target = _nodes.Get(node);
        if (target.State != NodeLiveness.Ready)
        {
            throw new ControllerException(ControllerErrorKind.FailedPrecondition, $"Node {node} is {target.State.ToString().ToUpperInvariant()}; volumes can be attached only to READY nodes.");
        }

        using var claim = pool.Catalog.Claim("attach", volumeId);
        var volume = pool.Catalog.Get(volumeId) ?? throw ControllerException.NotFound($"Volume {volumeId} does not exist.");
        if (volume.WipePending)
        {
            throw new ControllerException(ControllerErrorKind.FailedPrecondition, $"Volume {volumeId} is being deleted; it can't be attached.");
        }

        if (volume.CopyPending)
        {
            throw new ControllerException(ControllerErrorKind.FailedPrecondition, $"Volume {volumeId} is a clone whose data copy has not finished; it can be attached once it is AVAILABLE.");
        }

        if (pool.Catalog.RestoringInto(volume) is { } restoring)
        {
            // The VG says merge: activated on a node, the kernel would merge there, and that node's
            // lvm (read-only metadata) could never finish it.
            throw new ControllerException(ControllerErrorKind.FailedPrecondition,
                $"Volume {volumeId} is being restored from snapshot {restoring.Id}; retry the restore (slvm volume restore {restoring.Id}) and attach it once that finished.");
        }

        if (pool.Catalog.Snapshot().FirstOrDefault(v => v.CopyPending && !v.WipePending && string.Equals(v.SourceVolumeId, volumeId, StringComparison.Ordinal)) is { } clone)
        {
            // The copy reads the source below LVM: a writer on it now would tear the clone.
            throw new ControllerException(ControllerErrorKind.FailedPrecondition,
                $"Volume {volumeId} is being copied into clone {clone.Id}; attach it once the copy finished, or delete the clone.");
        }

        var holders = volume.Owners.Where(o => o != node).ToArray();
        CheckSecondHolder(volume, holders, multiAttach);

        var since = pool.Catalog.Attachment(volumeId, node)?.Since ?? _time.GetUtcNow();
        _started[(volumeId, node)] = 0;
        Record(pool, new AttachmentRecord(volumeId, node, AttachmentPhase.Attaching, null, since));
        await _lease.SaveMarksAsync(cancellationToken).ConfigureAwait(false);
        var tagStart = timer.Elapsed;
        volume = await SetOwnerAsync(pool, volume, node, owns: true, cancellationToken, multiAttach).ConfigureAwait(false);
        var tag = timer.Elapsed - tagStart;

        var response = await ActivateAsync(target, pool, volume, cancellationToken).ConfigureAwait(false);
        _faults.Hit("attach.after_activate");
        var attached = new AttachmentRecord(volumeId, node, AttachmentPhase.Attached, ContractMapping.FromContract(response.Device), since);
        Record(pool, attached);
        ControllerLog.Attached(_logger, volumeId, volume.Name, node, response.Device.Path, response.Rescanned,
            (long)timer.Elapsed.TotalMilliseconds, (long)tag.TotalMilliseconds, (long)(timer.Elapsed - tagStart - tag).TotalMilliseconds);
        _events.AttachmentChanged(pool.Catalog, volume, $"Volume {volume.Name} ({volumeId}) attached to {node} as {response.Device.Path}.");
        // Done, whatever this write does: a successor that still finds ATTACHING completes it again (idempotent).
        await _lease.SaveMarksAsync(cancellationToken).ConfigureAwait(false);
        return attached;
    }

    /// <summary>Detaching from a node the volume is not attached to succeeds.</summary>
    public async Task DetachAsync(string volumeId, string node, CancellationToken cancellationToken)
    {
        using var activity = StartActivity("detach", volumeId, node);
        Validation.Id("volume_id", volumeId);
        Validation.NodeName("node", node);
        if (_pools.Find(volumeId) is not var (pool, _))
        {
            return;
        }

        using var claim = pool.Catalog.Claim("detach", volumeId);
        await DetachClaimedAsync(pool, claim, volumeId, node, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The detach itself, under the volume's <paramref name="claim"/> (given up as soon as the volume is free).</summary>
    private async Task DetachClaimedAsync(PoolRuntime pool, IDisposable claim, string volumeId, string node, CancellationToken cancellationToken)
    {
        var timer = System.Diagnostics.Stopwatch.StartNew();
        var volume = pool.Catalog.Get(volumeId)!;
        if (!volume.IsOwnedBy(node))
        {
            Forget(pool, volumeId, node);
            await _lease.SaveMarksAsync(cancellationToken).ConfigureAwait(false);
            return;
        }

        var existing = pool.Catalog.Attachment(volumeId, node);
        _started[(volumeId, node)] = 0;
        Record(pool, new AttachmentRecord(volumeId, node, AttachmentPhase.Detaching, existing?.Device, existing?.Since ?? _time.GetUtcNow()));
        await _lease.SaveMarksAsync(cancellationToken).ConfigureAwait(false);
        var holder = _nodes.Find(node);
        var agentStart = timer.Elapsed;
        if (holder?.State == NodeLiveness.Fenced)
        {
            // Fenced: it can no longer reach the LU, so it can't be using the LV.
            ControllerLog.DetachFenced(_logger, volumeId, node);
        }
        else
        {
            if (holder is null)
            {
                throw new ControllerException(ControllerErrorKind.FailedPrecondition,
                    $"Volume {volumeId} is tagged for node {node}, which has not registered; it stays pinned there until the node confirms or is fenced.");
            }

            await CallAgentAsync(holder, "deactivate", volume, (agent, call) =>
                agent.DeactivateVolumeAsync(new DeactivateVolumeRequest { Header = _epoch.HeaderFor(node), Lv = LvRef(pool, volume) }, call), cancellationToken).ConfigureAwait(false);
            _faults.Hit("detach.after_deactivate");
        }

        var agent = timer.Elapsed - agentStart;
        volume = await SetOwnerAsync(pool, volume, node, owns: false, cancellationToken).ConfigureAwait(false);
        Forget(pool, volumeId, node);
        // Free the volume before the log and the event, not after: whoever sees it released (GetNode,
        // the event stream, a fence's alarm) attaches it elsewhere at once, and was told ABORTED
        // ("detach in flight") while the event was still being written (NodeFencingTests, CI stop 25).
        claim.Dispose();
        ControllerLog.Detached(_logger, volumeId, volume.Name, node, (long)timer.Elapsed.TotalMilliseconds, (long)agent.TotalMilliseconds,
            (long)(timer.Elapsed - agentStart - agent).TotalMilliseconds);
        _events.AttachmentChanged(pool.Catalog, volume, $"Volume {volume.Name} ({volumeId}) detached from {node}.");
        // Done, whatever this write does: a successor that still finds DETACHING finds no tag and drops it.
        await _lease.SaveMarksAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The devices of attachments known only from their owner tags. A controller that loads a pool
    /// without its own records (a successor on another host after a takeover, issue 16) takes each
    /// tag's word, ATTACHED, but has no device to show until a client retries the attach. Where the
    /// owner's heartbeat lists the LV active, this asks the node now: the agent's activate is
    /// idempotent (on an active LV it changes nothing and returns the device), exactly what that retry
    /// would record. An LV its owner does not report active keeps the tag's word, as it does with a
    /// node that rebooted: nothing is released without a detach or a fence. Returns how many devices
    /// were learnt.
    /// </summary>
    public async Task<int> SettleReportedAsync(CancellationToken cancellationToken)
    {
        var settled = 0;
        foreach (var node in _nodes.All.Where(n => n.State == NodeLiveness.Ready))
        {
            foreach (var reported in node.ActiveLvs)
            {
                if (reported.Split('/') is not [var vg, var lv] || VolumeId.FromLvName(lv) is not { } volumeId
                    || _pools.Find(volumeId) is not var (pool, volume) || volume.VgName != vg || !DeviceUnknown(pool, volume, node.Name))
                {
                    continue;
                }

                string device;
                using (var claim = TryClaim(pool, volumeId))
                {
                    // Looked at again under the claim: an attach or a detach may have finished since.
                    if (claim is null || pool.Catalog.Get(volumeId) is not { } current || !DeviceUnknown(pool, current, node.Name))
                    {
                        continue;
                    }

                    volume = current;
                    try
                    {
                        var response = await ActivateAsync(node, pool, volume, cancellationToken).ConfigureAwait(false);
                        var since = pool.Catalog.Attachment(volumeId, node.Name)?.Since ?? _time.GetUtcNow();
                        Record(pool, new AttachmentRecord(volumeId, node.Name, AttachmentPhase.Attached, ContractMapping.FromContract(response.Device), since));
                        ControllerLog.AttachmentSettled(_logger, volumeId, volume.Name, node.Name, response.Device.Path);
                        device = response.Device.Path;
                        settled++;
                    }
                    catch (ControllerException)
                    {
                        continue; // logged by CallAgentAsync; the next look tries again, unless a client's attach comes first
                    }
                }

                _events.AttachmentChanged(pool.Catalog, volume, $"Volume {volume.Name} ({volumeId}) is attached to {node.Name} as {device}: its agent reports it active.");
            }
        }

        return settled;
    }

    /// <summary>
    /// Finishes the attaches and detaches a process that is gone left in flight: this controller's
    /// own before a crash (its state directory), or the last active controller's before a takeover
    /// (the LU's marks, imported with the lease). Nobody else will: the client that asked may have
    /// gone too (issue 16, "takeover converges"). For each, as the node answers:
    /// <list type="bullet">
    /// <item>never tagged, or the tag already gone: nothing reached the node's LVM; the record goes.</item>
    /// <item>an attach tagged for a READY node: completed, with the agent's idempotent activate (what
    /// the client's retry would do); the volume is ATTACHED with its device.</item>
    /// <item>a detach, or an attach whose node is FENCED or DRAINING: the detach runs to the end
    /// (the agent confirms the deactivation, or the node is fenced; then the tag goes).</item>
    /// <item>a node UNREACHABLE or not registered yet: left as it is, pinned, until it answers or is
    /// fenced (never released on a guess).</item>
    /// </list>
    /// A failed step is tried again at the next call. Returns how many were settled.
    /// </summary>
    public async Task<int> SettleOrphansAsync(CancellationToken cancellationToken)
    {
        var settled = 0;
        foreach (var pool in _pools.All)
        {
            foreach (var orphan in pool.Catalog.InFlight().Where(a => !_started.ContainsKey((a.VolumeId, a.Node))))
            {
                if (await SettleOrphanAsync(pool, orphan, cancellationToken).ConfigureAwait(false) is { } outcome)
                {
                    ControllerLog.OrphanSettled(_logger, orphan.Phase == AttachmentPhase.Attaching ? "attach" : "detach", orphan.VolumeId, orphan.Node, outcome);
                    settled++;
                }
            }
        }

        return settled;
    }

    /// <summary>One orphan of <see cref="SettleOrphansAsync"/>; what became of it, or null when it waits for the next call.</summary>
    private async Task<string?> SettleOrphanAsync(PoolRuntime pool, AttachmentRecord orphan, CancellationToken cancellationToken)
    {
        var volume = pool.Catalog.Get(orphan.VolumeId);
        if (volume is null || !volume.IsOwnedBy(orphan.Node))
        {
            // Nothing reached the node's LVM (volume_list refuses an untagged LV), or the detach had
            // already untagged it: only the record is left.
            using (var claim = TryClaim(pool, orphan.VolumeId))
            {
                if (claim is null || !IsStillOrphan(pool, orphan) || pool.Catalog.Get(orphan.VolumeId)?.IsOwnedBy(orphan.Node) == true)
                {
                    return null;
                }

                Forget(pool, orphan.VolumeId, orphan.Node);
            }

            await _lease.SaveMarksAsync(cancellationToken).ConfigureAwait(false);
            return volume is null ? "the volume is gone: the record was dropped" : "the volume is not tagged for the node: the record was dropped";
        }

        var node = _nodes.Find(orphan.Node);
        if (node is null || node.State == NodeLiveness.Unreachable)
        {
            return null;
        }

        if (orphan.Phase == AttachmentPhase.Detaching || node.State != NodeLiveness.Ready)
        {
            using var claim = TryClaim(pool, orphan.VolumeId);
            // Under the claim, looked at again: a client's attach may have finished in the meantime
            // (ATTACHED, tagged for this node), and detaching that one would undo what it was told.
            if (claim is null || !IsStillOrphan(pool, orphan))
            {
                return null;
            }

            try
            {
                await DetachClaimedAsync(pool, claim, orphan.VolumeId, orphan.Node, cancellationToken).ConfigureAwait(false);
            }
            catch (ControllerException)
            {
                return null; // logged where it failed; tried again at the next call
            }
            finally
            {
                // The claim kept clients out: the key is the settler's, and the record an orphan again if it failed.
                _started.TryRemove((orphan.VolumeId, orphan.Node), out _);
            }

            return orphan.Phase == AttachmentPhase.Detaching
                ? "the detach was completed"
                : $"the attach was rolled back (detached): the node is {node.State.ToString().ToUpperInvariant()}";
        }

        string device;
        using (var claim = TryClaim(pool, orphan.VolumeId))
        {
            if (claim is null || !IsStillOrphan(pool, orphan) || pool.Catalog.Get(orphan.VolumeId) is not { } current || !current.IsOwnedBy(orphan.Node))
            {
                return null; // changed before the claim; looked at again at the next call
            }

            volume = current;
            ActivateVolumeResponse response;
            try
            {
                response = await ActivateAsync(node, pool, volume, cancellationToken).ConfigureAwait(false);
            }
            catch (ControllerException)
            {
                return null; // logged by CallAgentAsync
            }

            Record(pool, new AttachmentRecord(volume.Id, node.Name, AttachmentPhase.Attached, ContractMapping.FromContract(response.Device), orphan.Since));
            device = response.Device.Path;
        }

        await _lease.SaveMarksAsync(cancellationToken).ConfigureAwait(false);
        _events.AttachmentChanged(pool.Catalog, volume, $"Volume {volume.Name} ({volume.Id}) attached to {node.Name} as {device}: the attach an earlier controller left in flight was completed.");
        return $"the attach was completed: its device is {device}";
    }

    /// <summary>The volume's claim for settling, or null while a client's attach or detach holds it (that one records the outcome itself).</summary>
    private static IDisposable? TryClaim(PoolRuntime pool, string volumeId)
    {
        try
        {
            return pool.Catalog.Claim("settle", volumeId);
        }
        catch (ControllerException e) when (e.Kind == ControllerErrorKind.Aborted)
        {
            return null;
        }
    }

    /// <summary>Under the claim: still in the phase it was found in, and not taken up by a client since.</summary>
    private bool IsStillOrphan(PoolRuntime pool, AttachmentRecord orphan) =>
        !_started.ContainsKey((orphan.VolumeId, orphan.Node)) && pool.Catalog.Attachment(orphan.VolumeId, orphan.Node)?.Phase == orphan.Phase;

    /// <summary>Tagged for <paramref name="node"/>, ATTACHED on the tag's word alone (no device on record).</summary>
    private static bool DeviceUnknown(PoolRuntime pool, VolumeRecord volume, string node) =>
        volume.IsOwnedBy(node) && pool.Catalog.Attachment(volume.Id, node) is { Phase: AttachmentPhase.Attached, Device: null };

    /// <summary>After an extend: every owner refreshes, and the new size counts only once their devices have it.</summary>
    public async Task RefreshOwnersAsync(string volumeId, CancellationToken cancellationToken)
    {
        var (pool, volume) = _pools.Find(volumeId) ?? throw ControllerException.NotFound($"Volume {volumeId} does not exist.");
        foreach (var owner in volume.Owners)
        {
            using var activity = StartActivity("refresh", volumeId, owner);
            var node = _nodes.Get(owner);
            var response = await CallAgentAsync(node, "refresh", volume, (agent, call) =>
                agent.RefreshVolumeAsync(new RefreshVolumeRequest { Header = _epoch.HeaderFor(owner), Lv = LvRef(pool, volume) }, call), cancellationToken).ConfigureAwait(false);
            if (response.Device.SizeBytes != volume.SizeBytes)
            {
                throw new ControllerException(ControllerErrorKind.Unavailable,
                    $"Volume {volumeId} is {volume.SizeBytes} bytes in metadata but its device on {owner} is {response.Device.SizeBytes} bytes after a refresh; retry.");
            }

            if (pool.Catalog.Attachment(volumeId, owner) is { } attachment)
            {
                Record(pool, attachment with { Device = ContractMapping.FromContract(response.Device) });
            }
        }
    }

    /// <summary>
    /// Invariant 2's exception, and nothing more: a second holder only for a live migration that both
    /// sides asked for (the first holder attached with multi_attach, and so does this one), only while
    /// the first holder is READY, and two at most. An UNREACHABLE holder keeps the volume pinned
    /// whatever the flag says: it may still be writing, and asking for multi-attach must not be a way
    /// around fencing.
    /// </summary>
    private void CheckSecondHolder(VolumeRecord volume, string[] holders, bool multiAttach)
    {
        if (holders.Length == 0)
        {
            return;
        }

        if (holders.Length >= 2)
        {
            throw new ControllerException(ControllerErrorKind.FailedPrecondition, $"Volume {volume.Id} is already attached to two nodes ({string.Join(", ", holders)}), the most multi_attach allows.");
        }

        var holder = holders[0];
        var state = _nodes.Find(holder)?.State;
        if (state != NodeLiveness.Ready)
        {
            throw new ControllerException(ControllerErrorKind.FailedPrecondition,
                $"Volume {volume.Id} is attached to {holder}, which is {(state?.ToString() ?? "not registered").ToUpperInvariant()}: it stays pinned there until {holder} confirms a detach or is fenced, multi_attach or not.");
        }

        if (!multiAttach)
        {
            throw new ControllerException(ControllerErrorKind.FailedPrecondition,
                $"Volume {volume.Id} is attached to {holder}; detach it there first (or, for a live migration, attach with multi_attach on both nodes).");
        }

        if (!volume.MultiAttach)
        {
            throw new ControllerException(ControllerErrorKind.FailedPrecondition,
                $"Volume {volume.Id} was attached to {holder} without multi_attach; a second node may join only an attachment that asked for sharing from the start.");
        }
    }

    /// <summary>
    /// Adds or removes the owner tag, the LVM-level half of exclusive attach: an agent's volume_list
    /// lets it activate only LVs tagged for its node. The multi-attach mark is set with the first
    /// holder (when it asked for it) and cleared with the last. The caller holds the volume's claim.
    /// </summary>
    private Task<VolumeRecord> SetOwnerAsync(PoolRuntime pool, VolumeRecord volume, string node, bool owns, CancellationToken cancellationToken, bool multiAttach = false)
    {
        if (volume.IsOwnedBy(node) == owns)
        {
            return Task.FromResult(volume);
        }

        var owners = owns ? [.. volume.Owners, node] : volume.Owners.Where(o => o != node).ToArray();
        var shared = owners.Length switch
        {
            0 => false,
            1 when owns => multiAttach,
            _ => volume.MultiAttach,
        };
        return pool.Writer.WriteAsync(new RetagLv(owns ? "attach" : "detach", volume, volume with { Owners = owners, MultiAttach = shared }), cancellationToken);
    }

    /// <summary>A span per attachment step; the agent's call joins it through the traceparent header.</summary>
    private static System.Diagnostics.Activity? StartActivity(string action, string volumeId, string node) =>
        ControllerActivities.Source.StartActivity(action + " volume")?
            .SetTag("sharedlvm.volume_id", volumeId)
            .SetTag("sharedlvm.node", node);

    private void Record(PoolRuntime pool, AttachmentRecord attachment)
    {
        _store.SaveAttachment(attachment);
        pool.Catalog.SetAttachment(attachment);
        if (attachment.Phase == AttachmentPhase.Attached)
        {
            _started.TryRemove((attachment.VolumeId, attachment.Node), out _);
        }
    }

    private void Forget(PoolRuntime pool, string volumeId, string node)
    {
        _store.RemoveAttachment(volumeId, node);
        pool.Catalog.RemoveAttachment(volumeId, node);
        _started.TryRemove((volumeId, node), out _);
    }

    private async Task<T> CallAgentAsync<T>(NodeRecord node, string action, VolumeRecord volume, Func<AgentRpc.AgentClient, CallOptions, AsyncUnaryCall<T>> call, CancellationToken cancellationToken)
    {
        try
        {
            return await call(_agents.For(node.Name, node.Address), new CallOptions(deadline: DateTime.UtcNow + _agentTimeout, cancellationToken: cancellationToken)).ConfigureAwait(false);
        }
        catch (RpcException e)
        {
            ControllerLog.AgentFailed(_logger, action, volume.Id, node.Name, e.StatusCode, e.Status.Detail);
            throw new ControllerException(AgentClients.KindOf(e),
                $"Node {node.Name} did not {action} volume {volume.Id} ({e.StatusCode}: {e.Status.Detail}). " +
                (action == "activate" ? "The volume stays tagged for the node: retry the attach, or detach it." : "Retry; the volume stays where it is until the node confirms or is fenced."), e);
        }
    }

    /// <summary>The node's agent activates the volume (idempotent: an active LV is left as it is) and returns its device.</summary>
    private Task<ActivateVolumeResponse> ActivateAsync(NodeRecord node, PoolRuntime pool, VolumeRecord volume, CancellationToken cancellationToken) =>
        CallAgentAsync(node, "activate", volume, (agent, call) => agent.ActivateVolumeAsync(new ActivateVolumeRequest
        {
            Header = _epoch.HeaderFor(node.Name),
            Lv = LvRef(pool, volume),
            Shared = volume.MultiAttach,
        }, call), cancellationToken);

    private static LvRef LvRef(PoolRuntime pool, VolumeRecord volume) => new()
    {
        VgName = volume.VgName,
        LvName = volume.LvName,
        VolumeId = volume.Id,
        Lun = new LunAddress { Wwid = pool.Row.Wwid },
    };
}
