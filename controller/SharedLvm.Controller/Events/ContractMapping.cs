using Google.Protobuf.WellKnownTypes;
using SharedLvm.Contracts.V1;
using SharedLvm.Controller.Catalog;
using DomainKind = SharedLvm.Controller.Catalog.VolumeKind;
using WireKind = SharedLvm.Contracts.V1.VolumeKind;

namespace SharedLvm.Controller.Events;

/// <summary>The catalogue's records as v1 messages: what replies and events carry.</summary>
public static class ContractMapping
{
    public static Volume ToContract(this VolumeRecord record, VolumeLifecycle state, IReadOnlyList<AttachmentRecord> attachments, DataWork? work = null)
    {
        var volume = new Volume
        {
            Id = record.Id,
            Name = record.Name,
            Pool = record.Pool,
            SizeBytes = record.SizeBytes,
            Kind = record.Kind switch
            {
                DomainKind.Snapshot => WireKind.Snapshot,
                DomainKind.Clone => WireKind.Clone,
                _ => WireKind.Standard,
            },
            State = ToContract(state),
            SourceVolumeId = record.SourceVolumeId,
            VgName = record.VgName,
            LvName = record.LvName,
            Timestamps = new Timestamps(),
            Message = work?.Status ?? (record.CopyPending ? "waiting for a node to copy the data"
                : record.WipePending ? "waiting for a node to wipe the extents" : string.Empty),
        };
        if (work?.Progress is { } progress)
        {
            volume.Progress = progress;
        }

        if (record.CreatedAt is { } created)
        {
            volume.Timestamps.Created = Timestamp.FromDateTimeOffset(created);
        }

        foreach (var (key, value) in record.Labels)
        {
            volume.Labels[key] = value;
        }

        volume.Attachments.AddRange(attachments.Select(ToContract));
        return volume;
    }

    /// <summary>The volume as its catalogue shows it now.</summary>
    public static Volume ToContract(this VolumeRecord record, PoolCatalog catalog) =>
        record.ToContract(catalog.StateOf(record), catalog.Attachments(record), catalog.Work(record.Id));

    public static VolumeState ToContract(VolumeLifecycle lifecycle) => lifecycle switch
    {
        VolumeLifecycle.Creating => VolumeState.Creating,
        VolumeLifecycle.Deleting => VolumeState.Deleting,
        VolumeLifecycle.Copying => VolumeState.Copying,
        VolumeLifecycle.Attaching => VolumeState.Attaching,
        VolumeLifecycle.Attached => VolumeState.Attached,
        VolumeLifecycle.Detaching => VolumeState.Detaching,
        _ => VolumeState.Available,
    };

    public static VolumeLifecycle? FromContract(VolumeState state) => state switch
    {
        VolumeState.Unspecified => null,
        VolumeState.Creating => VolumeLifecycle.Creating,
        VolumeState.Deleting => VolumeLifecycle.Deleting,
        VolumeState.Copying => VolumeLifecycle.Copying,
        VolumeState.Attaching => VolumeLifecycle.Attaching,
        VolumeState.Attached => VolumeLifecycle.Attached,
        VolumeState.Detaching => VolumeLifecycle.Detaching,
        VolumeState.Available => VolumeLifecycle.Available,
        _ => throw new ControllerException(ControllerErrorKind.InvalidArgument, $"state {state} is not a state volumes are listed by."),
    };

    public static Attachment ToContract(this AttachmentRecord record)
    {
        var attachment = new Attachment
        {
            VolumeId = record.VolumeId,
            Node = record.Node,
            State = record.Phase switch
            {
                AttachmentPhase.Attached => AttachmentState.Attached,
                AttachmentPhase.Detaching => AttachmentState.Detaching,
                _ => AttachmentState.Attaching,
            },
            Since = Timestamp.FromDateTimeOffset(record.Since),
        };
        if (record.Device is { } device)
        {
            attachment.Device = device.ToContract();
        }

        return attachment;
    }

    public static DevicePath ToContract(this AttachedDevice device) => new()
    {
        Path = device.Path, DmName = device.DmName, Major = device.Major, Minor = device.Minor, SizeBytes = device.SizeBytes,
    };

    public static AttachedDevice FromContract(DevicePath device) => new(device.Path, device.DmName, device.Major, device.Minor, device.SizeBytes);

    public static Node ToContract(this NodeRecord record, IEnumerable<string> attachedVolumeIds)
    {
        var node = new Node
        {
            Name = record.Name,
            Address = record.Address,
            State = record.State switch
            {
                NodeLiveness.Ready => NodeState.Ready,
                NodeLiveness.Fenced => NodeState.Fenced,
                NodeLiveness.Draining => NodeState.Draining,
                _ => NodeState.Unreachable,
            },
            AgentVersion = record.AgentVersion,
            Health = record.Health,
        };
        if (record.LastHeartbeat is { } last)
        {
            node.LastHeartbeat = Timestamp.FromDateTimeOffset(last);
        }

        node.ReservationKey = record.Key?.Value ?? 0;
        if (record.Fence is { } fence)
        {
            node.FenceKind = fence.Method == FenceMethod.Storage ? FenceKind.Storage : FenceKind.Declared;
            node.FenceReason = fence.Reason;
            node.FencedAt = Timestamp.FromDateTimeOffset(fence.At);
        }

        node.VisibleWwids.AddRange(record.VisibleWwids);
        node.AttachedVolumeIds.AddRange(attachedVolumeIds);
        return node;
    }
}
