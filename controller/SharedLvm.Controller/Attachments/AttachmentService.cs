using Grpc.Core;
using Microsoft.Extensions.Logging;
using SharedLvm.Contracts.Conventions;
using SharedLvm.Contracts.V1;
using SharedLvm.Controller.Agents;
using SharedLvm.Controller.Catalog;
using SharedLvm.Controller.Events;
using SharedLvm.Controller.Faults;
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
/// agent confirmed the device is gone, or the node is FENCED.
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

    public AttachmentService(PoolRegistry pools, NodeDirectory nodes, ControllerStore store, EventBus events, AgentClients agents, ControllerEpoch epoch, ControllerOptions options, TimeProvider time,
        FaultInjector faults, ILogger<AttachmentService> logger)
    {
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
        Record(pool, new AttachmentRecord(volumeId, node, AttachmentPhase.Attaching, null, since));
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
        return attached;
    }

    /// <summary>Detaching from a node the volume is not attached to succeeds.</summary>
    public async Task DetachAsync(string volumeId, string node, CancellationToken cancellationToken)
    {
        using var activity = StartActivity("detach", volumeId, node);
        var timer = System.Diagnostics.Stopwatch.StartNew();
        Validation.Id("volume_id", volumeId);
        Validation.NodeName("node", node);
        if (_pools.Find(volumeId) is not var (pool, _))
        {
            return;
        }

        using var claim = pool.Catalog.Claim("detach", volumeId);
        var volume = pool.Catalog.Get(volumeId)!;
        if (!volume.IsOwnedBy(node))
        {
            Forget(pool, volumeId, node);
            return;
        }

        var existing = pool.Catalog.Attachment(volumeId, node);
        Record(pool, new AttachmentRecord(volumeId, node, AttachmentPhase.Detaching, existing?.Device, existing?.Since ?? _time.GetUtcNow()));
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

                IDisposable claim;
                string device;
                try
                {
                    claim = pool.Catalog.Claim("settle", volumeId);
                }
                catch (ControllerException e) when (e.Kind == ControllerErrorKind.Aborted)
                {
                    continue; // an attach or a detach is in flight: it records the outcome itself
                }

                using (claim)
                {
                    // Looked at again under the claim: an attach or a detach may have finished since.
                    if (pool.Catalog.Get(volumeId) is not { } current || !DeviceUnknown(pool, current, node.Name))
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
    }

    private void Forget(PoolRuntime pool, string volumeId, string node)
    {
        _store.RemoveAttachment(volumeId, node);
        pool.Catalog.RemoveAttachment(volumeId, node);
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
