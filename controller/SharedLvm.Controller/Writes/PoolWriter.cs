using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using SharedLvm.Controller.Catalog;
using SharedLvm.Controller.Faults;
using SharedLvm.Controller.Pools;
using SharedLvm.Controller.State;
using SharedLvm.Os.Lvm;
using SharedLvm.Os.Processes;

namespace SharedLvm.Controller.Writes;

/// <summary>
/// The single writer of one pool's VG metadata, and the one write protocol every change follows
/// (invariant 4): journal the intent, run lvm, make the catalogue agree, close the journal entry,
/// reply. Volumes and attachments both write through here. A crash at any step is settled at the
/// next start by <see cref="RecoverAsync"/>; a timed-out lvm command (killed, and it may still have
/// committed: 31 % of killed lvcreates had in the field) is settled at once from a reload of the VG.
/// Writes to one VG serialize in LVM anyway (6.3 ops/s at 2k LVs); queueing them here makes the
/// order fair and the queue bounded.
/// </summary>
public sealed class PoolWriter : IAsyncDisposable
{
    private readonly PoolRuntime _pool;
    private readonly LvmMetadataWriter _lvm;
    private readonly ControllerStore _store;
    private readonly FaultInjector _faults;
    private readonly ControllerOptions _options;
    private readonly ILogger _logger;
    private readonly Channel<WriteItem> _queue;
    private readonly CancellationTokenSource _stopping = new();
    private Task? _loop;
    private int _queueDepth;
    private int _disposed;
    private DateTimeOffset _lastForeignCheck = DateTimeOffset.UtcNow;

    public PoolWriter(PoolRuntime pool, LvmMetadataWriter lvm, ControllerStore store, FaultInjector faults, ControllerOptions options, ILogger logger)
    {
        _pool = pool;
        _lvm = lvm;
        _store = store;
        _faults = faults;
        _options = options;
        _logger = logger;
        _queue = Channel.CreateBounded<WriteItem>(new BoundedChannelOptions(options.WriteQueueCapacity) { SingleReader = true });
    }

    public int QueueDepth => Volatile.Read(ref _queueDepth);

    /// <summary>
    /// Queues a change and answers once it is committed and in the catalogue. It runs on the pool's
    /// writer with the controller's stopping token, not the caller's: a client giving up must not
    /// kill an lvm command mid-commit. A caller that gives up while still queued withdraws it.
    /// </summary>
    public Task<VolumeRecord> WriteAsync(MetadataChange change, CancellationToken cancellationToken)
    {
        var item = new WriteItem(change, cancellationToken);
        if (!_queue.Writer.TryWrite(item))
        {
            throw new ControllerException(ControllerErrorKind.ResourceExhausted,
                $"The write queue of pool {_pool.Name} is full ({_options.WriteQueueCapacity} operations waiting); retry later.");
        }

        Interlocked.Increment(ref _queueDepth);
        return item.Completion;
    }

    /// <summary>Settles journal entries a crash left pending, from the VG as it is now; then starts writing.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        foreach (var pending in _store.PendingOperations(_pool.Name))
        {
            var outcome = await RecoverAsync(pending, cancellationToken).ConfigureAwait(false);
            _store.FinishOperation(pending.Id, outcome);
            ControllerLog.Recovered(_logger, _pool.Name, pending.Kind, pending.VolumeId, pending.Name, outcome);
        }

        _loop = Task.Run(() => LoopAsync(_stopping.Token), CancellationToken.None);
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

    private async Task<string> RecoverAsync(OperationRow operation, CancellationToken cancellationToken)
    {
        var present = _pool.Catalog.Get(operation.VolumeId);
        switch (operation.Kind)
        {
            case "create" or "clone" or "snapshot":
                if (present is not null)
                {
                    ControllerLog.CommittedNotAcknowledged(_logger, _pool.Name, operation.Kind, operation.VolumeId, operation.Name);
                    return "committed before the crash, not acknowledged; kept (a retry by name returns it)";
                }

                return "not committed; nothing to undo";
            case "delete" when present is not null:
                // The caller asked for it to go; finish the job rather than resurrect it.
                var remove = new RemoveLv(present);
                await remove.ApplyToVgAsync(_lvm, cancellationToken).ConfigureAwait(false);
                _pool.NoteOwnWrite();
                remove.ApplyTo(_pool.Catalog);
                return "rolled forward: LV removed";
            case "delete":
                return "committed before the crash";
            default:
                return "LV left as lvm committed it; the client's retry converges";
        }
    }

    private async Task<VolumeRecord> CommitAsync(MetadataChange change, CancellationToken stopping)
    {
        var kind = change.Operation;
        var volume = change.Volume;
        _faults.Hit(kind + ".before_journal");
        var journalId = _store.BeginOperation(kind, _pool.Name, volume.Id, volume.Name, volume.SizeBytes);
        _faults.Hit(kind + ".after_journal");
        try
        {
            await _faults.During(kind + ".during_lvm", change.ApplyToVgAsync(_lvm, stopping)).ConfigureAwait(false);
        }
        catch (ProcessTimeoutException e)
        {
            ControllerLog.LvmTimedOut(_logger, _pool.Name, kind, volume.Id, e.Timeout.TotalSeconds);
            await _pool.LoadAsync(stopping).ConfigureAwait(false);
            if (!change.IsIn(_pool.Catalog))
            {
                _store.FinishOperation(journalId, "lvm timed out; not committed");
                throw new ControllerException(ControllerErrorKind.Unavailable,
                    $"lvm {kind} of volume {volume.Id} timed out after {e.Timeout.TotalSeconds:0} s and did not commit; retry.", e);
            }
        }
        catch (LvmException e)
        {
            _store.FinishOperation(journalId, "failed: " + LvmException.Summarize(e.StandardError));
            ControllerLog.LvmFailed(_logger, _pool.Name, kind, volume.Id, volume.Name, e.Message);
            throw;
        }

        _faults.Hit(kind + ".after_lvm");
        _pool.NoteOwnWrite();
        change.ApplyTo(_pool.Catalog);
        _store.FinishOperation(journalId, "done");
        _faults.Hit(kind + ".before_reply");
        ControllerLog.Written(_logger, _pool.Name, kind, volume.Id, volume.Name);
        return volume;
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
                catch (Exception e) when (e is ChannelClosedException or OperationCanceledException)
                {
                    return;
                }
            }

            if (item is not null)
            {
                Interlocked.Decrement(ref _queueDepth);
                await item.RunAsync(this, stopping).ConfigureAwait(false);
            }

            if (DateTimeOffset.UtcNow - _lastForeignCheck >= _options.ForeignWriteCheckInterval)
            {
                _lastForeignCheck = DateTimeOffset.UtcNow;
                try
                {
                    await _pool.CheckForeignWritesAsync(stopping).ConfigureAwait(false);
                }
                catch (Exception e) when (e is LvmException or ProcessTimeoutException or FormatException)
                {
                    ControllerLog.CheckFailed(_logger, _pool.Name, e);
                }
            }
        }
    }

    private sealed class WriteItem(MetadataChange change, CancellationToken callerToken)
    {
        private readonly TaskCompletionSource<VolumeRecord> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task<VolumeRecord> Completion => _completion.Task;

        public async Task RunAsync(PoolWriter writer, CancellationToken stopping)
        {
            if (callerToken.IsCancellationRequested)
            {
                // The caller gave up while queued: nothing was done, so nothing to reconcile.
                _completion.TrySetCanceled(callerToken);
                return;
            }

            try
            {
                _completion.TrySetResult(await writer.CommitAsync(change, stopping).ConfigureAwait(false));
            }
            catch (Exception e)
            {
                _completion.TrySetException(e);
            }
        }
    }
}
