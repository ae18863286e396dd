using Google.Protobuf.WellKnownTypes;
using SharedLvm.Contracts.V1;
using SharedLvm.Controller.Pools;
using SharedLvm.Controller.Volumes;
using DomainKind = SharedLvm.Controller.Volumes.VolumeKind;
using WireKind = SharedLvm.Contracts.V1.VolumeKind;

namespace SharedLvm.Controller.Api;

/// <summary>Domain records to v1 messages.</summary>
internal static class ContractMapping
{
    public static Volume ToContract(this VolumeRecord record, VolumeLifecycle lifecycle)
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
            State = ToContract(lifecycle),
            SourceVolumeId = record.SourceVolumeId,
            VgName = record.VgName,
            LvName = record.LvName,
            Timestamps = new Timestamps(),
            Message = record.CopyPending ? "data copy from the source has not run yet" : string.Empty,
        };
        if (record.CreatedAt is { } created)
        {
            volume.Timestamps.Created = Timestamp.FromDateTimeOffset(created);
        }

        foreach (var (key, value) in record.Labels)
        {
            volume.Labels[key] = value;
        }

        return volume;
    }

    /// <summary>An extend or relabel in flight leaves the volume usable: it stays AVAILABLE.</summary>
    public static VolumeState ToContract(VolumeLifecycle lifecycle) => lifecycle switch
    {
        VolumeLifecycle.Creating => VolumeState.Creating,
        VolumeLifecycle.Deleting => VolumeState.Deleting,
        VolumeLifecycle.Copying => VolumeState.Copying,
        VolumeLifecycle.Attached => VolumeState.Attached,
        _ => VolumeState.Available,
    };

    public static Pool ToContract(this PoolRuntime runtime, double warnFreeFraction)
    {
        var capacity = runtime.Catalog.Capacity;
        var pool = new Pool
        {
            Name = runtime.Name,
            Wwid = runtime.Row.Wwid,
            DevicePath = runtime.Row.DevicePath,
            VgUuid = runtime.Catalog.VgUuid,
            SizeBytes = capacity.SizeBytes,
            FreeBytes = capacity.FreeBytes,
            ExtentSizeBytes = capacity.ExtentSizeBytes,
            VolumeCount = (uint)runtime.Catalog.Count,
            MetadataSizeBytes = capacity.MetadataSizeBytes,
            MetadataFreeBytes = capacity.MetadataFreeBytes,
            Seqno = capacity.Seqno,
            Health = HealthState.Ok,
        };
        if (capacity.MetadataFreeFraction < warnFreeFraction)
        {
            pool.Health = HealthState.Degraded;
            pool.Warnings.Add(
                $"metadata area {100 * (1 - capacity.MetadataFreeFraction):0}% used ({capacity.MetadataFreeBytes} of {capacity.MetadataUsableBytes} bytes free); new volumes are refused when it is full");
        }

        if (runtime.ForeignWrites > 0)
        {
            pool.Health = HealthState.Failed;
            pool.Warnings.Add($"{runtime.ForeignWrites} metadata write(s) by another host detected: only the controller may write this VG");
        }

        return pool;
    }
}
