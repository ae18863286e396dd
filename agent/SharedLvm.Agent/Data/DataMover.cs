using System.Runtime.InteropServices;
using SharedLvm.Os.Devices;
using SharedLvm.Os.Lvm;

namespace SharedLvm.Agent.Data;

/// <summary>Where a copy or wipe is: bytes of the LV done (in LV order), of which zeroed rather than written.</summary>
public sealed record DataProgressSample(ulong DoneBytes, ulong TotalBytes, ulong ZeroedBytes, double BytesPerSecond, bool Finished);

/// <summary>
/// The data I/O of clones and wipes, below LVM: an LV's extents addressed on its PV's device, so
/// nothing is activated (no device-mapper table, no owner tag, no chance of a second holder). Runs
/// synchronously on its own thread (direct I/O blocks), checks cancellation between chunks, caps its
/// rate, and reports progress at most twice a second.
/// </summary>
public sealed class DataMover(TimeProvider time)
{
    /// <summary>Direct I/O in large blocks: 4 MiB, the extent size and the block `dd bs=4M` uses.</summary>
    public const int ChunkBytes = 4 * 1024 * 1024;

    /// <summary>One BLKZEROOUT/BLKDISCARD call: large (arrays offload it), small enough to cancel and report between.</summary>
    public const ulong ZeroChunkBytes = 64UL * 1024 * 1024;

    private static readonly TimeSpan ReportEvery = TimeSpan.FromMilliseconds(500);

    /// <summary>Zeroes (or discards) every run of an LV from <paramref name="resumeFrom"/> bytes on.</summary>
    public Task WipeAsync(string device, IReadOnlyList<ExtentRun> runs, bool discard, ulong resumeFrom, ulong maxBytesPerSecond, Action<DataProgressSample> report, CancellationToken cancellationToken) =>
        RunAsync(() =>
        {
            using var target = BlockDevice.Open(device, writable: true);
            var total = Total(runs);
            var pacer = new Pacer(time, maxBytesPerSecond, resumeFrom, total, report);
            foreach (var (deviceOffset, length) in Pieces(runs, resumeFrom, ZeroChunkBytes))
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (discard)
                {
                    target.Discard(deviceOffset, length);
                }
                else
                {
                    target.ZeroOut(deviceOffset, length);
                }

                pacer.Done(length, zeroed: length, cancellationToken);
            }

            pacer.Finish();
        }, cancellationToken);

    /// <summary>
    /// Copies an LV's data onto another LV of the same size, from <paramref name="resumeFrom"/> bytes
    /// on. A block that reads as zeros is zeroed on the target (BLKZEROOUT: offloaded, and a thin LU
    /// stays thin) instead of written; nothing is skipped, since the target's extents may hold
    /// anything. A snapshot source is its origin's runs (<paramref name="sourceRuns"/>) read through
    /// its COW store's exception table (<paramref name="snapshotCowRuns"/>, <see cref="CowExceptionTable"/>).
    /// </summary>
    public Task CopyAsync(string sourceDevice, IReadOnlyList<ExtentRun> sourceRuns, IReadOnlyList<ExtentRun>? snapshotCowRuns,
        string targetDevice, IReadOnlyList<ExtentRun> targetRuns,
        ulong resumeFrom, ulong maxBytesPerSecond, Action<DataProgressSample> report, CancellationToken cancellationToken) =>
        RunAsync(() =>
        {
            var total = Total(sourceRuns);
            if (Total(targetRuns) < total)
            {
                throw new ArgumentException($"The target has {Total(targetRuns)} bytes, the source {total}.", nameof(targetRuns));
            }

            using var source = BlockDevice.Open(sourceDevice, writable: false);
            using var target = BlockDevice.Open(targetDevice, writable: true);
            using var snapshot = snapshotCowRuns is null ? null : CowExceptionTable.Open(
                (buffer, cowOffset) => ReadRuns(source, snapshotCowRuns, buffer, cowOffset), Total(snapshotCowRuns), total);
            using var first = new AlignedBuffer(ChunkBytes);
            using var second = new AlignedBuffer(ChunkBytes);
            var pacer = new Pacer(time, maxBytesPerSecond, resumeFrom, total, report);

            // The next chunk is read while the last one is written: dd reads and writes in turn, so
            // overlapping them is what lets a copy that also looks at every byte for zeros keep up
            // with it (issue 15: >= 0.9x dd). A chunk counts as done once written, so progress, and
            // the resume point the controller stores, never runs ahead of the target.
            (Task Write, ulong Length, bool Zero)? pending = null;
            void Settle()
            {
                if (pending is { } last)
                {
                    pending = null;
                    last.Write.GetAwaiter().GetResult();
                    pacer.Done(last.Length, zeroed: last.Zero ? last.Length : 0, cancellationToken);
                }
            }

            var (reading, writing) = (first, second);
            var lvOffset = resumeFrom;
            try
            {
                while (lvOffset < total)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var (from, fromLength) = Locate(sourceRuns, lvOffset);
                    var (to, toLength) = Locate(targetRuns, lvOffset);
                    var length = Math.Min(Math.Min(fromLength, toLength), Math.Min((ulong)ChunkBytes, total - lvOffset));
                    var span = reading.Span[..(int)length];
                    source.Read(span, from);
                    snapshot?.Overlay(span, lvOffset);
                    var zero = !span.ContainsAnyExcept((byte)0);
                    Settle();
                    var buffer = reading;
                    pending = (Task.Run(() =>
                    {
                        if (zero)
                        {
                            target.ZeroOut(to, length);
                        }
                        else
                        {
                            target.Write(buffer.Span[..(int)length], to);
                        }
                    }, CancellationToken.None), length, zero);
                    (reading, writing) = (writing, reading);
                    lvOffset += length;
                }

                Settle();
            }
            finally
            {
                // Never free a buffer a write still uses (a cancel or a read error left one running).
                if (pending is { } running)
                {
                    ((IAsyncResult)running.Write).AsyncWaitHandle.WaitOne();
                }
            }

            pacer.Finish();
        }, cancellationToken);

    /// <summary>The device ranges of an LV from <paramref name="lvOffset"/> on, cut at run boundaries and at <paramref name="chunk"/>.</summary>
    public static IEnumerable<(ulong DeviceOffset, ulong Length)> Pieces(IReadOnlyList<ExtentRun> runs, ulong lvOffset, ulong chunk)
    {
        foreach (var run in runs)
        {
            var end = run.LvOffsetBytes + run.LengthBytes;
            for (var at = Math.Max(lvOffset, run.LvOffsetBytes); at < end; at += Math.Min(chunk, end - at))
            {
                yield return (run.DeviceOffsetBytes + (at - run.LvOffsetBytes), Math.Min(chunk, end - at));
            }
        }
    }

    /// <summary>The device offset of an LV offset, and how many bytes follow it in the same run.</summary>
    public static (ulong DeviceOffset, ulong Contiguous) Locate(IReadOnlyList<ExtentRun> runs, ulong lvOffset)
    {
        var run = runs.FirstOrDefault(r => lvOffset >= r.LvOffsetBytes && lvOffset < r.LvOffsetBytes + r.LengthBytes)
            ?? throw new ArgumentOutOfRangeException(nameof(lvOffset), $"LV offset {lvOffset} is in none of the LV's runs.");
        return (run.DeviceOffsetBytes + (lvOffset - run.LvOffsetBytes), run.LvOffsetBytes + run.LengthBytes - lvOffset);
    }

    /// <summary>Reads bytes of an LV at an LV offset, across its runs.</summary>
    private static void ReadRuns(BlockDevice device, IReadOnlyList<ExtentRun> runs, Span<byte> buffer, ulong lvOffset)
    {
        var done = 0;
        while (done < buffer.Length)
        {
            var (at, contiguous) = Locate(runs, lvOffset + (ulong)done);
            var length = (int)Math.Min(contiguous, (ulong)(buffer.Length - done));
            device.Read(buffer.Slice(done, length), at);
            done += length;
        }
    }

    private static ulong Total(IReadOnlyList<ExtentRun> runs) => runs.Aggregate(0UL, (sum, r) => sum + r.LengthBytes);

    private static Task RunAsync(Action work, CancellationToken cancellationToken) =>
        Task.Factory.StartNew(work, cancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    /// <summary>Counts bytes, sleeps to hold the rate cap, and reports progress at most every half second.</summary>
    private sealed class Pacer(TimeProvider time, ulong maxBytesPerSecond, ulong done, ulong total, Action<DataProgressSample> report)
    {
        private readonly long _started = time.GetTimestamp();
        private readonly ulong _startedAt = done;
        private ulong _done = done;
        private ulong _zeroed;
        private long _lastReport = time.GetTimestamp();

        public void Done(ulong bytes, ulong zeroed, CancellationToken cancellationToken)
        {
            _done += bytes;
            _zeroed += zeroed;
            if (maxBytesPerSecond > 0)
            {
                var due = TimeSpan.FromSeconds((double)(_done - _startedAt) / maxBytesPerSecond);
                var ahead = due - time.GetElapsedTime(_started);
                if (ahead > TimeSpan.Zero)
                {
                    cancellationToken.WaitHandle.WaitOne(ahead);
                }
            }

            if (time.GetElapsedTime(_lastReport) >= ReportEvery)
            {
                _lastReport = time.GetTimestamp();
                report(Sample(finished: false));
            }
        }

        public void Finish() => report(Sample(finished: true));

        private DataProgressSample Sample(bool finished)
        {
            var seconds = time.GetElapsedTime(_started).TotalSeconds;
            return new DataProgressSample(_done, total, _zeroed, seconds > 0 ? (_done - _startedAt) / seconds : 0, finished);
        }
    }
}
