using Google.Protobuf;
using Microsoft.Extensions.Logging;
using SharedLvm.Contracts.V1;
using SharedLvm.Controller.Events;
using SharedLvm.Controller.Nodes;
using SharedLvm.Controller.Pools;
using SharedLvm.Controller.State;
using SharedLvm.Controller.Telemetry;
using SharedLvm.Controller.Volumes;
using SharedLvm.Grpc;

namespace SharedLvm.Controller.Attachments;

public enum AttachmentPhase
{
    Attaching,
    Attached,
    Detaching,
}

public sealed record AttachmentRecord(string VolumeId, string Node, AttachmentPhase Phase, DevicePath? Device, DateTimeOffset Since);

/// <summary>
/// Exclusive attach, enforced in three places: the controller's durable records (here), the LV's
/// owner tag checked by LVM's volume_list on the node at activation, and the agents' reports
/// (double activations raise alarms). Order of an attach: refuse if another node holds it ->
/// journal -> owner tag (a metadata write) -> the node's agent activates and refreshes -> ATTACHED.
/// A detach clears the tag only after the agent confirmed the device is gone, or the node is FENCED.
/// </summary>
public sealed partial class AttachmentService
{
    private readonly PoolRegistry _pools;
    private readonly VolumeService _volumes;
    private readonly NodeDirectory _nodes;
    private readonly ControllerStore _store;
    private readonly EventBus _events;
    private readonly AgentClients _agents;
    private readonly ControllerStartup _startup;
    private readonly ILogger<AttachmentService> _logger;
    private readonly TimeSpan _agentTimeout;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(string VolumeId, string Node), AttachmentRow> _rows = new();

    internal AttachmentService(PoolRegistry pools, VolumeService volumes, NodeDirectory nodes, ControllerStore store, EventBus events, AgentClients agents, ControllerStartup startup, ControllerOptions options, ILogger<AttachmentService> logger)
    {
        _agentTimeout = options.AgentTimeout;
        _pools = pools;
        _volumes = volumes;
        _nodes = nodes;
        _store = store;
        _events = events;
        _agents = agents;
        _startup = startup;
        _logger = logger;
        foreach (var row in store.Attachments())
        {
            _rows[(row.VolumeId, row.Node)] = row;
        }
    }

    /// <summary>The attachments of a volume: its owner tags, with the progress the controller recorded.</summary>
    public IReadOnlyList<AttachmentRecord> Of(VolumeRecord volume)
    {
        return volume.Owners.Select(node => _rows.TryGetValue((volume.Id, node), out var row)
                ? new AttachmentRecord(volume.Id, node, Enum.Parse<AttachmentPhase>(row.State), row.Device.Length > 0 ? DevicePath.Parser.ParseJson(row.Device) : null, row.Since)
                // A tag without a record: a crash between the two. Unknown until the agent confirms.
                : new AttachmentRecord(volume.Id, node, AttachmentPhase.Attaching, null, DateTimeOffset.UtcNow))
            .ToArray();
    }

    public async Task<AttachmentRecord> AttachAsync(string volumeId, string node, bool multiAttach, CancellationToken cancellationToken)
    {
        using var activity = StartActivity("attach", volumeId, node);
        Validation.Id("volume_id", volumeId);
        Validation.NodeName("node", node);
        var (pool, volume) = _volumes.Find(volumeId) ?? throw ControllerException.NotFound($"Volume {volumeId} does not exist.");
        var target = _nodes.Get(node);
        if (target.State != NodeLiveness.Ready)
        {
            throw new ControllerException(ControllerErrorKind.FailedPrecondition, $"Node {node} is {target.State.ToString().ToUpperInvariant()}; volumes can be attached only to READY nodes.");
        }

        using var claim = pool.Catalog.Claim("attach", volumeId);
        volume = pool.Catalog.Get(volumeId) ?? throw ControllerException.NotFound($"Volume {volumeId} does not exist.");
        if (volume.CopyPending)
        {
            throw new ControllerException(ControllerErrorKind.FailedPrecondition, $"Volume {volumeId} is a clone whose data copy has not run; it can't be attached yet.");
        }

        var holders = volume.Owners.Where(o => o != node).ToArray();
        if (holders.Length > 0 && !multiAttach)
        {
            throw new ControllerException(ControllerErrorKind.FailedPrecondition,
                $"Volume {volumeId} is attached to {string.Join(", ", holders)}; detach it there first (or ask for multi_attach for a live migration).");
        }

        if (holders.Length >= 2)
        {
            throw new ControllerException(ControllerErrorKind.FailedPrecondition, $"Volume {volumeId} is already attached to two nodes ({string.Join(", ", holders)}), the most multi_attach allows.");
        }

        var since = DateTimeOffset.UtcNow;
        Save(new AttachmentRow(volumeId, node, nameof(AttachmentPhase.Attaching), string.Empty, since));
        volume = await _volumes.SetOwnerAsync(pool, volume, node, owns: true, cancellationToken).ConfigureAwait(false);

        var response = await CallAgentAsync<ActivateVolumeResponse>(target, "activate", volume, new ActivateVolumeRequest
        {
            Header = Header(node),
            Lv = LvRef(pool, volume),
            Shared = holders.Length > 0,
        }, cancellationToken).ConfigureAwait(false);
        Save(new AttachmentRow(volumeId, node, nameof(AttachmentPhase.Attached), JsonFormatter.Default.Format(response.Device), since));
        LogAttached(_logger, volumeId, volume.Name, node, response.Device.Path, response.Rescanned);
        _events.Publish(EventKind.AttachmentChanged, volumeId, $"Volume {volume.Name} ({volumeId}) attached to {node} as {response.Device.Path}.");
        return new AttachmentRecord(volumeId, node, AttachmentPhase.Attached, response.Device, since);
    }

    /// <summary>Detaching from a node the volume is not attached to succeeds.</summary>
    public async Task DetachAsync(string volumeId, string node, CancellationToken cancellationToken)
    {
        using var activity = StartActivity("detach", volumeId, node);
        Validation.Id("volume_id", volumeId);
        Validation.NodeName("node", node);
        if (_volumes.Find(volumeId) is not var (pool, _))
        {
            return;
        }

        using var claim = pool.Catalog.Claim("detach", volumeId);
        var volume = pool.Catalog.Get(volumeId)!;
        if (!volume.Owners.Contains(node, StringComparer.Ordinal))
        {
            Remove(volumeId, node);
            return;
        }

        var existing = _rows.GetValueOrDefault((volumeId, node));
        Save(new AttachmentRow(volumeId, node, nameof(AttachmentPhase.Detaching), existing?.Device ?? string.Empty, existing?.Since ?? DateTimeOffset.UtcNow));
        var holder = _nodes.All.FirstOrDefault(n => n.Name == node);
        if (holder?.State == NodeLiveness.Fenced)
        {
            // Fenced: it can no longer reach the LU, so it can't be using the LV.
            LogDetachFenced(_logger, volumeId, node);
        }
        else
        {
            if (holder is null)
            {
                throw new ControllerException(ControllerErrorKind.FailedPrecondition,
                    $"Volume {volumeId} is tagged for node {node}, which has not registered; it stays pinned there until the node confirms or is fenced.");
            }

            await CallAgentAsync<DeactivateVolumeResponse>(holder, "deactivate", volume, new DeactivateVolumeRequest { Header = Header(node), Lv = LvRef(pool, volume) }, cancellationToken).ConfigureAwait(false);
        }

        await _volumes.SetOwnerAsync(pool, volume, node, owns: false, cancellationToken).ConfigureAwait(false);
        Remove(volumeId, node);
        LogDetached(_logger, volumeId, volume.Name, node);
        _events.Publish(EventKind.AttachmentChanged, volumeId, $"Volume {volume.Name} ({volumeId}) detached from {node}.");
    }

    /// <summary>After an extend: every owner refreshes, and the new size counts only once their devices have it.</summary>
    public async Task RefreshOwnersAsync(string volumeId, CancellationToken cancellationToken)
    {
        var (pool, volume) = _volumes.Find(volumeId) ?? throw ControllerException.NotFound($"Volume {volumeId} does not exist.");
        foreach (var owner in volume.Owners)
        {
            using var activity = StartActivity("refresh", volumeId, owner);
            var node = _nodes.Get(owner);
            var response = await CallAgentAsync<ActivateVolumeResponse>(node, "refresh", volume, new RefreshVolumeRequest { Header = Header(owner), Lv = LvRef(pool, volume) }, cancellationToken).ConfigureAwait(false);
            if (response.Device.SizeBytes != volume.SizeBytes)
            {
                throw new ControllerException(ControllerErrorKind.Unavailable,
                    $"Volume {volumeId} is {volume.SizeBytes} bytes in metadata but its device on {owner} is {response.Device.SizeBytes} bytes after a refresh; retry.");
            }
        }
    }

    /// <summary>A span per attachment step; the agent's call joins it through the traceparent header.</summary>
    private static System.Diagnostics.Activity? StartActivity(string action, string volumeId, string node) =>
        ControllerMetrics.Activities.StartActivity(action + " volume")?
            .SetTag("sharedlvm.volume_id", volumeId)
            .SetTag("sharedlvm.node", node);

    private void Save(AttachmentRow row)
    {
        _store.SaveAttachment(row);
        _rows[(row.VolumeId, row.Node)] = row;
    }

    private void Remove(string volumeId, string node)
    {
        _store.RemoveAttachment(volumeId, node);
        _rows.TryRemove((volumeId, node), out _);
    }

    private async Task<T> CallAgentAsync<T>(NodeRecord node, string action, VolumeRecord volume, IMessage request, CancellationToken cancellationToken)
        where T : IMessage
    {
        try
        {
            return await _agents.For(node.Name, node.Address).CallAsync<T>(request, new CallOptions { Timeout = _agentTimeout, CancellationToken = cancellationToken }).ConfigureAwait(false);
        }
        catch (RpcException e)
        {
            LogAgentFailed(_logger, action, volume.Id, node.Name, e.StatusCode, e.Status.Detail);
            var kind = e.StatusCode is StatusCode.FailedPrecondition or StatusCode.InvalidArgument or StatusCode.NotFound
                ? ControllerErrorKind.FailedPrecondition
                : ControllerErrorKind.Unavailable;
            throw new ControllerException(kind,
                $"Node {node.Name} did not {action} volume {volume.Id} ({e.StatusCode}: {e.Status.Detail}). " +
                (action == "activate" ? "The volume stays tagged for the node: retry the attach, or detach it." : "Retry; the volume stays where it is until the node confirms or is fenced."), e);
        }
    }

    private CommandHeader Header(string node) => new()
    {
        Epoch = new Epoch { Value = _startup.Epoch, ControllerId = _startup.ControllerId },
        RequestId = Guid.NewGuid().ToString("N"),
        NodeName = node,
    };

    private static LvRef LvRef(PoolRuntime pool, VolumeRecord volume) => new()
    {
        VgName = volume.VgName,
        LvName = volume.LvName,
        VolumeId = volume.Id,
        Lun = new LunAddress { Wwid = pool.Row.Wwid },
    };

    [LoggerMessage(3501, LogLevel.Information, "Volume {VolumeId} ({Name}) attached to node {Node} as {Device} (rescanned: {Rescanned})")]
    private static partial void LogAttached(ILogger logger, string volumeId, string name, string node, string device, bool rescanned);

    [LoggerMessage(3502, LogLevel.Information, "Volume {VolumeId} ({Name}) detached from node {Node}")]
    private static partial void LogDetached(ILogger logger, string volumeId, string name, string node);

    [LoggerMessage(3503, LogLevel.Warning, "Node {Node} could not {Action} volume {VolumeId}: {StatusCode} {Detail}")]
    private static partial void LogAgentFailed(ILogger logger, string action, string volumeId, string node, StatusCode statusCode, string detail);

    [LoggerMessage(3504, LogLevel.Warning, "Detaching volume {VolumeId} from FENCED node {Node} without its agent")]
    private static partial void LogDetachFenced(ILogger logger, string volumeId, string node);
}
