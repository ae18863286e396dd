using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using SharedLvm.Contracts.Conventions;
using SharedLvm.Contracts.V1;
using SharedLvm.Controller.Catalog;
using SharedLvm.Controller.Pools;
using SharedLvm.Controller.Telemetry;
using SharedLvm.Controller.Writes;
using SharedLvm.Os.Lvm;
using SharedLvm.Os.Processes;
using SharedLvm.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace SharedLvm.Tests.Controller.Writes;

/// <summary>
/// The pool writer's group commit, proven differentially: the same random sequence of creates,
/// extends, tag flips and removes goes once through plain lvm commands, one by one, on one LU, and
/// once through the real <see cref="PoolWriter"/> on another, queued in rounds so consecutive writes
/// are combined (one vgcfgrestore or one multi-LV lvremove per run). Both VGs must then be the same
/// in every field of `vgcfgbackup` but ids, timestamps and seqno, vgck clean, and the catalogue equal
/// to the VG. Operations: SHAREDLVM_DIFF_OPS per side (default 800). And what the writer tells
/// operators about its batches (<see cref="WriteMetrics"/>), measured against batches made deterministic.
/// </summary>
public sealed class PoolWriterTests : IAsyncDisposable
{
    private const ulong MiB = 1024 * 1024;
    private readonly ITestOutputHelper _output;
    private readonly string _state = Directory.CreateTempSubdirectory("slvm-diff-").FullName;
    private readonly LoopDevice? _plainLu = LoopDevice.Create(2L * 1024 * 1024 * 1024);
    private readonly LoopDevice? _batchLu = LoopDevice.Create(2L * 1024 * 1024 * 1024);
    private readonly string _suffix = Guid.NewGuid().ToString("N")[..6];

    public PoolWriterTests(ITestOutputHelper output)
    {
        _output = output;
    }

    public ValueTask DisposeAsync()
    {
        foreach (var (lu, vg) in new[] { (_plainLu, "plain" + _suffix), (_batchLu, "batch" + _suffix) })
        {
            if (lu is not null)
            {
                lu.Lvm("vgremove", "-f", vg);
                lu.Dispose();
            }
        }

        Directory.Delete(_state, recursive: true);
        return ValueTask.CompletedTask;
    }

    [Fact]
    public async Task Batched_writes_leave_the_vg_exactly_as_the_same_lvm_commands_one_by_one()
    {
        LoopDevice.Present(_plainLu);
        LoopDevice.Present(_batchLu);
        var plainVg = "plain" + _suffix;
        var batchVg = "batch" + _suffix;
        var totalOps = int.Parse(Environment.GetEnvironmentVariable("SHAREDLVM_DIFF_OPS") ?? "800", CultureInfo.InvariantCulture);

        var runner = new ProcessRunner(NullLogger<ProcessRunner>.Instance);
        var backups = Path.Combine(_state, "plain-lvm");
        var plain = new LvmMetadataWriter(runner, new LvmConfig { Devices = [_plainLu.Device], BackupDirectory = backups, ArchiveDirectory = backups + "-archive" }, TimeSpan.FromSeconds(60));
        await plain.PvCreateAsync(_plainLu.Device, PoolRegistry.DefaultMetadataSize, TestContext.Current.CancellationToken);
        await plain.VgCreateAsync(plainVg, _plainLu.Device, PoolRegistry.DefaultExtentSize, TestContext.Current.CancellationToken);

        await using var controller = await InProcessController.StartAsync(Path.Combine(_state, "controller"));
        await controller.Client.CreatePoolAsync(new CreatePoolRequest { Name = batchVg, DevicePath = _batchLu.Device, Mode = SharedLvm.Contracts.V1.PoolCreateMode.Initialize });
        var pool = controller.Services.GetRequiredService<PoolRegistry>().Get(batchVg);

        var random = new Random(1818);
        var live = new Dictionary<string, VolumeRecord>(StringComparer.Ordinal); // volume id -> record (the batch side's)
        var freeExtents = (long)(pool.Catalog.Capacity.FreeBytes / PoolRegistry.DefaultExtentSize);
        var ops = 0;
        var rounds = 0;
        var started = System.Diagnostics.Stopwatch.StartNew();
        while (ops < totalOps)
        {
            // One round: up to 16 writes on distinct volumes, queued at once on the batch side.
            var round = new List<MetadataChange>();
            var touched = new HashSet<string>(StringComparer.Ordinal);
            var size = random.Next(1, 17);
            for (var i = 0; i < size; i++)
            {
                var change = NextChange(random, live, touched, ref freeExtents, batchVg, ops + i);
                if (change is not null)
                {
                    round.Add(change);
                    touched.Add(change.Volume.Id);
                }
            }

            var plainTask = Task.Run(async () =>
            {
                foreach (var change in round)
                {
                    await ApplyPlainAsync(plain, plainVg, change);
                }
            });
            var batchTask = Task.WhenAll(round.Select(c => pool.Writer.WriteAsync(c, TestContext.Current.CancellationToken)));
            await Task.WhenAll(plainTask, batchTask);
            foreach (var change in round)
            {
                if (change is RemoveLv)
                {
                    live.Remove(change.Volume.Id);
                }
                else
                {
                    live[change.Volume.Id] = change.Volume;
                }
            }

            ops += round.Count;
            if (++rounds % 25 == 0)
            {
                AssertSameVg(plainVg, batchVg);
            }
        }

        AssertSameVg(plainVg, batchVg);
        var (commits, batched) = pool.Writer.Batches;
        _output.WriteLine($"{ops} operations per side in {rounds} rounds, {started.Elapsed.TotalSeconds:0.0} s; batch side: {batched} writes in {commits} batched commits, {live.Count} volumes left");
        Assert.True(batched > ops / 2, $"only {batched} of {ops} writes were batched");
        Assert.Equal(0, _plainLu.Lvm("vgck", plainVg).Code);
        var (code, output) = _batchLu.Lvm("vgck", batchVg);
        Assert.True(code == 0, output);

        // The catalogue is what a reload from the VG gives, seqno included (the writer's own backup copy).
        var catalogued = pool.Catalog.Snapshot().OrderBy(v => v.Id, StringComparer.Ordinal).Select(v => (v.Id, v.SizeBytes, string.Join(',', v.Tags().Order(StringComparer.Ordinal)))).ToArray();
        var seqno = pool.Catalog.Capacity.Seqno;
        await pool.LoadAsync(TestContext.Current.CancellationToken);
        Assert.Equal(pool.Catalog.Capacity.Seqno, seqno);
        Assert.Equal(pool.Catalog.Snapshot().OrderBy(v => v.Id, StringComparer.Ordinal).Select(v => (v.Id, v.SizeBytes, string.Join(',', v.Tags().Order(StringComparer.Ordinal)))).ToArray(), catalogued);
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(_state, "controller", "lvm", "batches"), batchVg + "_*.vg"));
    }

    [Fact]
    public async Task A_batch_of_n_writes_is_measured_as_one_commit_of_n_and_a_failed_batch_as_a_failure_and_n_writes_run_alone()
    {
        LoopDevice.Present(_batchLu);
        var vg = "batch" + _suffix;
        var mine = ("pool", vg);
        using var lvm = new SlowLvm();
        using var measured = new Measurements(ControllerMetrics.MeterName, "sharedlvm_pool_write_");
        await using var controller = await InProcessController.StartAsync(Path.Combine(_state, "controller"), "--lvm", lvm.Path);
        await controller.Client.CreatePoolAsync(new CreatePoolRequest { Name = vg, DevicePath = _batchLu.Device, Mode = SharedLvm.Contracts.V1.PoolCreateMode.Initialize });
        var pool = controller.Services.GetRequiredService<PoolRegistry>().Get(vg);
        var reasons = Enum.GetValues<BatchFailure>().Select(WriteMetrics.LabelOf).ToArray();

        // Every reason's series exists at 0 from the pool's start: increase() needs a first sample.
        Assert.All(reasons, r => Assert.Equal([0], measured.Of("sharedlvm_pool_write_batch_failures", mine, ("reason", r))));
        Assert.All(reasons, r => Assert.Equal([0], measured.Of("sharedlvm_pool_write_batch_retried_writes", mine, ("reason", r))));

        // One create held in lvm for a second; the 5 queued behind it are one vgcfgrestore.
        var first = await BehindAStalledCreateAsync(pool, lvm, vg, 0, 5);
        Assert.Equal([1], measured.Of("sharedlvm_pool_write_batch_size", mine, ("kind", "single")));
        Assert.Equal([5], measured.Of("sharedlvm_pool_write_batch_size", mine, ("kind", "restore")));
        Assert.InRange(Assert.Single(measured.Of("sharedlvm_pool_write_commit_duration_seconds", mine, ("kind", "single"))), 1.0, 60);
        Assert.InRange(Assert.Single(measured.Of("sharedlvm_pool_write_commit_duration_seconds", mine, ("kind", "restore"))), 0.0001, 60);
        Assert.Equal(0, measured.Of("sharedlvm_pool_write_batch_failures", mine).Sum());

        // The same with vgcfgrestore refused by lvm: one failure, and the 3 writes each run alone (and commit).
        lvm.Fail("vgcfgrestore");
        var second = await BehindAStalledCreateAsync(pool, lvm, vg, 6, 3);
        lvm.Clear();
        Assert.Equal(1, measured.Of("sharedlvm_pool_write_batch_failures", mine, ("reason", "lvm_failed")).Sum());
        Assert.Equal(1, measured.Of("sharedlvm_pool_write_batch_failures", mine).Sum());
        Assert.Equal(3, measured.Of("sharedlvm_pool_write_batch_retried_writes", mine, ("reason", "lvm_failed")).Sum());
        Assert.Equal(3, measured.Of("sharedlvm_pool_write_batch_retried_writes", mine).Sum());
        Assert.Equal([1, 1, 1, 1, 1], measured.Of("sharedlvm_pool_write_batch_size", mine, ("kind", "single")));
        Assert.Equal([5], measured.Of("sharedlvm_pool_write_batch_size", mine, ("kind", "restore")));
        Assert.Equal(2, measured.Of("sharedlvm_pool_write_commit_duration_seconds", mine, ("kind", "restore")).Count);
        Assert.All(measured.Of("sharedlvm_pool_write_commit_duration_seconds", mine, ("kind", "single")), s => Assert.InRange(s, 1.0, 60));
        Assert.Empty(measured.Of("sharedlvm_pool_write_batch_size", mine, ("kind", "remove")));
        Assert.All(first.Concat(second), v => Assert.NotNull(pool.Catalog.Get(v.Id)));

        // Bounded labels only: no volume ids, no commands.
        Assert.All(measured.LabelsOf("sharedlvm_pool_write_batch_size").Concat(measured.LabelsOf("sharedlvm_pool_write_commit_duration_seconds")),
            l => Assert.Equal(["kind", "pool"], l.Keys.Order(StringComparer.Ordinal)));
        Assert.All(measured.LabelsOf("sharedlvm_pool_write_batch_failures").Concat(measured.LabelsOf("sharedlvm_pool_write_batch_retried_writes")),
            l => Assert.Equal(["pool", "reason"], l.Keys.Order(StringComparer.Ordinal)));
    }

    [Fact]
    public async Task Callers_answered_by_a_batch_are_gathered_with_those_queued_behind_it()
    {
        // 8 callers writing back to back, split at first into 4 in a commit and 4 queued behind it. The
        // writer must gather both halves into one batch, not keep them alternating in batches of 4
        // (the benchmark at 8,000 LVs ran at half the rate that way).
        LoopDevice.Present(_batchLu);
        var vg = "batch" + _suffix;
        using var lvm = new SlowLvm();
        using var measured = new Measurements(ControllerMetrics.MeterName, "sharedlvm_pool_write_");
        await using var controller = await InProcessController.StartAsync(Path.Combine(_state, "controller"), "--lvm", lvm.Path, "--Controller:WriteBatchLinger", "00:00:02");
        await controller.Client.CreatePoolAsync(new CreatePoolRequest { Name = vg, DevicePath = _batchLu.Device, Mode = SharedLvm.Contracts.V1.PoolCreateMode.Initialize });
        var pool = controller.Services.GetRequiredService<PoolRegistry>().Get(vg);
        async Task CallerAsync(int caller)
        {
            for (var i = 0; i < 3; i++)
            {
                await pool.Writer.WriteAsync(NewCreate(vg, (caller * 10) + i), TestContext.Current.CancellationToken);
            }
        }

        lvm.Stall("lvcreate", "before", 1);
        var single = pool.Writer.WriteAsync(NewCreate(vg, 100), TestContext.Current.CancellationToken);
        await Eventually.TrueAsync(() => lvm.Stalled, "the single lvcreate runs");
        lvm.Stall("vgcfgrestore", "before", 0.5);
        var first = Enumerable.Range(0, 4).Select(CallerAsync).ToArray();
        await Eventually.TrueAsync(() => lvm.Stalled, "the first half's vgcfgrestore runs");
        var second = Enumerable.Range(4, 4).Select(CallerAsync).ToArray();
        await Task.WhenAll(first.Concat(second).Append(single));

        Assert.Equal([4, 8, 8, 4], measured.Of("sharedlvm_pool_write_batch_size", ("pool", vg), ("kind", "restore")));
    }

    /// <summary>
    /// A create stalled in lvm for a second, then <paramref name="queued"/> creates queued while it
    /// runs: the writer took the first alone, so the rest are one batch, deterministically.
    /// </summary>
    private static async Task<VolumeRecord[]> BehindAStalledCreateAsync(PoolRuntime pool, SlowLvm lvm, string vg, int first, int queued)
    {
        lvm.Stall("lvcreate", "before", 1);
        var single = pool.Writer.WriteAsync(NewCreate(vg, first), TestContext.Current.CancellationToken);
        await Eventually.TrueAsync(() => lvm.Stalled, "the single lvcreate runs");
        var behind = Enumerable.Range(first + 1, queued).Select(n => pool.Writer.WriteAsync(NewCreate(vg, n), TestContext.Current.CancellationToken)).ToArray();
        return await Task.WhenAll(behind.Prepend(single));
    }

    private static CreateLv NewCreate(string vg, int n) =>
        new("create", new VolumeRecord(VolumeId.New(), $"m{n}", vg, vg, 4 * MiB, SharedLvm.Controller.Catalog.VolumeKind.Standard, string.Empty,
            new Dictionary<string, string>(), null, false, []));

    private static MetadataChange? NextChange(Random random, Dictionary<string, VolumeRecord> live, HashSet<string> touched, ref long freeExtents, string vg, int n)
    {
        var candidates = live.Values.Where(v => !touched.Contains(v.Id)).ToArray();
        var roll = random.Next(100);
        if (candidates.Length < 4 || roll < 35)
        {
            var extents = random.Next(1, 4);
            if (extents > freeExtents || live.Count >= 120)
            {
                return candidates.Length > 0 ? Remove(candidates[random.Next(candidates.Length)], ref freeExtents) : null;
            }

            freeExtents -= extents;
            var record = new VolumeRecord(VolumeId.New(), $"v{n}", vg, vg, (ulong)extents * 4 * MiB, SharedLvm.Controller.Catalog.VolumeKind.Standard, string.Empty,
                new Dictionary<string, string> { ["n"] = n.ToString(CultureInfo.InvariantCulture) }, null, false, []);
            return new CreateLv("create", record);
        }

        var victim = candidates[random.Next(candidates.Length)];
        if (roll < 55)
        {
            var more = random.Next(1, 3);
            if (more > freeExtents)
            {
                return Remove(victim, ref freeExtents);
            }

            freeExtents -= more;
            return new ExtendLv(victim with { SizeBytes = victim.SizeBytes + ((ulong)more * 4 * MiB) });
        }

        if (roll < 85)
        {
            // An attach or a detach: the owner tag flips (what AttachmentService writes).
            var owners = victim.Owners.Count == 0 ? (IReadOnlyList<string>)[$"node-{random.Next(4)}"] : [];
            return new RetagLv(owners.Count > 0 ? "attach" : "detach", victim, victim with { Owners = owners });
        }

        return Remove(victim, ref freeExtents);
    }

    private static RemoveLv Remove(VolumeRecord victim, ref long freeExtents)
    {
        freeExtents += (long)(victim.SizeBytes / (4 * MiB));
        return new RemoveLv(victim);
    }

    private static Task ApplyPlainAsync(LvmMetadataWriter lvm, string vg, MetadataChange change) => change switch
    {
        CreateLv c => lvm.LvCreateAsync(vg, c.Volume.LvName, c.Volume.SizeBytes, c.Volume.Tags(), CancellationToken.None),
        ExtendLv e => lvm.LvExtendAsync(vg, e.Volume.LvName, e.Volume.SizeBytes, CancellationToken.None),
        RetagLv r => lvm.LvChangeTagsAsync(vg, r.Volume.LvName, r.Volume.Tags().Except(r.Before.Tags()), r.Before.Tags().Except(r.Volume.Tags()), CancellationToken.None),
        RemoveLv d => lvm.LvRemoveAsync(vg, d.Volume.LvName, CancellationToken.None),
        _ => throw new ArgumentException(change.GetType().Name, nameof(change)),
    };

    /// <summary>Every field vgcfgbackup writes, LV by LV and segment by segment, but ids, timestamps, hosts and seqno.</summary>
    private void AssertSameVg(string plainVg, string batchVg)
    {
        var plain = Backup(_plainLu!, plainVg);
        var batch = Backup(_batchLu!, batchVg);
        Assert.Equal(Fields(plain.Section, "seqno"), Fields(batch.Section, "seqno"));
        Assert.Equal(plain.Pvs.Select(p => p.PeCount), batch.Pvs.Select(p => p.PeCount));
        Assert.Equal(plain.Lvs.Select(l => l.Name).Order(StringComparer.Ordinal), batch.Lvs.Select(l => l.Name).Order(StringComparer.Ordinal));
        foreach (var lv in plain.Lvs)
        {
            var other = batch.Lvs.Single(l => l.Name == lv.Name);
            Assert.Equal(lv.Tags.Order(StringComparer.Ordinal), other.Tags.Order(StringComparer.Ordinal));
            Assert.Equal(Fields(lv.Section, "tags"), Fields(other.Section, "tags"));
            Assert.Equal(lv.Section.Children.Select(s => s.Name + ":" + Fields(s)), other.Section.Children.Select(s => s.Name + ":" + Fields(s)));
        }
    }

    private static string Fields(MetadataText.Section section, params string[] alsoSkip) =>
        string.Join("; ", section.Items.OfType<MetadataText.Setting>()
            .Where(s => s.Name is not ("id" or "creation_time" or "creation_host") && !alsoSkip.Contains(s.Name))
            .OrderBy(s => s.Name, StringComparer.Ordinal)
            .Select(s => s.Name + "=" + (s.Value is IReadOnlyList<object> list ? "[" + string.Join(",", list) + "]" : s.Value.ToString())));

    private VgMetadata Backup(LoopDevice lu, string vg)
    {
        var file = Path.Combine(_state, vg + ".txt");
        var (code, output) = lu.Lvm("vgcfgbackup", "-f", file, vg);
        Assert.True(code == 0, output);
        return VgMetadata.Parse(File.ReadAllText(file));
    }
}
