using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using SharedLvm.Controller.Events;
using SharedLvm.Controller.State;
using SharedLvm.Controller.Volumes;
using SharedLvm.Os.Lvm;
using SharedLvm.Os.Processes;

namespace SharedLvm.Controller.Pools;

/// <summary>
/// One managed pool (VG): its lvm command line restricted to its own PV, its in-memory catalogue,
/// and the single write queue through which every metadata change of the VG passes. Writes to one
/// VG serialize in LVM anyway (6.3 ops/s at 2k LVs with one writer); queueing them here makes the
/// order fair, the queue bounded, and lets a write know the VG state it started from.
/// </summary>
public sealed partial class PoolRuntime : IAsyncDisposable
{
    private readonly Channel<WriteItem> _queue;
    private readonly ControllerStore _store;
    private readonly EventBus _events;
    private readonly ControllerOptions _options;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private Task? _loop;
    private int _queueDepth;
    private int _disposed;
    private ulong _metadataFreeAtLoad;
    private long _backupSizeAtLoad;
    private DateTimeOffset _lastForeignCheck = DateTimeOffset.UtcNow;

    public PoolRuntime(PoolRow row, LvmCli lvm, ControllerStore store, EventBus events, ControllerOptions options, ILogger logger)
    {
        Row = row;
        Lvm = lvm;
        _store = store;
        _events = events;
        _options = options;
        _logger = logger;
        Catalog = new PoolCatalog(row.Name);
        _queue = Channel.CreateBounded<WriteItem>(new BoundedChannelOptions(options.WriteQueueCapacity) { SingleReader = true });
    }

    public PoolRow Row { get; }

    public string Name => Row.Name;

    public string VgName => Row.VgName;

    public LvmCli Lvm { get; }

    public PoolCatalog Catalog { get; }

    public int QueueDepth => Volatile.Read(ref _queueDepth);

    public long ForeignWrites { get; private set; }

    private string BackupPath => Path.Combine(_options.BackupDirectory, VgName);

    /// <summary>Loads the model, settles journal entries a crash left pending, then starts the write loop.</summary>
    public async Task StartAsync(Func<PoolRuntime, OperationRow, CancellationToken, Task<string>> reconcile, CancellationToken cancellationToken)
    {
        await LoadAsync(cancellationToken).ConfigureAwait(false);
        foreach (var pending in _store.PendingOperations(Name))
        {
            var outcome = await reconcile(this, pending, cancellationToken).ConfigureAwait(false);
            _store.FinishOperation(pending.Id, outcome);
            LogReconciled(_logger, Name, pending.Kind, pending.VolumeId, pending.Name, outcome);
        }

        _loop = Task.Run(() => LoopAsync(_stopping.Token), CancellationToken.None);
    }

    /// <summary>Rebuilds the catalogue from one fullreport and re-bases the metadata-use estimate.</summary>
    public async Task LoadAsync(CancellationToken cancellationToken)
    {
        var report = await Lvm.FullReportAsync(VgName, cancellationToken).ConfigureAwait(false);
        await Lvm.VgCfgBackupAsync(VgName, cancellationToken).ConfigureAwait(false);
        Catalog.Load(report);
        _metadataFreeAtLoad = report.VolumeGroup.MetadataAreaFreeBytes;
        _backupSizeAtLoad = BackupFile.Read(BackupPath)?.SizeBytes ?? 0;
        LogLoaded(_logger, Name, VgName, Catalog.Count, report.VolumeGroup.Seqno);
    }

    /// <summary>
    /// Queues a metadata write. The work runs on the pool's writer with the controller's stopping
    /// token, not the caller's: a client giving up must not kill an lvm command mid-commit.
    /// </summary>
    public Task<T> WriteAsync<T>(string operation, Func<CancellationToken, Task<T>> work, CancellationToken cancellationToken)
    {
        var item = new WriteItem<T>(operation, work, cancellationToken);
        if (!_queue.Writer.TryWrite(item))
        {
            throw new ControllerException(ControllerErrorKind.ResourceExhausted,
                $"The write queue of pool {Name} is full ({_options.WriteQueueCapacity} operations waiting); retry later.");
        }

        Interlocked.Increment(ref _queueDepth);
        return item.Completion;
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
    public async Task CheckForeignWritesAsync(CancellationToken cancellationToken)
    {
        _lastForeignCheck = DateTimeOffset.UtcNow;
        var vg = await Lvm.VgsAsync(VgName, cancellationToken).ConfigureAwait(false);
        var expected = Catalog.Capacity.Seqno;
        if (vg.Seqno != expected)
        {
            ForeignWrites++;
            LogForeignWrite(_logger, Name, VgName, expected, vg.Seqno);
            await LoadAsync(cancellationToken).ConfigureAwait(false);
            _events.Alarm(Name, $"VG {VgName} seqno is {vg.Seqno}, expected {expected}: another host wrote its metadata. Only the controller may write (invariant 1); the model was reloaded.");
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _queue.Writer.TryComplete();
        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_loop is not null)
        {
            await _loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        _stopping.Dispose();
    }

    private async Task LoopAsync(CancellationToken stopping)
    {
        var reader = _queue.Reader;
        while (!stopping.IsCancellationRequested)
        {
            WriteItem? item = null;
            using (var idle = CancellationTokenSource.CreateLinkedTokenSource(stopping))
            {
                idle.CancelAfter(_options.ForeignWriteCheckInterval);
                try
                {
                    item = await reader.ReadAsync(idle.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!stopping.IsCancellationRequested)
                {
                }
                catch (ChannelClosedException)
                {
                    return;
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }

            if (item is not null)
            {
                Interlocked.Decrement(ref _queueDepth);
                await item.RunAsync(stopping).ConfigureAwait(false);
            }

            if (DateTimeOffset.UtcNow - _lastForeignCheck >= _options.ForeignWriteCheckInterval)
            {
                try
                {
                    await CheckForeignWritesAsync(stopping).ConfigureAwait(false);
                }
                catch (Exception e) when (e is LvmException or ProcessTimeoutException or FormatException)
                {
                    LogCheckFailed(_logger, Name, e);
                }
            }
        }
    }

    [LoggerMessage(3001, LogLevel.Information, "Pool {Pool}: loaded VG {Vg} with {Volumes} volumes at seqno {Seqno}")]
    private static partial void LogLoaded(ILogger logger, string pool, string vg, int volumes, ulong seqno);

    [LoggerMessage(3002, LogLevel.Warning, "Pool {Pool}: journal entry {Kind} of volume {VolumeId} ({Name}) left pending by a crash: {Outcome}")]
    private static partial void LogReconciled(ILogger logger, string pool, string kind, string volumeId, string name, string outcome);

    [LoggerMessage(3003, LogLevel.Error, "Pool {Pool}: VG {Vg} seqno changed from {Expected} to {Actual} by another writer; reloading")]
    private static partial void LogForeignWrite(ILogger logger, string pool, string vg, ulong expected, ulong actual);

    [LoggerMessage(3004, LogLevel.Warning, "Pool {Pool}: foreign-writer check failed")]
    private static partial void LogCheckFailed(ILogger logger, string pool, Exception exception);

    private abstract class WriteItem
    {
        public abstract Task RunAsync(CancellationToken stopping);
    }

    private sealed class WriteItem<T>(string operation, Func<CancellationToken, Task<T>> work, CancellationToken callerToken) : WriteItem
    {
        private readonly TaskCompletionSource<T> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task<T> Completion => _completion.Task;

        public override string ToString() => operation;

        public override async Task RunAsync(CancellationToken stopping)
        {
            if (callerToken.IsCancellationRequested)
            {
                // The caller gave up while queued: nothing was done, so nothing to reconcile.
                _completion.TrySetCanceled(callerToken);
                return;
            }

            try
            {
                _completion.TrySetResult(await work(stopping).ConfigureAwait(false));
            }
            catch (Exception e)
            {
                _completion.TrySetException(e);
            }
        }
    }
}
