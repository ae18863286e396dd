using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using SharedLvm.Controller.Catalog;
using SharedLvm.Controller.Faults;
using SharedLvm.Controller.Pools;
using SharedLvm.Controller.State;
using SharedLvm.Controller.Telemetry;
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
/// order fair and the queue bounded, and lets the writer commit what queued up behind a running
/// write in one metadata commit (group commit: see ARCHITECTURE.md, "Group commit"), each write
/// still journaled and answered on its own.
/// </summary>
public sealed class PoolWriter : IAsyncDisposable
{
    private readonly PoolRuntime _pool;
    private readonly LvmMetadataWriter _lvm;
    private readonly ControllerStore _store;
    private readonly FaultInjector _faults;
    private readonly ControllerOptions _options;
    private readonly WriteMetrics _metrics;
    private readonly ILogger _logger;
    private readonly Channel<WriteItem> _queue;
    private readonly CancellationTokenSource _stopping = new();
    private Task? _loop;
    private int _queueDepth;
    private long _batchCommits;
    private int _lastCommitWrites;
    private long _lastCommitEnded;
    private int _queuedAtCommitEnd;
    private long _batchedWrites;
    private int _disposed;
    private DateTimeOffset _lastForeignCheck = DateTimeOffset.UtcNow;
    private VgMetadata? _restored;

    public PoolWriter(PoolRuntime pool, LvmMetadataWriter lvm, ControllerStore store, FaultInjector faults, ControllerOptions options, WriteMetrics metrics, ILogger logger)
    {
        _pool = pool;
        _lvm = lvm;
        _store = store;
        _faults = faults;
        _options = options;
        _metrics = metrics;
        _logger = logger;
        _queue = Channel.CreateBounded<WriteItem>(new BoundedChannelOptions(options.WriteQueueCapacity) { SingleReader = true });
        metrics.PoolAdded(pool.Name);
    }

    public int QueueDepth => Volatile.Read(ref _queueDepth);

    /// <summary>Metadata commits that carried more than one write, and how many writes they carried.</summary>
    public (long Commits, long Writes) Batches => (Interlocked.Read(ref _batchCommits), Interlocked.Read(ref _batchedWrites));

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
            case "restore" when present is not null:
                // The only LV a controller ever activates for long: the origin, while a snapshot
                // merges into it. Left active here it could be attached to a node as well.
                try
                {
                    await _lvm.DeactivateHereAsync(present.VgName, present.LvName, cancellationToken).ConfigureAwait(false);
                }
                catch (LvmException e)
                {
                    return "origin NOT deactivated on the controller host (" + LvmException.Summarize(e.StandardError) + "); run lvchange -an there, then retry the restore";
                }

                return "origin deactivated on the controller host; a retried restore resumes the merge";
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
            await TimedAsync(WriteCommit.Single, () => _faults.During(kind + ".during_lvm", change.ApplyToVgAsync(_lvm, stopping))).ConfigureAwait(false);
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
        _metrics.Committed(_pool.Name, WriteCommit.Single, 1);
        ControllerLog.Written(_logger, _pool.Name, kind, volume.Id, volume.Name);
        return volume;
    }

    private async Task LoopAsync(CancellationToken stopping)
    {
        var reader = _queue.Reader;
        WriteItem? carried = null;
        while (!stopping.IsCancellationRequested)
        {
            var item = carried;
            carried = null;
            if (item is null)
            {
                using var idle = CancellationTokenSource.CreateLinkedTokenSource(stopping);
                idle.CancelAfter(_options.ForeignWriteCheckInterval);
                try
                {
                    item = await reader.ReadAsync(idle.Token).ConfigureAwait(false);
                    Interlocked.Decrement(ref _queueDepth);
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
                // Group commit: whatever queued up behind this write while the last commit ran and
                // combines with it goes into the same metadata commit. Only a consecutive run of one
                // kind is taken, so the batch means what the same writes one by one would have meant.
                var batch = new List<WriteItem> { item };
                var names = new HashSet<string>(StringComparer.Ordinal) { item.Change.Volume.LvName };
                if (item.Change.Batch != BatchKind.Alone && _lastCommitWrites > 1
                    && System.Diagnostics.Stopwatch.GetElapsedTime(_lastCommitEnded) < TimeSpan.FromMilliseconds(50))
                {
                    // Under load, the callers just answered send their next writes within a few
                    // milliseconds; without this pause the first of them would take a commit of its own
                    // and the rest wait behind it (one single commit per batch, halving the rate). Wait
                    // until they are queued behind what was already waiting when the commit ended, or
                    // the linger ran out. Counting only the last commit's size let 8 callers settle
                    // into two alternating batches of 4 for good (the benchmark at 8,000 LVs: half the rate).
                    var wanted = Math.Min(_options.WriteBatchLimit, _lastCommitWrites + _queuedAtCommitEnd);
                    var lingering = System.Diagnostics.Stopwatch.StartNew();
                    while (reader.Count + 1 < wanted && lingering.Elapsed < _options.WriteBatchLinger && !stopping.IsCancellationRequested)
                    {
                        await Task.Delay(1, stopping).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                    }
                }

                while (item.Change.Batch != BatchKind.Alone && batch.Count < _options.WriteBatchLimit && reader.TryRead(out var next))
                {
                    Interlocked.Decrement(ref _queueDepth);
                    if (next.Change.Batch != item.Change.Batch || !names.Add(next.Change.Volume.LvName))
                    {
                        carried = next;
                        break;
                    }

                    batch.Add(next);
                }

                _lastCommitWrites = batch.Count;
                await RunAsync(batch, stopping).ConfigureAwait(false);
                _lastCommitEnded = System.Diagnostics.Stopwatch.GetTimestamp();
                _queuedAtCommitEnd = reader.Count + (carried is null ? 0 : 1);
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

        carried?.Cancel();
    }

    private async Task RunAsync(List<WriteItem> batch, CancellationToken stopping)
    {
        var live = batch.Where(i => i.TakeIfWanted()).ToList();
        if (live.Count == 1)
        {
            // One write queued: the single lvm command, cheaper than a text round trip.
            await live[0].RunAsync(this, stopping).ConfigureAwait(false);
            return;
        }

        if (live.Count == 0)
        {
            return;
        }

        IReadOnlyList<WriteItem> alone;
        try
        {
            alone = live[0].Change.Batch == BatchKind.Remove
                ? await RemoveBatchAsync(live, stopping).ConfigureAwait(false)
                : await SpliceBatchAsync(live, stopping).ConfigureAwait(false);
        }
        catch (OperationCanceledException e)
        {
            foreach (var item in live)
            {
                item.Fail(e);
            }

            return;
        }
        catch (Exception e)
        {
            // No caller fails because its neighbours were batched: a timeout was settled per write
            // inside; anything else (lvm refused the batch, the text may not be spliced) falls back
            // to one lvm command per write, each with its own result.
            var reason = FailureOf(e);
            _metrics.BatchFailed(_pool.Name, reason);
            if (e is MetadataInvariantException)
            {
                ControllerLog.BatchRefused(_logger, _pool.Name, live.Count, e.Message);
            }
            else
            {
                ControllerLog.BatchFailed(_logger, _pool.Name, live.Count, e.Message);
            }

            alone = live.Where(i => !i.Completion.IsCompleted).ToList();
            _metrics.RanAlone(_pool.Name, reason, alone.Count);
        }

        foreach (var single in alone)
        {
            await single.RunAsync(this, stopping).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Creates, extends and tag changes spliced into lvm's current text and restored at once (one
    /// commit; field.md 4: 155 ms for 32 changes against 168 ms for one lvcreate at 2k LVs). Returns
    /// the writes that must run alone instead: those the splice refused (lvm then gives its own error),
    /// or all of them when the text may not be spliced (see <see cref="MetadataInvariants"/>).
    /// </summary>
    private async Task<IReadOnlyList<WriteItem>> SpliceBatchAsync(List<WriteItem> items, CancellationToken stopping)
    {
        var expectedSeqno = _pool.Catalog.Capacity.Seqno;
        Directory.CreateDirectory(_options.BatchArchiveDirectory);
        var vg = await CurrentAsync(expectedSeqno, stopping).ConfigureAwait(false);
        if (vg.Seqno != expectedSeqno)
        {
            // Someone else wrote the VG since our last commit: alarm, reload, and let lvm's own
            // commands (which re-read the VG) do these writes.
            await _pool.CheckForeignWritesAsync(stopping).ConfigureAwait(false);
            _metrics.BatchFailed(_pool.Name, BatchFailure.SeqnoChanged);
            _metrics.RanAlone(_pool.Name, BatchFailure.SeqnoChanged, items.Count);
            return items;
        }

        var splice = new MetadataSplice(vg, Environment.MachineName, DateTimeOffset.UtcNow);
        var batch = new List<WriteItem>();
        var alone = new List<WriteItem>();
        foreach (var item in items)
        {
            (item.Change.SpliceInto(splice) is null ? batch : alone).Add(item);
        }

        if (batch.Count < 2)
        {
            _metrics.BatchFailed(_pool.Name, BatchFailure.NotSpliceable);
            _metrics.RanAlone(_pool.Name, BatchFailure.NotSpliceable, items.Count);
            return items;
        }

        var text = splice.Render();
        var restored = MetadataInvariants.Check(vg, text, expectedSeqno, splice.Created.ToHashSet(StringComparer.Ordinal), splice.Changed.ToHashSet(StringComparer.Ordinal)).Restored();

        // Our own archive: lvm writes none for a restore. Named by the seqno the VG gets.
        var archived = Path.Combine(_options.BatchArchiveDirectory, $"{_pool.VgName}_{restored.Seqno:D10}.vg");
        await File.WriteAllTextAsync(archived, text, stopping).ConfigureAwait(false);
        PruneArchive();

        await CommitBatchAsync(batch, WriteCommit.Restore, "vgcfgrestore", () => _lvm.VgCfgRestoreAsync(_pool.VgName, archived, stopping), stopping, () =>
        {
            // lvm's backup of the VG is where the writer reads its seqno and metadata use after a write
            // (PoolRuntime.NoteOwnWrite), and what lvm's next command compares against: keep it current.
            File.WriteAllText(Path.Combine(_options.BackupDirectory, _pool.VgName), restored.Text.Text);
            _restored = restored;
        }).ConfigureAwait(false);
        _metrics.RanAlone(_pool.Name, BatchFailure.NotSpliceable, alone.Count);
        return alone;
    }

    /// <summary>
    /// lvm's current metadata of the VG, parsed. After a batch of ours it is the text we restored, at
    /// the seqno lvm gave it, kept in memory; after a single command, lvm's backup file holds it. Either
    /// is taken when its seqno is the one we last wrote and the PV's metadata area says the same (read
    /// from the disk, ~1 ms), without the `vgcfgbackup` that costs as much as a `vgs` (100-300 ms at
    /// 2k-8k LVs). Otherwise ask lvm; a foreign write then shows as a seqno mismatch and the batch is
    /// not spliced.
    /// </summary>
    private async Task<VgMetadata> CurrentAsync(ulong expectedSeqno, CancellationToken stopping)
    {
        string? text = null;
        if (_pool.OnDiskSeqno() == expectedSeqno)
        {
            if (_restored?.Seqno == expectedSeqno)
            {
                return _restored;
            }

            var backup = Path.Combine(_options.BackupDirectory, _pool.VgName);
            try
            {
                if (BackupFile.Read(backup)?.Seqno == expectedSeqno)
                {
                    text = await File.ReadAllTextAsync(backup, stopping).ConfigureAwait(false);
                }
            }
            catch (IOException)
            {
                // An unreadable backup file: lvm gives the text below.
            }
        }

        var read = Path.Combine(_options.BatchArchiveDirectory, _pool.VgName + ".read");
        text ??= await _pool.Reader.MetadataTextAsync(_pool.VgName, read, stopping).ConfigureAwait(false);
        return VgMetadata.Parse(text);
    }

    /// <summary>
    /// Removes in one `lvremove vg/a vg/b ...` (one commit). lvm exits 5 when a named LV is missing and
    /// still removes the others; a missing LV is a finished delete. Any other failure: each alone.
    /// </summary>
    private async Task<IReadOnlyList<WriteItem>> RemoveBatchAsync(List<WriteItem> items, CancellationToken stopping)
    {
        var names = items.Select(i => i.Change.Volume.LvName).ToArray();
        var allFound = true;
        await CommitBatchAsync(items, WriteCommit.Remove, "lvremove", async () =>
        {
            try
            {
                await _lvm.LvRemoveManyAsync(_pool.VgName, names, stopping).ConfigureAwait(false);
            }
            catch (LvmException e) when (e.ExitCode == 5 && OnlyMissing(e.StandardError))
            {
                allFound = false;
            }
        }, stopping, () => { }).ConfigureAwait(false);
        if (!allFound)
        {
            ControllerLog.BatchMissing(_logger, _pool.Name, names.Length);
        }

        return [];
    }

    /// <summary>True when every error line of lvremove names a missing LV (no other failure).</summary>
    private static bool OnlyMissing(string standardError) =>
        standardError.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(l => !l.StartsWith("WARNING:", StringComparison.Ordinal) && !l.StartsWith("File descriptor", StringComparison.Ordinal)
                        && !l.StartsWith("Logical volume \"", StringComparison.Ordinal))
            .All(l => l.StartsWith("Failed to find logical volume", StringComparison.Ordinal));

    /// <summary>
    /// The write protocol of <see cref="CommitAsync"/> for several writes and one lvm command: journal
    /// every write, one commit, then catalogue, journal and reply for each. A timeout is settled per
    /// write from a reload; an lvm failure (nothing committed: both commands are atomic) closes the
    /// journal entries and throws, and the caller runs each write alone.
    /// </summary>
    private async Task CommitBatchAsync(List<WriteItem> items, WriteCommit kind, string command, Func<Task> commit, CancellationToken stopping, Action afterCommit)
    {
        _faults.Hit("batch.before_journal");
        var journal = _store.BeginOperations(items.Select(i => (i.Change.Operation, _pool.Name, i.Change.Volume.Id, i.Change.Volume.Name, i.Change.Volume.SizeBytes, "batch")).ToArray());
        _faults.Hit("batch.after_journal");
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            await TimedAsync(kind, () => _faults.During("batch.during_lvm", commit())).ConfigureAwait(false);
        }
        catch (ProcessTimeoutException e)
        {
            ControllerLog.BatchTimedOut(_logger, _pool.Name, command, items.Count, e.Timeout.TotalSeconds);
            _metrics.BatchFailed(_pool.Name, BatchFailure.LvmTimeout);
            await _pool.LoadAsync(stopping).ConfigureAwait(false);
            var settled = 0;
            for (var i = 0; i < items.Count; i++)
            {
                var change = items[i].Change;
                if (change.IsIn(_pool.Catalog))
                {
                    _store.FinishOperation(journal[i], "done (settled from the VG after a timeout)");
                    items[i].Succeed(change.Volume);
                    settled++;
                }
                else
                {
                    _store.FinishOperation(journal[i], "lvm timed out; not committed");
                    items[i].Fail(new ControllerException(ControllerErrorKind.Unavailable,
                        $"lvm {change.Operation} of volume {change.Volume.Id} timed out after {e.Timeout.TotalSeconds:0} s and did not commit; retry.", e));
                }
            }

            if (settled > 0)
            {
                // The killed command had committed: it was a commit of that many writes all the same.
                _metrics.Committed(_pool.Name, kind, settled);
            }

            return;
        }
        catch (LvmException e)
        {
            _store.FinishOperations(journal.Select(id => (id, "batch failed, retried alone: " + LvmException.Summarize(e.StandardError))).ToArray());
            throw;
        }

        _faults.Hit("batch.after_lvm");
        afterCommit();
        _pool.NoteOwnWrite();
        foreach (var item in items)
        {
            item.Change.ApplyTo(_pool.Catalog);
        }

        _store.FinishOperations(journal.Select(id => (id, "done")).ToArray());

        _faults.Hit("batch.before_reply");
        ControllerLog.BatchCommitted(_logger, _pool.Name, command, items.Count, System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        Interlocked.Increment(ref _batchCommits);
        Interlocked.Add(ref _batchedWrites, items.Count);
        _metrics.Committed(_pool.Name, kind, items.Count);
        foreach (var item in items)
        {
            ControllerLog.Written(_logger, _pool.Name, item.Change.Operation, item.Change.Volume.Id, item.Change.Volume.Name);
            item.Succeed(item.Change.Volume);
        }
    }

    /// <summary>
    /// Runs a commit's lvm command and records how long it took, failed or not: a slow failure is
    /// what an operator looks for. A commit cut short by the controller stopping says nothing.
    /// </summary>
    private async Task TimedAsync(WriteCommit kind, Func<Task> commit)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var cancelled = false;
        try
        {
            await commit().ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            cancelled = true;
            throw;
        }
        finally
        {
            if (!cancelled)
            {
                _metrics.CommitTook(_pool.Name, kind, System.Diagnostics.Stopwatch.GetElapsedTime(started));
            }
        }
    }

    private static BatchFailure FailureOf(Exception e) => e switch
    {
        MetadataInvariantException => BatchFailure.InvariantRefused,
        // MetadataSplice: a VG with more than one PV, or LVs that are not plain linear ones.
        NotSupportedException => BatchFailure.NotSpliceable,
        ProcessTimeoutException => BatchFailure.LvmTimeout,
        LvmException => BatchFailure.LvmFailed,
        _ => BatchFailure.Error,
    };

    /// <summary>The batch archive keeps the last <see cref="ControllerOptions.ArchiveRetainCount"/> texts per VG, like lvm's.</summary>
    private void PruneArchive()
    {
        var old = Directory.GetFiles(_options.BatchArchiveDirectory, _pool.VgName + "_*.vg").Order(StringComparer.Ordinal).ToArray();
        foreach (var file in old.Take(Math.Max(0, old.Length - _options.ArchiveRetainCount)))
        {
            File.Delete(file);
        }
    }

    private sealed class WriteItem(MetadataChange change, CancellationToken callerToken)
    {
        private readonly TaskCompletionSource<VolumeRecord> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task<VolumeRecord> Completion => _completion.Task;

        public MetadataChange Change => change;

        /// <summary>False (and cancelled) when the caller gave up while queued: nothing was done, so nothing to reconcile.</summary>
        public bool TakeIfWanted()
        {
            if (!callerToken.IsCancellationRequested)
            {
                return true;
            }

            _completion.TrySetCanceled(callerToken);
            return false;
        }

        public void Succeed(VolumeRecord volume) => _completion.TrySetResult(volume);

        public void Fail(Exception e) => _completion.TrySetException(e);

        /// <summary>The writer stopped with this write taken from the queue but not started.</summary>
        public void Cancel() => _completion.TrySetCanceled();

        public async Task RunAsync(PoolWriter writer, CancellationToken stopping)
        {
            if (!TakeIfWanted())
            {
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
