using SharedLvm.Os.Lvm;

namespace SharedLvm.Controller.Catalog;

/// <summary>
/// The controller's in-memory model of one pool. Reads (get, list, capacity) are served from here
/// and never run lvm: VDSM's LV cache took a 1,000-disk listing from 1,051 s to 39 s. The model is
/// loaded from one fullreport and then kept current by the writes the controller itself makes.
/// </summary>
public sealed class PoolCatalog
{
    private readonly object _gate = new();
    private readonly SortedDictionary<string, VolumeRecord> _byId = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _idByName = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _inFlight = new(StringComparer.Ordinal);
    private readonly Dictionary<(string VolumeId, string Node), AttachmentRecord> _attachments = [];
    private readonly Dictionary<string, DataWork> _dataWork = new(StringComparer.Ordinal);
    private PoolCapacity _capacity;

    public PoolCatalog(string pool)
    {
        Pool = pool;
    }

    public string Pool { get; }

    public string VgUuid { get; private set; } = string.Empty;

    public PoolCapacity Capacity
    {
        get
        {
            lock (_gate)
            {
                return _capacity;
            }
        }
    }

    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _byId.Count;
            }
        }
    }

    /// <summary>
    /// Replaces the model with what a fullreport says, and the attachments' progress with what the
    /// controller recorded (only for owners the LV's tags still name).
    /// </summary>
    public void Load(FullReport report, IEnumerable<AttachmentRecord> attachments)
    {
        lock (_gate)
        {
            _byId.Clear();
            _idByName.Clear();
            foreach (var lv in report.LogicalVolumes)
            {
                if (VolumeRecord.FromLv(Pool, lv) is { } record)
                {
                    _byId[record.Id] = record;
                    _idByName[record.Name] = record.Id;
                }
            }

            // The state directory holds every pool's: this pool's volumes only.
            _attachments.Clear();
            foreach (var attachment in attachments.Where(a => _byId.ContainsKey(a.VolumeId)))
            {
                _attachments[(attachment.VolumeId, attachment.Node)] = attachment;
            }

            // The owner tag is the LU's record of an attachment; the phase and device are this
            // controller's cache. A successor on an empty state directory (or one from before the
            // attach) takes the tag's word: ATTACHED, device unknown until the next (idempotent)
            // attach asks the node, rather than AVAILABLE for a volume a node may be writing.
            foreach (var record in _byId.Values)
            {
                foreach (var owner in record.Owners.Where(o => !_attachments.ContainsKey((record.Id, o))))
                {
                    _attachments[(record.Id, owner)] = new AttachmentRecord(record.Id, owner, AttachmentPhase.Attached, null, DateTimeOffset.UtcNow);
                }
            }

            var vg = report.VolumeGroup;
            VgUuid = vg.Uuid;
            _capacity = new PoolCapacity(vg.SizeBytes, vg.FreeBytes, vg.ExtentSizeBytes, vg.Seqno, vg.MetadataAreaSizeBytes, vg.MetadataAreaFreeBytes, vg.LvCount);
        }
    }

    public VolumeRecord? Get(string id)
    {
        lock (_gate)
        {
            return _byId.GetValueOrDefault(id);
        }
    }

    public VolumeRecord? GetByName(string name)
    {
        lock (_gate)
        {
            return _idByName.TryGetValue(name, out var id) ? _byId[id] : null;
        }
    }

    /// <summary>A consistent copy, ordered by id.</summary>
    public VolumeRecord[] Snapshot()
    {
        lock (_gate)
        {
            return [.. _byId.Values];
        }
    }

    /// <summary>
    /// The volume's attachments: one per owner tag, with the progress the controller recorded. A tag
    /// without a record (a crash between the two) is ATTACHING: unknown until the node confirms.
    /// </summary>
    public IReadOnlyList<AttachmentRecord> Attachments(VolumeRecord volume)
    {
        lock (_gate)
        {
            return volume.Owners.Select(node => _attachments.TryGetValue((volume.Id, node), out var known)
                    ? known
                    : new AttachmentRecord(volume.Id, node, AttachmentPhase.Attaching, null, volume.CreatedAt ?? DateTimeOffset.UnixEpoch))
                .ToArray();
        }
    }

    /// <summary>The recorded progress of one attachment, tagged or not.</summary>
    public AttachmentRecord? Attachment(string volumeId, string node)
    {
        lock (_gate)
        {
            return _attachments.GetValueOrDefault((volumeId, node));
        }
    }

    /// <summary>The attaches and detaches recorded as started and not finished, tagged or not.</summary>
    public IReadOnlyList<AttachmentRecord> InFlight()
    {
        lock (_gate)
        {
            return _attachments.Values.Where(a => a.Phase is AttachmentPhase.Attaching or AttachmentPhase.Detaching).ToArray();
        }
    }

    public void SetAttachment(AttachmentRecord attachment)
    {
        lock (_gate)
        {
            _attachments[(attachment.VolumeId, attachment.Node)] = attachment;
        }
    }

    public void RemoveAttachment(string volumeId, string node)
    {
        lock (_gate)
        {
            _attachments.Remove((volumeId, node));
        }
    }

    /// <summary>A clone's copy or a deleted volume's wipe as it stands (progress, or what it waits for); null when none runs.</summary>
    public DataWork? Work(string volumeId)
    {
        lock (_gate)
        {
            return _dataWork.GetValueOrDefault(volumeId);
        }
    }

    public void SetWork(string volumeId, DataWork? work)
    {
        lock (_gate)
        {
            if (work is null)
            {
                _dataWork.Remove(volumeId);
            }
            else
            {
                _dataWork[volumeId] = work;
            }
        }
    }

    /// <summary>The volume's state now, with the operation in flight on it (if any).</summary>
    public VolumeLifecycle StateOf(VolumeRecord volume)
    {
        string? running;
        lock (_gate)
        {
            running = _inFlight.GetValueOrDefault(volume.Id) ?? _inFlight.GetValueOrDefault(NameKey(volume.Name));
        }

        return VolumeStates.Of(volume, running, Attachments(volume));
    }

    /// <summary>
    /// The snapshot whose restore into <paramref name="origin"/> has begun and not finished (the VG
    /// says merge), or the origin itself when only its own LV says so; null when none.
    /// </summary>
    public VolumeRecord? RestoringInto(VolumeRecord origin) =>
        Snapshot().FirstOrDefault(v => v.Merging && string.Equals(v.SourceVolumeId, origin.Id, StringComparison.Ordinal))
        ?? (origin.Merging ? origin : null);

    /// <summary>Adds or replaces a record; free space follows the size difference, so re-applying is harmless.</summary>
    public void Put(VolumeRecord record)
    {
        lock (_gate)
        {
            var isNew = !_byId.TryGetValue(record.Id, out var old);
            if (old is not null && !string.Equals(old.Name, record.Name, StringComparison.Ordinal))
            {
                _idByName.Remove(old.Name);
            }

            var sizeDeltaBytes = (long)record.SizeBytes - (long)(old?.SizeBytes ?? 0);
            _byId[record.Id] = record;
            _idByName[record.Name] = record.Id;
            _capacity = _capacity with
            {
                FreeBytes = (ulong)((long)_capacity.FreeBytes - sizeDeltaBytes),
                LvCount = _capacity.LvCount + (isNew ? 1 : 0),
            };
        }
    }

    public void Remove(string id)
    {
        lock (_gate)
        {
            if (_byId.Remove(id, out var old))
            {
                _idByName.Remove(old.Name);
                _dataWork.Remove(id);
                foreach (var key in _attachments.Keys.Where(k => k.VolumeId == id).ToArray())
                {
                    _attachments.Remove(key);
                }

                _capacity = _capacity with { FreeBytes = _capacity.FreeBytes + old.SizeBytes, LvCount = _capacity.LvCount - 1 };
            }
        }
    }

    /// <summary>Updates what only lvm knows after a write (seqno and metadata-area use, from the VG backup file).</summary>
    public void UpdateMetadata(ulong seqno, ulong metadataFreeBytes)
    {
        lock (_gate)
        {
            _capacity = _capacity with { Seqno = seqno, MetadataFreeBytes = metadataFreeBytes };
        }
    }

    /// <summary>
    /// Marks keys (volume ids, "name:" + name) busy for one operation. A second operation on the same
    /// volume while one is in flight gets ABORTED, as CSI specifies.
    /// </summary>
    public IDisposable Claim(string operation, params string[] keys)
    {
        lock (_gate)
        {
            foreach (var key in keys)
            {
                if (_inFlight.TryGetValue(key, out var running))
                {
                    throw new ControllerException(ControllerErrorKind.Aborted,
                        $"Another operation ({running}) is in flight on {Describe(key)} in pool {Pool}; retry when it finishes.");
                }
            }

            foreach (var key in keys)
            {
                _inFlight[key] = operation;
            }
        }

        return new Release(this, keys);
    }

    public static string NameKey(string name) => "name:" + name;

    private static string Describe(string key) =>
        key.StartsWith("name:", StringComparison.Ordinal) ? $"volume name '{key[5..]}'" : $"volume {key}";

    private sealed class Release(PoolCatalog catalog, string[] keys) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                lock (catalog._gate)
                {
                    foreach (var key in keys)
                    {
                        catalog._inFlight.Remove(key);
                    }
                }
            }
        }
    }
}

/// <summary>
/// A data job of a volume as operators see it: the agent's latest progress (null before the first
/// report), and a line saying what it is doing or waiting for (no node sees the LU, the last
/// attempt's error and when it is retried).
/// </summary>
public sealed record DataWork(string Operation, Contracts.V1.DataProgress? Progress, string Status);

public readonly record struct PoolCapacity(
    ulong SizeBytes,
    ulong FreeBytes,
    ulong ExtentSizeBytes,
    ulong Seqno,
    ulong MetadataSizeBytes,
    ulong MetadataFreeBytes,
    int LvCount)
{
    /// <summary>
    /// LVM keeps two copies of the metadata text in the area, so at most half of it is usable;
    /// vg_mda_free already reports free space against that half.
    /// </summary>
    public ulong MetadataUsableBytes => MetadataSizeBytes / 2;

    public double MetadataFreeFraction => MetadataUsableBytes == 0 ? 0 : (double)MetadataFreeBytes / MetadataUsableBytes;
}
