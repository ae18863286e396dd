using Microsoft.Extensions.Logging;
using SharedLvm.Contracts.V1;
using SharedLvm.Controller.Events;
using SharedLvm.Controller.Faults;
using SharedLvm.Controller.Pools;
using SharedLvm.Controller.State;
using SharedLvm.Os.Lvm;
using SharedLvm.Os.Processes;

namespace SharedLvm.Controller.Volumes;

public sealed record CreateVolumeCommand(string Pool, string Name, ulong SizeBytes, IReadOnlyDictionary<string, string> Labels);

public enum VolumeLifecycle
{
    Creating,
    Available,
    Attached,
    Copying,
    Deleting,
    Busy,
}

/// <summary>
/// Volume lifecycle on real LVM. Every write follows one protocol (invariant 4): journal the intent,
/// run lvm, update the model, close the journal entry, reply. A crash at any step is settled at the
/// next start by <see cref="ReconcileAsync"/>; a client's retry of the same request then gets the
/// right answer because identity is the name (create) or the controller-issued id (everything else).
/// </summary>
public sealed partial class VolumeService
{
    private readonly PoolRegistry _pools;
    private readonly ControllerStore _store;
    private readonly EventBus _events;
    private readonly FaultInjector _faults;
    private readonly ControllerOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<VolumeService> _logger;

    public VolumeService(PoolRegistry pools, ControllerStore store, EventBus events, FaultInjector faults, ControllerOptions options, TimeProvider time, ILogger<VolumeService> logger)
    {
        _pools = pools;
        _store = store;
        _events = events;
        _faults = faults;
        _options = options;
        _time = time;
        _logger = logger;
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
        return await CreateLvAsync(pool, "create", record,
            ct => pool.Lvm.LvCreateAsync(pool.VgName, record.LvName, size, record.CreationTags(), ct), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Records the intent of a clone and creates its target LV; the data copy runs on an agent (not yet).</summary>
    public async Task<VolumeRecord> CloneAsync(string sourceId, string name, IReadOnlyDictionary<string, string> labels, CancellationToken cancellationToken)
    {
        Validation.Id("source_volume_id", sourceId);
        Validation.VolumeName("name", name);
        Validation.Labels("labels", labels);
        var (pool, source) = Find(sourceId) ?? throw ControllerException.NotFound($"Source volume {sourceId} does not exist.");
        using var claim = pool.Catalog.Claim("clone", PoolCatalog.NameKey(name));
        if (pool.Catalog.GetByName(name) is { } existing)
        {
            return existing.Kind == VolumeKind.Clone && string.Equals(existing.SourceVolumeId, sourceId, StringComparison.Ordinal)
                ? existing
                : throw new ControllerException(ControllerErrorKind.AlreadyExists, $"Volume '{name}' already exists in pool {pool.Name} and is not a clone of {sourceId}.");
        }

        EnsureCapacity(pool, source.SizeBytes, newVolume: true);
        var record = new VolumeRecord(VolumeId.New(), name, pool.Name, pool.VgName, source.SizeBytes, VolumeKind.Clone, sourceId,
            labels, _time.GetUtcNow(), CopyPending: true, Owners: []);
        return await CreateLvAsync(pool, "clone", record,
            ct => pool.Lvm.LvCreateAsync(pool.VgName, record.LvName, record.SizeBytes, record.CreationTags(), ct), cancellationToken).ConfigureAwait(false);
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
        var (pool, source) = Find(sourceId) ?? throw ControllerException.NotFound($"Source volume {sourceId} does not exist.");
        using var claim = pool.Catalog.Claim("snapshot", PoolCatalog.NameKey(name), sourceId);
        if (pool.Catalog.GetByName(name) is { } existing)
        {
            return existing.Kind == VolumeKind.Snapshot && string.Equals(existing.SourceVolumeId, sourceId, StringComparison.Ordinal)
                ? existing
                : throw new ControllerException(ControllerErrorKind.AlreadyExists, $"Volume '{name}' already exists in pool {pool.Name} and is not a snapshot of {sourceId}.");
        }

        if (source.Kind == VolumeKind.Snapshot)
        {
            throw new ControllerException(ControllerErrorKind.FailedPrecondition, $"Volume {sourceId} is itself a snapshot; LVM COW snapshots can't be nested.");
        }

        if (source.Owners.Count > 0)
        {
            throw new ControllerException(ControllerErrorKind.FailedPrecondition,
                $"Volume {sourceId} is attached to {string.Join(", ", source.Owners)}; detach it before taking a snapshot.");
        }

        var extent = pool.Catalog.Capacity.ExtentSizeBytes;
        var cow = Validation.RoundUp(cowSizeBytes == 0 ? Math.Max(source.SizeBytes / 10, extent) : cowSizeBytes, extent);
        EnsureCapacity(pool, cow, newVolume: true);
        var record = new VolumeRecord(VolumeId.New(), name, pool.Name, pool.VgName, cow, VolumeKind.Snapshot, sourceId,
            labels, _time.GetUtcNow(), CopyPending: false, Owners: []);
        return await CreateLvAsync(pool, "snapshot", record,
            ct => pool.Lvm.LvSnapshotAsync(pool.VgName, source.LvName, record.LvName, cow, record.CreationTags(), ct), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Deleting a volume that does not exist succeeds (CSI).</summary>
    public async Task DeleteAsync(string id, CancellationToken cancellationToken)
    {
        Validation.Id("id", id);
        if (Find(id) is not var (pool, record))
        {
            return;
        }

        using var claim = pool.Catalog.Claim("delete", id);
        if (record.Owners.Count > 0)
        {
            throw new ControllerException(ControllerErrorKind.FailedPrecondition,
                $"Volume {id} is attached to {string.Join(", ", record.Owners)}; detach it first.");
        }

        var snapshots = pool.Catalog.Snapshot().Where(v => v.Kind == VolumeKind.Snapshot && string.Equals(v.SourceVolumeId, id, StringComparison.Ordinal)).ToArray();
        if (snapshots.Length > 0)
        {
            // lvremove of an origin would take its snapshots with it.
            throw new ControllerException(ControllerErrorKind.FailedPrecondition,
                $"Volume {id} has snapshots ({string.Join(", ", snapshots.Select(s => s.Id))}); delete them first.");
        }

        await pool.WriteAsync("delete", ct => JournaledAsync(pool, "delete", record.Id, record.Name, record.SizeBytes,
            lvm: c => RemoveLvAsync(pool, record.LvName, c),
            committed: () => pool.Catalog.Get(id) is null,
            apply: () =>
            {
                pool.Catalog.Remove(id);
                _events.Publish(EventKind.VolumeDeleted, id, $"Volume {record.Name} ({id}) deleted from pool {pool.Name}.");
                return true;
            },
            ct), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Grows a volume; a size at or below the current one returns it unchanged.</summary>
    public async Task<VolumeRecord> ExtendAsync(string id, ulong sizeBytes, CancellationToken cancellationToken)
    {
        Validation.Id("id", id);
        Validation.PositiveSize("size_bytes", sizeBytes);
        var (pool, record) = Find(id) ?? throw ControllerException.NotFound($"Volume {id} does not exist.");
        using var claim = pool.Catalog.Claim("extend", id);
        var size = Validation.RoundUp(sizeBytes, pool.Catalog.Capacity.ExtentSizeBytes);
        if (size <= record.SizeBytes)
        {
            return record;
        }

        EnsureCapacity(pool, size - record.SizeBytes, newVolume: false);
        var grown = record with { SizeBytes = size };
        return await pool.WriteAsync("extend", ct => JournaledAsync(pool, "extend", id, record.Name, size,
            lvm: c => pool.Lvm.LvExtendAsync(pool.VgName, record.LvName, size, c),
            committed: () => pool.Catalog.Get(id)?.SizeBytes >= size,
            apply: () => Changed(pool, grown, $"Volume {record.Name} ({id}) extended to {size} bytes."),
            ct), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Replaces the labels (LV tags: added and removed in one lvchange).</summary>
    public async Task<VolumeRecord> SetLabelsAsync(string id, IReadOnlyDictionary<string, string> labels, CancellationToken cancellationToken)
    {
        Validation.Id("id", id);
        Validation.Labels("labels", labels);
        var (pool, record) = Find(id) ?? throw ControllerException.NotFound($"Volume {id} does not exist.");
        using var claim = pool.Catalog.Claim("labels", id);
        var current = LvTags.LabelTags(record.Labels).ToHashSet(StringComparer.Ordinal);
        var wanted = LvTags.LabelTags(labels).ToHashSet(StringComparer.Ordinal);
        if (current.SetEquals(wanted))
        {
            return record;
        }

        var relabelled = record with { Labels = labels };
        return await pool.WriteAsync("labels", ct => JournaledAsync(pool, "labels", id, record.Name, record.SizeBytes,
            lvm: c => pool.Lvm.LvChangeTagsAsync(pool.VgName, record.LvName, wanted.Except(current), current.Except(wanted), c),
            committed: () => pool.Catalog.Get(id) is { } now && LvTags.LabelTags(now.Labels).ToHashSet(StringComparer.Ordinal).SetEquals(wanted),
            apply: () => Changed(pool, relabelled, $"Volume {record.Name} ({id}) labels replaced."),
            ct), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Adds or removes the owner tag "sharedlvm_owner_&lt;node&gt;", the LVM-level half of exclusive
    /// attach: an agent's volume_list lets it activate only LVs tagged for its node. Journaled like
    /// every write; the caller holds the volume's claim.
    /// </summary>
    public async Task<VolumeRecord> SetOwnerAsync(PoolRuntime pool, VolumeRecord record, string node, bool owns, CancellationToken cancellationToken)
    {
        if (record.Owners.Contains(node, StringComparer.Ordinal) == owns)
        {
            return record;
        }

        var kind = owns ? "attach" : "detach";
        var owners = owns ? [.. record.Owners, node] : record.Owners.Where(o => o != node).ToArray();
        var changed = record with { Owners = owners };
        var tag = LvTags.Owner(node);
        return await pool.WriteAsync(kind, ct => JournaledAsync(pool, kind, record.Id, record.Name, record.SizeBytes,
            lvm: c => pool.Lvm.LvChangeTagsAsync(pool.VgName, record.LvName, owns ? [tag] : [], owns ? [] : [tag], c),
            committed: () => pool.Catalog.Get(record.Id)?.Owners.Contains(node, StringComparer.Ordinal) == owns,
            apply: () => Changed(pool, changed, $"Volume {record.Name} ({record.Id}) {(owns ? "tagged for" : "untagged from")} node {node}."),
            ct), cancellationToken).ConfigureAwait(false);
    }

    public (PoolRuntime Pool, VolumeRecord Record)? Find(string id)
    {
        foreach (var pool in _pools.All)
        {
            if (pool.Catalog.Get(id) is { } record)
            {
                return (pool, record);
            }
        }

        return null;
    }

    public VolumeRecord Get(string id, string pool, string name)
    {
        if (!string.IsNullOrEmpty(id))
        {
            Validation.Id("id", id);
            return Find(id)?.Record ?? throw ControllerException.NotFound($"Volume {id} does not exist.");
        }

        if (string.IsNullOrEmpty(pool) || string.IsNullOrEmpty(name))
        {
            throw ControllerException.Invalid("Give either id, or pool and name.");
        }

        Validation.PoolName("pool", pool);
        Validation.VolumeName("name", name);
        return _pools.Get(pool).Catalog.GetByName(name) ?? throw ControllerException.NotFound($"Volume '{name}' does not exist in pool {pool}.");
    }

    public VolumeLifecycle StateOf(VolumeRecord record)
    {
        var catalog = _pools.TryGet(record.Pool, out var pool) ? pool.Catalog : null;
        var running = catalog?.InFlight(record.Id) ?? catalog?.InFlight(PoolCatalog.NameKey(record.Name));
        return running switch
        {
            "delete" => VolumeLifecycle.Deleting,
            "create" or "clone" or "snapshot" => VolumeLifecycle.Creating,
            not null => VolumeLifecycle.Busy,
            _ when record.CopyPending => VolumeLifecycle.Copying,
            _ when record.Owners.Count > 0 => VolumeLifecycle.Attached,
            _ => VolumeLifecycle.Available,
        };
    }

    /// <summary>Settles one journal entry a crash left pending, from the VG as it is now.</summary>
    public async Task<string> ReconcileAsync(PoolRuntime pool, OperationRow operation, CancellationToken cancellationToken)
    {
        var present = pool.Catalog.Get(operation.VolumeId) is not null;
        switch (operation.Kind)
        {
            case "create" or "clone" or "snapshot":
                if (present)
                {
                    LogCommittedNotAcknowledged(_logger, pool.Name, operation.Kind, operation.VolumeId, operation.Name);
                    return "committed before the crash, not acknowledged; kept (a retry by name returns it)";
                }

                return "not committed; nothing to undo";
            case "delete" when present:
                // The caller asked for it to go; finish the job rather than resurrect it.
                await RemoveLvAsync(pool, VolumeId.LvName(operation.VolumeId), cancellationToken).ConfigureAwait(false);
                pool.NoteOwnWrite();
                pool.Catalog.Remove(operation.VolumeId);
                return "rolled forward: LV removed";
            case "delete":
                return "committed before the crash";
            default:
                return "LV left as lvm committed it; the client's retry converges";
        }
    }

    private async Task<VolumeRecord> CreateLvAsync(PoolRuntime pool, string kind, VolumeRecord record, Func<CancellationToken, Task> lvm, CancellationToken cancellationToken) =>
        await pool.WriteAsync(kind, ct => JournaledAsync(pool, kind, record.Id, record.Name, record.SizeBytes,
            lvm,
            committed: () => pool.Catalog.Get(record.Id) is not null,
            apply: () => Changed(pool, record, $"Volume {record.Name} ({record.Id}) created in pool {pool.Name}, {record.SizeBytes} bytes."),
            ct), cancellationToken).ConfigureAwait(false);

    /// <summary>
    /// The write protocol, on the pool's writer. An lvm timeout has an unknown outcome (the command
    /// was killed and may have committed): reload the model and decide from the VG, never guess.
    /// </summary>
    private async Task<T> JournaledAsync<T>(
        PoolRuntime pool, string kind, string volumeId, string name, ulong sizeBytes,
        Func<CancellationToken, Task> lvm, Func<bool> committed, Func<T> apply, CancellationToken cancellationToken)
    {
        _faults.Hit(kind + ".before_journal");
        var journalId = _store.BeginOperation(kind, pool.Name, volumeId, name, sizeBytes);
        _faults.Hit(kind + ".after_journal");
        try
        {
            await _faults.During(kind + ".during_lvm", lvm(cancellationToken)).ConfigureAwait(false);
        }
        catch (ProcessTimeoutException e)
        {
            LogLvmTimedOut(_logger, pool.Name, kind, volumeId, e.Timeout.TotalSeconds);
            await pool.LoadAsync(cancellationToken).ConfigureAwait(false);
            if (!committed())
            {
                _store.FinishOperation(journalId, "lvm timed out; not committed");
                throw new ControllerException(ControllerErrorKind.Unavailable,
                    $"lvm {kind} of volume {volumeId} timed out after {e.Timeout.TotalSeconds:0} s and did not commit; retry.", e);
            }
        }
        catch (LvmException e)
        {
            _store.FinishOperation(journalId, "failed: " + LvmException.Summarize(e.StandardError));
            LogLvmFailed(_logger, pool.Name, kind, volumeId, name, e.Message);
            throw;
        }

        _faults.Hit(kind + ".after_lvm");
        pool.NoteOwnWrite();
        var result = apply();
        _store.FinishOperation(journalId, "done");
        _faults.Hit(kind + ".before_reply");
        LogWritten(_logger, pool.Name, kind, volumeId, name);
        return result;
    }

    private VolumeRecord Changed(PoolRuntime pool, VolumeRecord record, string message)
    {
        pool.Catalog.Put(record);
        _events.Publish(EventKind.VolumeChanged, record.Id, message);
        return record;
    }

    private static async Task RemoveLvAsync(PoolRuntime pool, string lvName, CancellationToken cancellationToken)
    {
        try
        {
            await pool.Lvm.LvRemoveAsync(pool.VgName, lvName, cancellationToken).ConfigureAwait(false);
        }
        catch (LvmException e) when (e.Kind == LvmErrorKind.NotFound)
        {
            // Already gone: a retried delete converges.
        }
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

    [LoggerMessage(3201, LogLevel.Information, "Pool {Pool}: {Operation} of volume {VolumeId} ({Name}) committed")]
    private static partial void LogWritten(ILogger logger, string pool, string operation, string volumeId, string name);

    [LoggerMessage(3202, LogLevel.Warning, "Pool {Pool}: {Operation} of volume {VolumeId} ({Name}) failed: {Error}")]
    private static partial void LogLvmFailed(ILogger logger, string pool, string operation, string volumeId, string name, string error);

    [LoggerMessage(3203, LogLevel.Error, "Pool {Pool}: lvm {Operation} of volume {VolumeId} timed out after {TimeoutSeconds} s; reconciling from the VG")]
    private static partial void LogLvmTimedOut(ILogger logger, string pool, string operation, string volumeId, double timeoutSeconds);

    [LoggerMessage(3204, LogLevel.Warning, "Pool {Pool}: {Operation} of volume {VolumeId} ({Name}) had committed before the crash without an acknowledgement")]
    private static partial void LogCommittedNotAcknowledged(ILogger logger, string pool, string operation, string volumeId, string name);
}
