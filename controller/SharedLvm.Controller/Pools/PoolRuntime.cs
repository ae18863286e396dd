using Microsoft.Extensions.Logging;
using SharedLvm.Contracts.V1;
using SharedLvm.Controller.Catalog;
using SharedLvm.Controller.Events;
using SharedLvm.Controller.State;
using SharedLvm.Controller.Writes;
using SharedLvm.Os.Lvm;

namespace SharedLvm.Controller.Pools;

/// <summary>
/// One managed pool (VG): lvm restricted to its own PV, the in-memory catalogue that serves every
/// read, and the single writer through which every metadata change of the VG passes.
/// </summary>
public sealed class PoolRuntime : IAsyncDisposable
{
    private readonly ControllerStore _store;
    private readonly EventBus _events;
    private readonly ControllerOptions _options;
    private readonly ILogger _logger;
    private ulong _metadataFreeAtLoad;
    private long _backupSizeAtLoad;

    internal PoolRuntime(PoolRow row, LvmReader reader, Func<PoolRuntime, PoolWriter> writer, ControllerStore store, EventBus events, ControllerOptions options, ILogger logger)
    {
        Row = row;
        Reader = reader;
        _store = store;
        _events = events;
        _options = options;
        _logger = logger;
        Catalog = new PoolCatalog(row.Name);
        Writer = writer(this);
    }

    public PoolRow Row { get; private set; }

    /// <summary>A changed policy of the pool, already stored.</summary>
    internal void Update(PoolRow row) => Row = row;

    public string Name => Row.Name;

    public string VgName => Row.VgName;

    public LvmReader Reader { get; }

    public PoolCatalog Catalog { get; }

    public PoolWriter Writer { get; }

    public long ForeignWrites { get; private set; }

    private string BackupPath => Path.Combine(_options.BackupDirectory, VgName);

    /// <summary>Loads the catalogue, settles what a crash left pending, then starts the writer.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await LoadAsync(cancellationToken).ConfigureAwait(false);
        await Writer.StartAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Rebuilds the catalogue from one fullreport and re-bases the metadata-use estimate.</summary>
    public async Task LoadAsync(CancellationToken cancellationToken)
    {
        var report = await Reader.FullReportAsync(VgName, cancellationToken).ConfigureAwait(false);
        await Reader.VgCfgBackupAsync(VgName, cancellationToken).ConfigureAwait(false);
        Catalog.Load(report, _store.Attachments());
        _metadataFreeAtLoad = report.VolumeGroup.MetadataAreaFreeBytes;
        _backupSizeAtLoad = BackupFile.Read(BackupPath)?.SizeBytes ?? 0;
        ControllerLog.Loaded(_logger, Name, VgName, Catalog.Count, report.VolumeGroup.Seqno);
    }

    /// <summary>After one of our writes: seqno and metadata use from the backup file lvm just wrote.</summary>
    public void NoteOwnWrite()
    {
        if (BackupFile.Read(BackupPath) is { } backup)
        {
            var used = backup.SizeBytes - _backupSizeAtLoad;
            var free = used <= 0 ? _metadataFreeAtLoad : (ulong)Math.Max(0, (long)_metadataFreeAtLoad - used);
            Catalog.UpdateMetadata(backup.Seqno, free);
        }
    }

    /// <summary>
    /// Compares the VG's seqno with the last one this controller wrote. A difference means another
    /// host wrote the VG metadata, which breaks invariant 1 (two unfenced writers lost 31 % of
    /// acknowledged creates in the field, with vgck still clean): alarm and reload.
    /// </summary>
    /// <remarks>
    /// The seqno is read from the PV's metadata area (~1 ms) rather than by `vgs` (280 ms at 8,000 LVs,
    /// every 30 s on the writer's loop, in the way of the writes queued behind it); `vgs` only when the
    /// area can't be read.
    /// </remarks>
    public async Task CheckForeignWritesAsync(CancellationToken cancellationToken)
    {
        var seqno = OnDiskSeqno() ?? (await Reader.VgsAsync(VgName, cancellationToken).ConfigureAwait(false)).Seqno;

        var expected = Catalog.Capacity.Seqno;
        if (seqno != expected)
        {
            ForeignWrites++;
            ControllerLog.ForeignWrite(_logger, Name, VgName, expected, seqno);
            await LoadAsync(cancellationToken).ConfigureAwait(false);
            _events.Alarm(Name, $"VG {VgName} seqno is {seqno}, expected {expected}: another host wrote its metadata. Only the controller may write (invariant 1); the model was reloaded.");
        }
    }

    /// <summary>
    /// The VG's seqno as the PV's metadata area holds it now, read from the disk (~1 ms, no lvm), or
    /// null (logged) when it can't be read: the caller then asks lvm.
    /// </summary>
    public ulong? OnDiskSeqno()
    {
        try
        {
            return MetadataArea.ReadSeqno(Row.DevicePath);
        }
        catch (Exception e) when (e is FormatException or SharedLvm.Os.Devices.BlockDeviceException or IOException)
        {
            ControllerLog.SeqnoUnreadable(_logger, Name, Row.DevicePath, e.Message);
            return null;
        }
    }

    /// <summary>The pool as the API shows it, with warnings an operator must act on.</summary>
    public Pool ToContract(double warnFreeFraction)
    {
        var capacity = Catalog.Capacity;
        var pool = new Pool
        {
            Name = Name,
            Wwid = Row.Wwid,
            DevicePath = Row.DevicePath,
            VgUuid = Catalog.VgUuid,
            SizeBytes = capacity.SizeBytes,
            FreeBytes = capacity.FreeBytes,
            ExtentSizeBytes = capacity.ExtentSizeBytes,
            VolumeCount = (uint)Catalog.Count,
            MetadataSizeBytes = capacity.MetadataSizeBytes,
            MetadataFreeBytes = capacity.MetadataFreeBytes,
            Seqno = capacity.Seqno,
            Health = HealthState.Ok,
            WipeOnDelete = Row.WipeOnDelete switch
            {
                WipeOnDelete.Discard => WipePolicy.Discard,
                WipeOnDelete.None => WipePolicy.None,
                _ => WipePolicy.Zero,
            },
        };
        if (capacity.MetadataFreeFraction < warnFreeFraction)
        {
            pool.Health = HealthState.Degraded;
            pool.Warnings.Add(
                $"metadata area {100 * (1 - capacity.MetadataFreeFraction):0}% used ({capacity.MetadataFreeBytes} of {capacity.MetadataUsableBytes} bytes free); new volumes are refused when it is full");
        }

        if (ForeignWrites > 0)
        {
            pool.Health = HealthState.Failed;
            pool.Warnings.Add($"{ForeignWrites} metadata write(s) by another host detected: only the controller may write this VG");
        }

        return pool;
    }

    public ValueTask DisposeAsync() => Writer.DisposeAsync();
}
