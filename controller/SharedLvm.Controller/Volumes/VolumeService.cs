using SharedLvm.Contracts.Conventions;
using SharedLvm.Controller.Catalog;
using SharedLvm.Controller.Data;
using SharedLvm.Controller.Events;
using SharedLvm.Controller.Pools;
using SharedLvm.Controller.Writes;

namespace SharedLvm.Controller.Volumes;

public sealed record CreateVolumeCommand(string Pool, string Name, ulong SizeBytes, IReadOnlyDictionary<string, string> Labels);

/// <summary>
/// Volume lifecycle: input checks, claims (a second operation on a volume in flight is ABORTED, as
/// CSI says), capacity, and the change each verb makes, written by the pool's writer. Identity is
/// the name (create) or the controller-issued id (everything else), so a client's retry of the same
/// request gets the right answer after any crash.
/// </summary>
public sealed class VolumeService
{
    private readonly PoolRegistry _pools;
    private readonly EventBus _events;
    private readonly DataJobs _dataJobs;
    private readonly ControllerOptions _options;
    private readonly TimeProvider _time;
    private readonly SnapshotSupport _snapshots;

    public VolumeService(PoolRegistry pools, EventBus events, DataJobs dataJobs, ControllerOptions options, TimeProvider time, SnapshotSupport snapshots)
    {
        _pools = pools;
        _snapshots = snapshots;
        _events = events;
        _dataJobs = dataJobs;
        _options = options;
        _time = time;
    }

    public async Task<VolumeRecord> CreateAsync(CreateVolumeCommand command, CancellationToken cancellationToken)
    {
        Validation.PoolName("pool", command.Pool);
        Validation.VolumeName("name", command.Name);
        Validation.PositiveSize("size_bytes", command.SizeBytes);
        Validation.Labels("labels", command.Labels);
        var pool = _pools.Get(command.Pool);
        using var claim = pool.Catalog.Claim("create", PoolCatalog.NameKey(command.Name));
        var size = Validation.RoundUp(command.SizeBytes, pool.Catalog.Capacity.ExtentSizeBytes);
        if (pool.Catalog.GetByName(command.Name) is { } existing)
        {
            return SameRequest(existing, size);
        }

        EnsureCapacity(pool, size, newVolume: true);
        var record = new VolumeRecord(VolumeId.New(), command.Name, pool.Name, pool.VgName, size, VolumeKind.Standard, string.Empty,
            command.Labels, _time.GetUtcNow(), CopyPending: false, Owners: []);
        return await WriteAsync(pool, new CreateLv("create", record), $"Volume {record.Name} ({record.Id}) created in pool {pool.Name}, {size} bytes.", cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// A new volume of the source's size whose data an agent copies (<see cref="DataJobs"/>): the clone
    /// is COPYING, with progress, until the last byte is on it, then AVAILABLE. The source must be a
    /// detached plain volume (a copy of a volume in use would be torn) or a snapshot, whose origin may
    /// be attached and written meanwhile: the agent reads the snapshot's data through its COW store's
    /// exception table, which the kernel commits before it lets an origin write through.
    /// </summary>
    public async Task<VolumeRecord> CloneAsync(string sourceId, string name, IReadOnlyDictionary<string, string> labels, CancellationToken cancellationToken)
    {
        Validation.Id("source_volume_id", sourceId);
        Validation.VolumeName("name", name);
        Validation.Labels("labels", labels);
        var (pool, source) = _pools.Find(sourceId) ?? throw ControllerException.NotFound($"Source volume {sourceId} does not exist.");
        using var claim = pool.Catalog.Claim("clone", PoolCatalog.NameKey(name), sourceId);
        if (pool.Catalog.GetByName(name) is { } existing)
        {
            return existing.Kind == VolumeKind.Clone && string.Equals(existing.SourceVolumeId, sourceId, StringComparison.Ordinal)
                ? existing
                : throw new ControllerException(ControllerErrorKind.AlreadyExists, $"Volume '{name}' already exists in pool {pool.Name} and is not a clone of {sourceId}.");
        }

        source = pool.Catalog.Get(sourceId) ?? throw ControllerException.NotFound($"Source volume {sourceId} does not exist.");
        var size = CloneSize(pool, source);
        EnsureCapacity(pool, size, newVolume: true);
        var record = new VolumeRecord(VolumeId.New(), name, pool.Name, pool.VgName, size, VolumeKind.Clone, sourceId,
            labels, _time.GetUtcNow(), CopyPending: true, Owners: []);
        var clone = await WriteAsync(pool, new CreateLv("clone", record), $"Volume {name} ({record.Id}) created in pool {pool.Name} as a clone of {sourceId}; copying its data.", cancellationToken).ConfigureAwait(false);
        _dataJobs.Poke();
        return clone;
    }

    /// <summary>
    /// The clone's size after checking the source can be copied: a plain volume's size, or a
    /// snapshot's origin's (a snapshot's own size is its COW store's).
    /// </summary>
    private static ulong CloneSize(PoolRuntime pool, VolumeRecord source)
    {
        var origin = source.Kind == VolumeKind.Snapshot ? pool.Catalog.Get(source.SourceVolumeId) : null;
        var reason = source switch
        {
            { WipePending: true } => "it is being deleted",
            { CopyPending: true } => "it is a clone whose own copy has not finished",
            { Kind: VolumeKind.Snapshot, Merging: true } => "it is being restored into its origin",
            { Kind: VolumeKind.Snapshot } when origin is null => $"its origin {source.SourceVolumeId} is not in pool {pool.Name}",
            { Kind: VolumeKind.Snapshot } when pool.Catalog.RestoringInto(origin) is not null => $"a restore into its origin {origin.Id} has not finished",
            { Kind: not VolumeKind.Snapshot, Owners.Count: > 0 } =>
                $"it is attached to {string.Join(", ", source.Owners)} and a copy of a volume in use would be torn; detach it first (a snapshot of it, taken while detached, can be cloned while it is attached)",
            _ => null,
        };
        if (reason is not null)
        {
            throw new ControllerException(ControllerErrorKind.FailedPrecondition, $"Volume {source.Id} can't be cloned: {reason}.");
        }

        return origin?.SizeBytes ?? source.SizeBytes;
    }

    /// <summary>
    /// A COW snapshot of a detached volume. An attached origin is refused: its active table on the
    /// owner node would not know about a snapshot created from here.
    /// </summary>
    public async Task<VolumeRecord> SnapshotAsync(string sourceId, string name, ulong cowSizeBytes, IReadOnlyDictionary<string, string> labels, CancellationToken cancellationToken)
    {
        Validation.Id("source_volume_id", sourceId);
        Validation.VolumeName("name", name);
        Validation.Labels("labels", labels);
        var (pool, source) = _pools.Find(sourceId) ?? throw ControllerException.NotFound($"Source volume {sourceId} does not exist.");
        using var claim = pool.Catalog.Claim("snapshot", PoolCatalog.NameKey(name), sourceId);
        if (pool.Catalog.GetByName(name) is { } existing)
        {
            return existing.Kind == VolumeKind.Snapshot && string.Equals(existing.SourceVolumeId, sourceId, StringComparison.Ordinal)
                ? existing
                : throw new ControllerException(ControllerErrorKind.AlreadyExists, $"Volume '{name}' already exists in pool {pool.Name} and is not a snapshot of {sourceId}.");
        }

        source = pool.Catalog.Get(sourceId) ?? throw ControllerException.NotFound($"Source volume {sourceId} does not exist.");
        var reason = source switch
        {
            { Kind: VolumeKind.Snapshot } => "it is itself a snapshot, and LVM COW snapshots can't be nested",
            { WipePending: true } => "it is being deleted",
            { CopyPending: true } => "it is a clone whose own copy has not finished",
            { Owners.Count: > 0 } => $"it is attached to {string.Join(", ", source.Owners)}; detach it first",
            _ when pool.Catalog.RestoringInto(source) is { } restoring => $"snapshot {restoring.Id} is being restored into it",
            _ => null,
        };
        if (reason is not null)
        {
            throw new ControllerException(ControllerErrorKind.FailedPrecondition, $"Volume {sourceId} can't be snapshotted: {reason}.");
        }

        RequireSnapshots("take a snapshot");

        var extent = pool.Catalog.Capacity.ExtentSizeBytes;
        var cow = Validation.RoundUp(cowSizeBytes == 0 ? Math.Max(source.SizeBytes / 10, extent) : cowSizeBytes, extent);
        EnsureCapacity(pool, cow, newVolume: true);
        var record = new VolumeRecord(VolumeId.New(), name, pool.Name, pool.VgName, cow, VolumeKind.Snapshot, sourceId,
            labels, _time.GetUtcNow(), CopyPending: false, Owners: [], IsCowStore: true);
        return await WriteAsync(pool, new CreateSnapshotLv(record, source.LvName), $"Snapshot {name} ({record.Id}) of {sourceId} created in pool {pool.Name}.", cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Rolls the snapshot's origin back to the snapshot: lvm merges the COW store into the origin on
    /// the controller host (the origin is active there only during the merge) and removes the
    /// snapshot. Both must be detached. The pool's other writes wait for the merge: it runs in the
    /// writer, which is what keeps the final metadata commit lvm makes from being a foreign write.
    /// </summary>
    public async Task<VolumeRecord> RestoreAsync(string snapshotId, CancellationToken cancellationToken)
    {
        Validation.Id("snapshot_id", snapshotId);
        RequireSnapshots("restore a snapshot");
        var (pool, snapshot) = _pools.Find(snapshotId) ?? throw ControllerException.NotFound($"Snapshot {snapshotId} does not exist (a finished restore consumes it).");
        if (snapshot.Kind != VolumeKind.Snapshot || !snapshot.IsCowStore)
        {
            throw new ControllerException(ControllerErrorKind.FailedPrecondition, $"Volume {snapshotId} is not a snapshot; only a snapshot can be restored.");
        }

        using var claim = pool.Catalog.Claim("restore", snapshotId, snapshot.SourceVolumeId);
        snapshot = pool.Catalog.Get(snapshotId) ?? throw ControllerException.NotFound($"Snapshot {snapshotId} does not exist (a finished restore consumes it).");
        var origin = pool.Catalog.Get(snapshot.SourceVolumeId)
            ?? throw new ControllerException(ControllerErrorKind.FailedPrecondition, $"Snapshot {snapshotId}'s origin {snapshot.SourceVolumeId} is not in pool {pool.Name}.");
        var reason = (snapshot, origin) switch
        {
            ({ WipePending: true }, _) => $"snapshot {snapshotId} is being deleted",
            _ when pool.Catalog.Snapshot().FirstOrDefault(v => v.CopyPending && !v.WipePending && string.Equals(v.SourceVolumeId, snapshotId, StringComparison.Ordinal)) is { } clone =>
                $"clone {clone.Id} is still copying from it; wait for the copy or delete the clone",
            (_, { Owners.Count: > 0 }) => $"its origin {origin.Id} is attached to {string.Join(", ", origin.Owners)}; detach it first",
            _ => null,
        };
        if (reason is not null)
        {
            throw new ControllerException(ControllerErrorKind.FailedPrecondition, $"Snapshot {snapshotId} can't be restored: {reason}.");
        }

        // The merge copies back at most the COW store's size: give it the lvm timeout plus that at 10 MiB/s.
        var mergeTimeout = _options.LvmTimeout + TimeSpan.FromSeconds(snapshot.SizeBytes / (10.0 * 1024 * 1024));
        try
        {
            var restored = await pool.Writer.WriteAsync(new MergeSnapshotLv(origin, snapshot, mergeTimeout), cancellationToken).ConfigureAwait(false);
            _events.Publish(Contracts.V1.EventKind.VolumeDeleted, snapshotId, $"Snapshot {snapshot.Name} ({snapshotId}) merged into {origin.Id} and removed.");
            _events.VolumeChanged(pool.Catalog, restored, $"Volume {origin.Name} ({origin.Id}) restored from snapshot {snapshot.Name} ({snapshotId}).");
            return restored;
        }
        catch
        {
            // lvm may have recorded the merge before failing: until a restore finishes (or the VG is
            // reloaded and says otherwise), nothing may attach the origin and merge it elsewhere.
            if (pool.Catalog.Get(snapshotId) is { } left)
            {
                pool.Catalog.Put(left with { Merging = true });
            }

            throw;
        }
    }

    private void RequireSnapshots(string verb)
    {
        if (_snapshots.UnavailableReason is { } why)
        {
            throw new ControllerException(ControllerErrorKind.FailedPrecondition, $"This controller can't {verb}: {why}.");
        }
    }

    /// <summary>
    /// Deleting a volume that does not exist succeeds (CSI). Under the pool's wipe policy (zero by
    /// default) the LV is marked for wiping and stays, DELETING, until an agent has zeroed its extents;
    /// <see cref="DataJobs"/> then removes it. A crash anywhere leaves either the mark (the wipe runs
    /// again) or no LV: never an LV removed unwiped.
    /// </summary>
    public async Task DeleteAsync(string id, CancellationToken cancellationToken)
    {
        Validation.Id("id", id);
        if (_pools.Find(id) is not var (pool, record))
        {
            return;
        }

        using var claim = pool.Catalog.Claim("delete", id);
        record = pool.Catalog.Get(id);
        if (record is null || record.WipePending)
        {
            return;
        }

        CheckDeletable(pool, record);
        if (pool.Row.WipeOnDelete == WipeOnDelete.None)
        {
            await pool.Writer.WriteAsync(new RemoveLv(record), cancellationToken).ConfigureAwait(false);
            _events.Publish(Contracts.V1.EventKind.VolumeDeleted, id, $"Volume {record.Name} ({id}) deleted from pool {pool.Name} (wipe_on_delete none).");
            return;
        }

        if (record.CopyPending)
        {
            // Its copy stops first: the wipe must not race a copy still writing the same extents.
            await _dataJobs.CancelCopyAsync(id, "the clone is being deleted").ConfigureAwait(false);
        }

        if (record.IsCowStore)
        {
            // A snapshot's COW store holds the origin's old chunks and is no device of its own to
            // zero: split from the origin, it is a plain LV over exactly those extents, wiped like
            // any other. A crash after the split leaves a plain LV the retried delete wipes.
            record = await pool.Writer.WriteAsync(new SplitSnapshotLv(record with { IsCowStore = false }), cancellationToken).ConfigureAwait(false);
        }

        var marked = await pool.Writer.WriteAsync(new RetagLv("mark_deleted", record, record with { WipePending = true }), cancellationToken).ConfigureAwait(false);
        _events.VolumeChanged(pool.Catalog, marked, $"Volume {record.Name} ({id}) is being deleted: its extents are wiped ({pool.Row.WipeOnDelete.ToString().ToLowerInvariant()}) before the LV is removed.");
        _dataJobs.Poke();
    }

    private static void CheckDeletable(PoolRuntime pool, VolumeRecord record)
    {
        if (record.Owners.Count > 0)
        {
            throw new ControllerException(ControllerErrorKind.FailedPrecondition,
                $"Volume {record.Id} is attached to {string.Join(", ", record.Owners)}; detach it first.");
        }

        if ((record.Merging ? record : pool.Catalog.RestoringInto(record)) is { } restoring)
        {
            throw new ControllerException(ControllerErrorKind.FailedPrecondition,
                $"A restore from snapshot {restoring.Id} has not finished; run it again (slvm volume restore {restoring.Id}) before deleting.");
        }

        var dependents = pool.Catalog.Snapshot().Where(v => string.Equals(v.SourceVolumeId, record.Id, StringComparison.Ordinal)).ToArray();
        if (dependents.Any(v => v.Kind == VolumeKind.Snapshot))
        {
            // lvremove of an origin would take its snapshots with it.
            throw new ControllerException(ControllerErrorKind.FailedPrecondition,
                $"Volume {record.Id} has snapshots ({string.Join(", ", dependents.Where(v => v.Kind == VolumeKind.Snapshot).Select(s => s.Id))}); delete them first.");
        }

        if (dependents.FirstOrDefault(v => v.CopyPending && !v.WipePending) is { } clone)
        {
            throw new ControllerException(ControllerErrorKind.FailedPrecondition,
                $"Volume {record.Id} is the source of clone {clone.Id}, whose copy has not finished; delete the clone or wait for it.");
        }

        if (record.Kind == VolumeKind.Snapshot && pool.Catalog.Get(record.SourceVolumeId) is { Owners.Count: > 0 } origin)
        {
            throw new ControllerException(ControllerErrorKind.FailedPrecondition,
                $"Snapshot {record.Id} belongs to volume {origin.Id}, attached to {string.Join(", ", origin.Owners)}: its COW store is in use there; detach the origin first.");
        }
    }

    /// <summary>Grows a volume; a size at or below the current one returns it unchanged.</summary>
    public async Task<VolumeRecord> ExtendAsync(string id, ulong sizeBytes, CancellationToken cancellationToken)
    {
        Validation.Id("id", id);
        Validation.PositiveSize("size_bytes", sizeBytes);
        var (pool, record) = _pools.Find(id) ?? throw ControllerException.NotFound($"Volume {id} does not exist.");
        using var claim = pool.Catalog.Claim("extend", id);
        var size = Validation.RoundUp(sizeBytes, pool.Catalog.Capacity.ExtentSizeBytes);
        if (size <= record.SizeBytes)
        {
            return record;
        }

        EnsureCapacity(pool, size - record.SizeBytes, newVolume: false);
        return await WriteAsync(pool, new ExtendLv(record with { SizeBytes = size }), $"Volume {record.Name} ({id}) extended to {size} bytes.", cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Replaces the labels (LV tags: added and removed in one lvchange).</summary>
    public async Task<VolumeRecord> SetLabelsAsync(string id, IReadOnlyDictionary<string, string> labels, CancellationToken cancellationToken)
    {
        Validation.Id("id", id);
        Validation.Labels("labels", labels);
        var (pool, record) = _pools.Find(id) ?? throw ControllerException.NotFound($"Volume {id} does not exist.");
        using var claim = pool.Catalog.Claim("labels", id);
        var change = new RetagLv("labels", record, record with { Labels = labels });
        return change.IsEmpty
            ? record
            : await WriteAsync(pool, change, $"Volume {record.Name} ({id}) labels replaced.", cancellationToken).ConfigureAwait(false);
    }

    public VolumeRecord Get(string id, string pool, string name)
    {
        if (!string.IsNullOrEmpty(id))
        {
            Validation.Id("id", id);
            return _pools.Find(id)?.Record ?? throw ControllerException.NotFound($"Volume {id} does not exist.");
        }

        if (string.IsNullOrEmpty(pool) || string.IsNullOrEmpty(name))
        {
            throw ControllerException.Invalid("Give either id, or pool and name.");
        }

        Validation.PoolName("pool", pool);
        Validation.VolumeName("name", name);
        return _pools.Get(pool).Catalog.GetByName(name) ?? throw ControllerException.NotFound($"Volume '{name}' does not exist in pool {pool}.");
    }

    private async Task<VolumeRecord> WriteAsync(PoolRuntime pool, MetadataChange change, string message, CancellationToken cancellationToken)
    {
        var record = await pool.Writer.WriteAsync(change, cancellationToken).ConfigureAwait(false);
        _events.VolumeChanged(pool.Catalog, record, message);
        return record;
    }

    private static VolumeRecord SameRequest(VolumeRecord existing, ulong size) =>
        existing.SizeBytes == size && existing.Kind == VolumeKind.Standard
            ? existing
            : throw new ControllerException(ControllerErrorKind.AlreadyExists,
                $"Volume '{existing.Name}' already exists in pool {existing.Pool} as {existing.Id} with {existing.SizeBytes} bytes; {size} bytes were requested.");

    private void EnsureCapacity(PoolRuntime pool, ulong bytes, bool newVolume)
    {
        var capacity = pool.Catalog.Capacity;
        if (bytes > capacity.FreeBytes)
        {
            throw new ControllerException(ControllerErrorKind.ResourceExhausted,
                $"Pool {pool.Name} has {capacity.FreeBytes} bytes ({capacity.FreeBytes / (1024.0 * 1024 * 1024):0.##} GiB) free; {bytes} bytes ({bytes / (1024.0 * 1024 * 1024):0.##} GiB) were requested.");
        }

        if (newVolume && capacity.MetadataFreeBytes < _options.MetadataReserveBytes)
        {
            throw new ControllerException(ControllerErrorKind.ResourceExhausted,
                $"Pool {pool.Name}: the VG metadata area is full ({capacity.MetadataFreeBytes} of {capacity.MetadataUsableBytes} bytes free, " +
                $"{_options.MetadataReserveBytes} reserved). LVM would fail with 'exceeds maximum metadata size'; the area can't be enlarged after pvcreate, so create volumes in another pool.");
        }
    }
}
