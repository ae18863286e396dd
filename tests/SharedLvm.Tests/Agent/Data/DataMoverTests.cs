using System.Security.Cryptography;
using SharedLvm.Agent.Data;
using SharedLvm.Os.Devices;
using SharedLvm.Os.Lvm;
using SharedLvm.Tests.Support;

namespace SharedLvm.Tests.Agent.Data;

/// <summary>Copies and wipes below LVM on a real block device (a loop device), with runs laid out like an extended LV's.</summary>
public sealed class DataMoverTests : IDisposable
{
    private const ulong MiB = 1024 * 1024;
    private readonly LoopDevice? _lu = LoopDevice.Create(96L * 1024 * 1024);
    private readonly DataMover _mover = new(TimeProvider.System);

    // A 12 MiB "source" in two runs (8 MiB at 4 MiB, 4 MiB at 40 MiB), a 12 MiB "target" in one run at 60 MiB.
    private static readonly ExtentRun[] Source = [Run(0, 4, 8), Run(8, 40, 4)];
    private static readonly ExtentRun[] Target = [Run(0, 60, 12)];

    public void Dispose() => _lu?.Dispose();

    [Fact]
    public async Task A_copy_puts_the_source_bytes_on_the_target_and_zeroes_what_reads_as_zeros()
    {
        LoopDevice.Present(_lu);
        var data = RandomNumberGenerator.GetBytes((int)(12 * MiB));
        Array.Clear(data, (int)(4 * MiB), (int)(4 * MiB)); // a hole, as a fresh filesystem has
        Write(Source, data);
        Write(Target, Enumerable.Repeat((byte)0xAB, (int)(12 * MiB)).ToArray()); // what the target extents held before
        var samples = new List<DataProgressSample>();

        await _mover.CopyAsync(_lu.Device, Source, null, _lu.Device, Target, 0, 0, samples.Add, CancellationToken.None);

        Assert.Equal(SHA256.HashData(data), SHA256.HashData(Read(Target, 12 * MiB)));
        var last = samples[^1];
        Assert.True(last.Finished);
        Assert.Equal((12 * MiB, 12 * MiB, 4 * MiB), (last.DoneBytes, last.TotalBytes, last.ZeroedBytes));
        Assert.Equal(new byte[8 * MiB], Read([Run(0, 48, 8)], 8 * MiB)); // nothing written outside the runs
    }

    [Fact]
    public async Task A_snapshot_copy_reads_changed_chunks_from_its_cow_store_and_the_rest_from_its_origin()
    {
        LoopDevice.Present(_lu);
        // The origin is Source (12 MiB, two runs); its COW store 4 MiB in two runs, with 300
        // exceptions (two metadata areas, data chunks on both sides of the store's run boundary).
        ExtentRun[] cowRuns = [Run(0, 80, 1), Run(1, 90, 3)];
        var snapshot = RandomNumberGenerator.GetBytes((int)(12 * MiB));
        var origin = snapshot.ToArray();
        var cow = new CowImage((int)(4 * MiB / CowImage.Chunk));
        foreach (var chunk in Enumerable.Range(0, 3072).OrderBy(c => (c * 7919) % 3072).Take(300).Append(2047).Append(2048).Distinct())
        {
            cow.Commit((ulong)chunk, snapshot.AsSpan(chunk * CowImage.Chunk, CowImage.Chunk));
            RandomNumberGenerator.Fill(origin.AsSpan(chunk * CowImage.Chunk, CowImage.Chunk));
        }

        Write(Source, origin);
        Write(cowRuns, cow.Bytes);
        var samples = new List<DataProgressSample>();

        await _mover.CopyAsync(_lu.Device, Source, cowRuns, _lu.Device, Target, 0, 0, samples.Add, CancellationToken.None);

        Assert.Equal(SHA256.HashData(snapshot), SHA256.HashData(Read(Target, 12 * MiB)));
        Assert.Equal((12 * MiB, true), (samples[^1].DoneBytes, samples[^1].Finished));
        Assert.Equal(SHA256.HashData(origin), SHA256.HashData(Read(Source, 12 * MiB))); // the origin untouched
    }

    [Fact]
    public async Task A_copy_resumed_from_an_offset_does_only_the_rest()
    {
        LoopDevice.Present(_lu);
        var data = RandomNumberGenerator.GetBytes((int)(12 * MiB));
        Write(Source, data);
        var samples = new List<DataProgressSample>();

        await _mover.CopyAsync(_lu.Device, Source, null, _lu.Device, Target, 8 * MiB, 0, samples.Add, CancellationToken.None);

        Assert.Equal(data[(int)(8 * MiB)..], Read(Target, 12 * MiB)[(int)(8 * MiB)..]);
        Assert.Equal(new byte[8 * MiB], Read(Target, 8 * MiB)); // the first 8 MiB were not touched
        Assert.Equal(12 * MiB, samples[^1].DoneBytes);
    }

    [Fact]
    public async Task A_wipe_zeroes_every_run_and_nothing_else()
    {
        LoopDevice.Present(_lu);
        Write(Source, Enumerable.Repeat((byte)0x5A, (int)(12 * MiB)).ToArray());
        Write(Target, Enumerable.Repeat((byte)0xC3, (int)(12 * MiB)).ToArray());
        DataProgressSample? last = null;

        await _mover.WipeAsync(_lu.Device, Source, discard: false, 0, 0, s => last = s, CancellationToken.None);

        Assert.Equal(new byte[12 * MiB], Read(Source, 12 * MiB));
        Assert.All(Read(Target, 12 * MiB), b => Assert.Equal(0xC3, b));
        Assert.Equal((12 * MiB, true), (last!.DoneBytes, last.Finished));
    }

    [Fact]
    public async Task Cancellation_stops_between_chunks()
    {
        LoopDevice.Present(_lu);
        using var cancel = new CancellationTokenSource();
        var samples = new List<DataProgressSample>();

        // 4 MiB/s over 12 MiB: ~3 s; cancelled after the first chunk.
        var copy = _mover.CopyAsync(_lu.Device, Source, null, _lu.Device, Target, 0, 4 * MiB, s =>
        {
            samples.Add(s);
            cancel.Cancel();
        }, cancel.Token);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => copy);
        Assert.DoesNotContain(samples, s => s.Finished);
    }

    [Fact]
    public async Task The_rate_cap_holds()
    {
        LoopDevice.Present(_lu);
        var samples = new List<DataProgressSample>();

        await _mover.CopyAsync(_lu.Device, Source, null, _lu.Device, Target, 0, 16 * MiB, samples.Add, CancellationToken.None);

        // 12 MiB at 16 MiB/s: the pacer sleeps so that the average stays at the cap (a few percent of timer slack).
        Assert.InRange(samples[^1].BytesPerSecond, 1, 16.0 * MiB * 1.05);
    }

    [Fact]
    public void A_file_that_is_no_block_device_is_refused()
    {
        var path = Path.GetTempFileName();
        try
        {
            var e = Assert.Throws<BlockDeviceException>(() => BlockDevice.Open(path, writable: false));
            Assert.Contains(path, e.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Pieces_cut_at_run_boundaries_and_chunks_from_an_offset()
    {
        Assert.Equal(
            [(6 * MiB, 4 * MiB), (10 * MiB, 2 * MiB), (40 * MiB, 4 * MiB)],
            DataMover.Pieces(Source, 2 * MiB, 4 * MiB).Select(p => (p.DeviceOffset, p.Length)));
        Assert.Equal((42 * MiB, 2 * MiB), DataMover.Locate(Source, 10 * MiB));
    }

    private static ExtentRun Run(ulong lvMiB, ulong deviceMiB, ulong lengthMiB) =>
        new("/dev/loop", lvMiB * MiB, deviceMiB * MiB, lengthMiB * MiB, "linear");

    private void Write(ExtentRun[] runs, byte[] data)
    {
        using var file = new FileStream(_lu!.File, FileMode.Open, FileAccess.Write);
        foreach (var run in runs)
        {
            file.Position = (long)run.DeviceOffsetBytes;
            file.Write(data, (int)run.LvOffsetBytes, (int)Math.Min(run.LengthBytes, (ulong)data.Length - run.LvOffsetBytes));
        }
    }

    private byte[] Read(ExtentRun[] runs, ulong count)
    {
        var data = new byte[count];
        using var file = new FileStream(_lu!.File, FileMode.Open, FileAccess.Read);
        foreach (var run in runs.Where(r => r.LvOffsetBytes < count))
        {
            file.Position = (long)run.DeviceOffsetBytes;
            file.ReadExactly(data, (int)run.LvOffsetBytes, (int)Math.Min(run.LengthBytes, count - run.LvOffsetBytes));
        }

        return data;
    }
}
