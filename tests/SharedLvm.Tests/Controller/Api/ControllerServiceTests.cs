using Grpc.Core;
using SharedLvm.Contracts.V1;
using SharedLvm.Grpc;
using SharedLvm.Tests.Support;
using GrpcStatusCode = Grpc.Core.StatusCode;
using ControllerRpc = SharedLvm.Contracts.V1.Controller;

namespace SharedLvm.Tests.Controller.Api;

/// <summary>
/// The controller API in-process over real gRPC, writing real LVM metadata on a loop device.
/// Root; fails without it unless SHAREDLVM_SKIP_LVM_TESTS=1.
/// </summary>
public sealed class ControllerServiceTests : IAsyncLifetime
{
    private const ulong MiB = 1024 * 1024;
    private readonly string _state = Directory.CreateTempSubdirectory("slvm-ctl-").FullName;
    private readonly SlowLvm _slowLvm = new();
    private LoopDevice? _lu;
    private InProcessController _controller = null!;
    private string _pool = null!;

    private ControllerRpc.ControllerClient Api => _controller.Client;

    public async ValueTask InitializeAsync()
    {
        _lu = LoopDevice.Create(2L * 1024 * 1024 * 1024);
        _pool = "pool" + Guid.NewGuid().ToString("N")[..6];
        LoopDevice.Present(_lu);

        _controller = await StartControllerAsync();
        await Api.CreatePoolAsync(new CreatePoolRequest { Name = _pool, DevicePath = _lu.Device, Mode = PoolCreateMode.Initialize });
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (_lu is not null)
            {
                await _controller.DisposeAsync();
            }
        }
        finally
        {
            _lu?.Lvm("vgremove", "-f", _pool);
            _lu?.Dispose();
            _slowLvm.Dispose();
            Directory.Delete(_state, recursive: true);
        }
    }

    [Fact]
    public async Task Pool_reports_capacity_and_a_metadata_area_sized_for_10000_volumes()
    {
        LoopDevice.Present(_lu);

        var pool = await Api.GetPoolAsync(new GetPoolRequest { Name = _pool });
        Assert.True(pool.MetadataSizeBytes >= 128 * MiB, $"metadata area {pool.MetadataSizeBytes}");
        Assert.Equal(4 * MiB, pool.ExtentSizeBytes);
        Assert.InRange(pool.SizeBytes, 1800 * MiB, 2048 * MiB);
        Assert.Equal(pool.SizeBytes, pool.FreeBytes);
        Assert.Equal(HealthState.Ok, pool.Health);
        Assert.Equal(_lu.Device, pool.DevicePath);

        // Creating it again is idempotent; on another device it is ALREADY_EXISTS.
        var again = await Api.CreatePoolAsync(new CreatePoolRequest { Name = _pool, DevicePath = _lu.Device, Mode = PoolCreateMode.Initialize });
        Assert.Equal(pool.Name, again.Name);
        var listed = await Api.ListPoolsAsync(new ListPoolsRequest());
        Assert.Contains(listed.Pools, p => p.Name == _pool);
    }

    [Theory]
    [InlineData("bad name", "/dev/loop0", "", PoolCreateMode.Initialize, GrpcStatusCode.InvalidArgument)]
    [InlineData("p1", "", "", PoolCreateMode.Initialize, GrpcStatusCode.InvalidArgument)]
    [InlineData("p1", "/dev/loop0", "3500-not-hex", PoolCreateMode.Initialize, GrpcStatusCode.InvalidArgument)]
    [InlineData("p1", "", "not-hex", PoolCreateMode.Initialize, GrpcStatusCode.InvalidArgument)]
    [InlineData("p1", "/etc/passwd", "", PoolCreateMode.Initialize, GrpcStatusCode.InvalidArgument)]
    [InlineData("p1", "/dev/nonexistent-lu", "", PoolCreateMode.Initialize, GrpcStatusCode.FailedPrecondition)]
    [InlineData("p1", "/dev/loop0", "", PoolCreateMode.Unspecified, GrpcStatusCode.InvalidArgument)]
    public async Task Bad_pool_requests_are_refused(string name, string device, string wwid, PoolCreateMode mode, GrpcStatusCode expected)
    {
        LoopDevice.Present(_lu);

        var e = await Assert.ThrowsAsync<RpcException>(async () => await
            Api.CreatePoolAsync(new CreatePoolRequest { Name = name, DevicePath = device, Wwid = wwid, Mode = mode }));
        Assert.Equal(expected, e.StatusCode);
        Assert.False(string.IsNullOrWhiteSpace(e.Status.Detail));
    }

    [Fact]
    public async Task A_pool_keeps_the_wwid_nodes_look_for_beside_the_path_the_controller_writes_through()
    {
        using var lu = LoopDevice.Create(256L * 1024 * 1024);
        LoopDevice.Present(lu);

        var name = "ww" + Guid.NewGuid().ToString("N")[..6];
        try
        {
            // The SAN lab's shape: the LU's WWID for the agents, a direct-I/O loop device for the controller.
            var pool = await Api.CreatePoolAsync(new CreatePoolRequest
            {
                Name = name, Wwid = "35000c500a0000099", DevicePath = lu.Device, Mode = PoolCreateMode.Initialize, MetadataSizeBytes = 4 * MiB,
            });
            Assert.Equal("35000c500a0000099", pool.Wwid);
            Assert.Equal(lu.Device, pool.DevicePath);
            Assert.Contains(name, lu.Lvm("vgs", "--noheadings", "-o", "vg_name").Output, StringComparison.Ordinal);
        }
        finally
        {
            await Api.ForgetPoolAsync(new ForgetPoolRequest { Name = name });
            lu.Lvm("vgremove", "-f", name);
        }
    }

    [Fact]
    public async Task A_device_holding_another_vg_is_not_initialised_and_adopt_needs_a_vg()
    {
        LoopDevice.Present(_lu);

        var e = await Assert.ThrowsAsync<RpcException>(async () => await
            Api.CreatePoolAsync(new CreatePoolRequest { Name = "other", DevicePath = _lu.Device, Mode = PoolCreateMode.Initialize }));
        Assert.Equal(GrpcStatusCode.AlreadyExists, e.StatusCode);

        using var blank = LoopDevice.Create(64 * 1024 * 1024)!;
        var adopt = await Assert.ThrowsAsync<RpcException>(async () => await
            Api.CreatePoolAsync(new CreatePoolRequest { Name = "blank", DevicePath = blank.Device, Mode = PoolCreateMode.Adopt }));
        Assert.Equal(GrpcStatusCode.FailedPrecondition, adopt.StatusCode);
        Assert.Contains("holds no VG", adopt.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Create_is_idempotent_by_name_rounds_to_extents_and_lands_in_lvm_with_safe_flags()
    {
        LoopDevice.Present(_lu);

        var labels = new Dictionary<string, string> { ["tenant"] = "acme", ["note"] = "ünïcode = + , / spaces" };
        var created = await CreateAsync("vm-1-disk", 10 * MiB, labels);
        Assert.Equal(12 * MiB, created.SizeBytes);
        Assert.Equal(VolumeState.Available, created.State);
        Assert.Equal($"slvm-{created.Id}", created.LvName);
        Assert.Equal(labels, created.Labels);

        var again = await CreateAsync("vm-1-disk", 10 * MiB);
        Assert.Equal(created.Id, again.Id);

        var conflict = await Assert.ThrowsAsync<RpcException>(async () => await CreateAsync("vm-1-disk", 20 * MiB));
        Assert.Equal(GrpcStatusCode.AlreadyExists, conflict.StatusCode);

        // What lvm holds: one LV, not auto-activated anywhere, tags within LVM's character set.
        var (code, output) = _lu.Lvm("lvs", "--noheadings", "-o", "lv_name,lv_autoactivation,lv_tags", _pool);
        Assert.Equal(0, code);
        var row = Assert.Single(output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries), l => l.StartsWith("slvm-", StringComparison.Ordinal));
        Assert.DoesNotContain("enabled", row, StringComparison.Ordinal);
        Assert.Contains("slvm_name=vm-1-disk", row, StringComparison.Ordinal);
        Assert.DoesNotContain("ü", row, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("", 4 * MiB, GrpcStatusCode.InvalidArgument)]
    [InlineData("has space", 4 * MiB, GrpcStatusCode.InvalidArgument)]
    [InlineData("-leading-dash", 4 * MiB, GrpcStatusCode.InvalidArgument)]
    [InlineData("$(reboot)", 4 * MiB, GrpcStatusCode.InvalidArgument)]
    [InlineData("ok", 0UL, GrpcStatusCode.InvalidArgument)]
    [InlineData("ok", 100UL * 1024 * MiB, GrpcStatusCode.ResourceExhausted)]
    public async Task Bad_volume_requests_get_a_clear_status_and_change_nothing(string name, ulong size, GrpcStatusCode expected)
    {
        LoopDevice.Present(_lu);

        var before = LvCount();
        var e = await Assert.ThrowsAsync<RpcException>(async () => await CreateAsync(name, size));
        Assert.Equal(expected, e.StatusCode);
        Assert.Equal(before, LvCount());
    }

    [Fact]
    public async Task Bad_labels_and_unknown_pools_are_refused()
    {
        LoopDevice.Present(_lu);

        var badKey = await Assert.ThrowsAsync<RpcException>(async () => await CreateAsync("v", MiB, new Dictionary<string, string> { ["Bad Key"] = "x" }));
        Assert.Equal(GrpcStatusCode.InvalidArgument, badKey.StatusCode);
        var longValue = await Assert.ThrowsAsync<RpcException>(async () => await CreateAsync("v", MiB, new Dictionary<string, string> { ["k"] = new string('x', 300) }));
        Assert.Equal(GrpcStatusCode.InvalidArgument, longValue.StatusCode);
        var noPool = await Assert.ThrowsAsync<RpcException>(async () => await
            Api.CreateVolumeAsync(new CreateVolumeRequest { Pool = "nopool", Name = "v", SizeBytes = MiB }));
        Assert.Equal(GrpcStatusCode.NotFound, noPool.StatusCode);
        Assert.Equal(0, LvCount());
    }

    [Fact]
    public async Task Get_list_filter_and_page()
    {
        LoopDevice.Present(_lu);

        var ids = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            ids.Add((await CreateAsync($"disk-{i}", MiB, new Dictionary<string, string> { ["tier"] = i % 2 == 0 ? "gold" : "bronze" })).Id);
        }

        Assert.Equal("disk-3", (await Api.GetVolumeAsync(new GetVolumeRequest { Id = ids[3] })).Name);
        Assert.Equal(ids[2], (await Api.GetVolumeAsync(new GetVolumeRequest { Pool = _pool, Name = "disk-2" })).Id);
        var missing = await Assert.ThrowsAsync<RpcException>(async () => await Api.GetVolumeAsync(new GetVolumeRequest { Id = new string('a', 26) }));
        Assert.Equal(GrpcStatusCode.NotFound, missing.StatusCode);
        var malformed = await Assert.ThrowsAsync<RpcException>(async () => await Api.GetVolumeAsync(new GetVolumeRequest { Id = "x'; drop" }));
        Assert.Equal(GrpcStatusCode.InvalidArgument, malformed.StatusCode);

        var seen = new List<string>();
        string token = string.Empty;
        var pages = 0;
        do
        {
            var page = await Api.ListVolumesAsync(new ListVolumesRequest { Pool = _pool, PageSize = 2, PageToken = token });
            Assert.Equal(5u, page.Total);
            seen.AddRange(page.Volumes.Select(v => v.Id));
            token = page.NextPageToken;
            pages++;
        }
        while (token.Length > 0);
        Assert.Equal(3, pages);
        Assert.Equal(ids.Order(StringComparer.Ordinal), seen);

        var gold = new ListVolumesRequest { Pool = _pool };
        gold.LabelSelector["tier"] = "gold";
        Assert.Equal(3u, (await Api.ListVolumesAsync(gold)).Total);
        var tooBig = await Assert.ThrowsAsync<RpcException>(async () => await Api.ListVolumesAsync(new ListVolumesRequest { PageSize = 5000 }));
        Assert.Equal(GrpcStatusCode.InvalidArgument, tooBig.StatusCode);
    }

    [Fact]
    public async Task Delete_marks_the_lv_for_wiping_by_default_and_removes_it_at_once_where_the_pool_opted_out()
    {
        LoopDevice.Present(_lu);

        // The default (zero): the LV stays, DELETING, until an agent wiped it (none runs here).
        var kept = await CreateAsync("wiped-later", MiB);
        await Api.DeleteVolumeAsync(new DeleteVolumeRequest { Id = kept.Id });
        Assert.Equal(VolumeState.Deleting, (await Api.GetVolumeAsync(new GetVolumeRequest { Id = kept.Id })).State);
        Assert.Contains("slvm_wipe_pending", _lu.Lvm("lvs", "--noheadings", "-o", "lv_tags", $"{_pool}/{kept.LvName}").Output, StringComparison.Ordinal);
        await Api.DeleteVolumeAsync(new DeleteVolumeRequest { Id = kept.Id });
        Assert.Equal(1, LvCount());

        Assert.Equal(WipePolicy.None, (await Api.UpdatePoolAsync(new UpdatePoolRequest { Name = _pool, WipeOnDelete = WipePolicy.None })).WipeOnDelete);
        var volume = await CreateAsync("doomed", MiB);
        Assert.Equal(2, LvCount());
        await Api.DeleteVolumeAsync(new DeleteVolumeRequest { Id = volume.Id });
        Assert.Equal(1, LvCount());
        await Api.DeleteVolumeAsync(new DeleteVolumeRequest { Id = volume.Id });
        var pool = await Api.GetPoolAsync(new GetPoolRequest { Name = _pool });
        Assert.Equal(pool.SizeBytes - MiB * 4, pool.FreeBytes); // the one extent of the volume still being deleted
        Assert.Equal(1u, pool.VolumeCount);
    }

    [Fact]
    public async Task Extend_grows_never_shrinks_and_set_labels_replaces()
    {
        LoopDevice.Present(_lu);

        var volume = await CreateAsync("growing", 8 * MiB, new Dictionary<string, string> { ["a"] = "1", ["b"] = "2" });
        var grown = await Api.ExtendVolumeAsync(new ExtendVolumeRequest { Id = volume.Id, SizeBytes = 30 * MiB });
        Assert.Equal(32 * MiB, grown.SizeBytes);
        var same = await Api.ExtendVolumeAsync(new ExtendVolumeRequest { Id = volume.Id, SizeBytes = 4 * MiB });
        Assert.Equal(32 * MiB, same.SizeBytes);
        Assert.Contains("33554432B", _lu.Lvm("lvs", "--noheadings", "--units", "b", "-o", "lv_size", $"{_pool}/{volume.LvName}").Output, StringComparison.Ordinal);

        var relabel = new SetVolumeLabelsRequest { Id = volume.Id };
        relabel.Labels["b"] = "3";
        relabel.Labels["c"] = "new";
        var labelled = await Api.SetVolumeLabelsAsync(relabel);
        Assert.Equal(new Dictionary<string, string> { ["b"] = "3", ["c"] = "new" }, labelled.Labels);

        var missing = await Assert.ThrowsAsync<RpcException>(async () => await Api.ExtendVolumeAsync(new ExtendVolumeRequest { Id = new string('b', 26), SizeBytes = MiB }));
        Assert.Equal(GrpcStatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task Clone_records_its_intent_and_snapshots_need_device_mapper_on_the_controller_host_which_the_pool_shows()
    {
        LoopDevice.Present(_lu);

        var source = await CreateAsync("golden-image", 16 * MiB);
        var clone = await Api.CloneVolumeAsync(new CloneVolumeRequest { SourceVolumeId = source.Id, Name = "vm-7-root" });
        Assert.Equal(VolumeState.Copying, clone.State);
        Assert.Equal(VolumeKind.Clone, clone.Kind);
        Assert.Equal(source.Id, clone.SourceVolumeId);
        Assert.Equal(source.SizeBytes, clone.SizeBytes);

        var snapshot = new CreateSnapshotRequest { SourceVolumeId = source.Id, Name = "golden-snap" };
        // Ask the kernel: lvm creates /dev/mapper/control even where the driver is missing.
        if (File.ReadAllText("/proc/misc").Contains("device-mapper", StringComparison.Ordinal))
        {
            var snap = await Api.CreateSnapshotAsync(snapshot);
            Assert.Equal(VolumeKind.Snapshot, snap.Kind);
        }
        else
        {
            // Refused before anything is written or journaled, and the pool says so up front.
            var seqno = (await Api.GetPoolAsync(new GetPoolRequest { Name = _pool })).Seqno;
            var e = await Assert.ThrowsAsync<RpcException>(async () => await Api.CreateSnapshotAsync(snapshot));
            Assert.Equal(GrpcStatusCode.FailedPrecondition, e.StatusCode);
            Assert.Contains("no device-mapper driver", e.Status.Detail, StringComparison.Ordinal);
            var restore = await Assert.ThrowsAsync<RpcException>(async () => await Api.RestoreSnapshotAsync(new RestoreSnapshotRequest { SnapshotId = source.Id }));
            Assert.Equal(GrpcStatusCode.FailedPrecondition, restore.StatusCode);
            Assert.Contains("can't restore a snapshot", restore.Status.Detail, StringComparison.Ordinal);
            Assert.Equal(2, LvCount());
            var pool = await Api.GetPoolAsync(new GetPoolRequest { Name = _pool });
            Assert.Equal(seqno, pool.Seqno);
            Assert.Contains("no device-mapper driver", pool.SnapshotsUnavailable, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_new_controller_host_rebuilds_the_catalogue_from_the_vg_alone()
    {
        LoopDevice.Present(_lu);

        var labels = new Dictionary<string, string> { ["owner"] = "team-ä", ["x"] = "a=b+c" };
        var volume = await CreateAsync("survivor", 5 * MiB, labels);
        await _controller.DisposeAsync();
        Directory.Delete(_state, recursive: true);

        _controller = await StartControllerAsync();
        await Api.CreatePoolAsync(new CreatePoolRequest { Name = _pool, DevicePath = _lu.Device, Mode = PoolCreateMode.Adopt });
        var rebuilt = await Api.GetVolumeAsync(new GetVolumeRequest { Pool = _pool, Name = "survivor" });
        Assert.Equal(volume.Id, rebuilt.Id);
        Assert.Equal(volume.SizeBytes, rebuilt.SizeBytes);
        Assert.Equal(labels, rebuilt.Labels);
    }

    [Fact]
    public async Task A_second_operation_on_a_volume_in_flight_is_aborted()
    {
        LoopDevice.Present(_lu);

        var volume = await CreateAsync("busy", 4 * MiB);
        _slowLvm.Stall("lvextend", "before", 2);
        var first = Api.ExtendVolumeAsync(new ExtendVolumeRequest { Id = volume.Id, SizeBytes = 8 * MiB });
        await Eventually.TrueAsync(() => _slowLvm.Stalled, "the extend's lvextend is running");
        var second = await Assert.ThrowsAsync<RpcException>(async () => await Api.DeleteVolumeAsync(new DeleteVolumeRequest { Id = volume.Id }));
        Assert.Equal(GrpcStatusCode.Aborted, second.StatusCode);
        Assert.Contains("extend", second.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(8 * MiB, (await first).SizeBytes);
    }

    [Fact]
    public async Task An_lvm_timeout_is_reconciled_from_the_vg_committed_or_not()
    {
        LoopDevice.Present(_lu);

        await _controller.DisposeAsync();
        _controller = await StartControllerAsync("--lvm-timeout", "1");
        _controller.Logs.Expect(3203); // the timed-out lvm this test provokes

        // Killed before lvm ran: nothing committed, UNAVAILABLE, and the retry creates it.
        _slowLvm.Stall("lvcreate", "before", 5);
        var e = await Assert.ThrowsAsync<RpcException>(async () => await CreateAsync("timeout-before", MiB));
        Assert.Equal(GrpcStatusCode.Unavailable, e.StatusCode);
        Assert.Equal(0, LvCount());

        // Killed after lvm committed: the controller finds the LV and answers success.
        _slowLvm.Stall("lvcreate", "after", 5);
        var committed = await CreateAsync("timeout-after", MiB);
        Assert.Equal(1, LvCount());
        _slowLvm.Clear();
        Assert.Equal(committed.Id, (await CreateAsync("timeout-after", MiB)).Id);
        Assert.Equal(2, (await CreateAsync("timeout-before", MiB)) is not null ? LvCount() : -1);
    }

    [Fact]
    public async Task A_full_write_queue_answers_resource_exhausted()
    {
        LoopDevice.Present(_lu);

        await _controller.DisposeAsync();
        _controller = await StartControllerAsync("--write-queue", "1");
        _slowLvm.Stall("lvcreate", "before", 1);
        var calls = Enumerable.Range(0, 4).Select(i => CreateAsync($"q-{i}", MiB)).ToArray();
        var outcomes = await Task.WhenAll(calls.Select(async c =>
        {
            try
            {
                await c;
                return GrpcStatusCode.OK;
            }
            catch (RpcException e)
            {
                return e.StatusCode;
            }
        }));
        Assert.Contains(GrpcStatusCode.ResourceExhausted, outcomes);
        Assert.Contains(GrpcStatusCode.OK, outcomes);
        Assert.Equal(outcomes.Count(o => o == GrpcStatusCode.OK), LvCount());
    }

    [Fact]
    public async Task New_volumes_are_refused_before_the_metadata_area_is_full()
    {
        LoopDevice.Present(_lu);

        var pool = await Api.GetPoolAsync(new GetPoolRequest { Name = _pool });
        await _controller.DisposeAsync();

        // Leave room for only a few LVs' metadata so the test runs in seconds.
        var reserve = pool.MetadataFreeBytes - 3000;
        _controller = await StartControllerAsync("--Controller:MetadataReserveBytes", reserve.ToString(System.Globalization.CultureInfo.InvariantCulture));
        RpcException? refused = null;
        var created = 0;
        for (var i = 0; i < 50 && refused is null; i++)
        {
            try
            {
                await CreateAsync($"meta-{i}", MiB, new Dictionary<string, string> { ["padding"] = new string('p', 200) });
                created++;
            }
            catch (RpcException e)
            {
                refused = e;
            }
        }

        Assert.NotNull(refused);
        Assert.Equal(GrpcStatusCode.ResourceExhausted, refused.StatusCode);
        Assert.Contains("metadata area is full", refused.Status.Detail, StringComparison.Ordinal);
        Assert.InRange(created, 1, 20);
        Assert.Equal(created, LvCount());
        var after = await Api.GetPoolAsync(new GetPoolRequest { Name = _pool });
        Assert.True(after.MetadataFreeBytes < reserve, $"{after.MetadataFreeBytes} < {reserve}");
        Assert.Equal(0, _lu.Lvm("vgck", _pool).Code);
    }

    [Fact]
    public async Task A_foreign_metadata_write_raises_an_alarm_and_reloads()
    {
        LoopDevice.Present(_lu);

        await _controller.DisposeAsync();
        _controller = await StartControllerAsync("--Controller:ForeignWriteCheckInterval", "00:00:00.300");
        _controller.Logs.Expect(3003); // the foreign write this test makes
        using var watch = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var call = Api.WatchEvents(new WatchEventsRequest { Kinds = { EventKind.Alarm } }, cancellationToken: watch.Token);
        var alarms = call.ResponseStream.ReadAllAsync(watch.Token).GetAsyncEnumerator(watch.Token);
        var next = alarms.MoveNextAsync();

        Assert.Equal(0, _lu.Lvm("lvcreate", "-an", "-Zn", "-L", "4m", "-n", "intruder", _pool).Code);
        Assert.True(await next);
        Assert.Contains("another host wrote its metadata", alarms.Current.Message, StringComparison.Ordinal);
        var pool = await Api.GetPoolAsync(new GetPoolRequest { Name = _pool });
        Assert.Equal(HealthState.Failed, pool.Health);
        Assert.Equal(pool.SizeBytes - (4 * MiB), pool.FreeBytes);
        await watch.CancelAsync();
    }

    [Fact]
    public async Task Watch_streams_volume_events_each_carrying_the_volume_as_it_now_is()
    {
        LoopDevice.Present(_lu);

        using var watch = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var call = Api.WatchEvents(new WatchEventsRequest { Kinds = { EventKind.VolumeChanged } }, cancellationToken: watch.Token);
        var events = call.ResponseStream.ReadAllAsync(watch.Token).GetAsyncEnumerator(watch.Token);
        var next = events.MoveNextAsync();
        await Task.Delay(200);
        var volume = await CreateAsync("watched", 4 * MiB);
        Assert.True(await next);
        Assert.Equal((EventKind.VolumeChanged, volume.Id), (events.Current.Kind, events.Current.Subject));
        Assert.Equal((volume.Id, "watched", 4 * MiB, VolumeState.Available), (events.Current.Volume.Id, events.Current.Volume.Name, events.Current.Volume.SizeBytes, events.Current.Volume.State));

        await Api.ExtendVolumeAsync(new ExtendVolumeRequest { Id = volume.Id, SizeBytes = 8 * MiB });
        Assert.True(await events.MoveNextAsync());
        Assert.Equal(8 * MiB, events.Current.Volume.SizeBytes);

        await Api.SetVolumeLabelsAsync(new SetVolumeLabelsRequest { Id = volume.Id, Labels = { ["tenant"] = "acme" } });
        Assert.True(await events.MoveNextAsync());
        Assert.Equal("acme", events.Current.Volume.Labels["tenant"]);
        await watch.CancelAsync();
    }

    private Task<InProcessController> StartControllerAsync(params string[] extra) =>
        InProcessController.StartAsync(_state, ["--lvm", _slowLvm.Path, .. extra]);

    private Task<Volume> CreateAsync(string name, ulong size, IDictionary<string, string>? labels = null)
    {
        var request = new CreateVolumeRequest { Pool = _pool, Name = name, SizeBytes = size };
        if (labels is not null)
        {
            request.Labels.Add(labels);
        }

        return Api.CreateVolumeAsync(request).ResponseAsync;
    }

    private int LvCount()
    {
        var (code, output) = _lu!.Lvm("lvs", "--noheadings", "-o", "lv_name", _pool);
        Assert.Equal(0, code);
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Count(l => l.StartsWith("slvm-", StringComparison.Ordinal));
    }
}
