using System.Security.Cryptography;
using Grpc.Core;
using SharedLvm.Contracts.V1;
using SharedLvm.Tests.Support;
using GrpcStatusCode = Grpc.Core.StatusCode;

namespace SharedLvm.Tests.Controller.Data;

/// <summary>
/// Clones and wipes end to end: the controller's jobs, a real agent's I/O below LVM on the pool's
/// loop device, the bytes checked in the LU's backing file.
/// </summary>
public sealed class DataJobsTests : IAsyncLifetime
{
    private const ulong MiB = 1024 * 1024;
    private Cluster _cluster = null!;

    private SharedLvm.Contracts.V1.Controller.ControllerClient Api => _cluster.Api;

    public async ValueTask InitializeAsync() =>
        _cluster = await Cluster.StartAsync(new ClusterOptions
        {
            PoolSizeBytes = 512L * 1024 * 1024,
            PoolMetadataSizeBytes = 8 * MiB,
            PoolWwid = "35000c500a0000001",
            // Slow enough to watch a copy run, and to stop or restart it midway.
            ControllerArgs = ["--Controller:DataJobMaxBytesPerSecond", (16 * MiB).ToString(System.Globalization.CultureInfo.InvariantCulture)],
        });

    public async ValueTask DisposeAsync() => await _cluster.DisposeAsync();

    [Fact]
    public async Task A_deleted_volume_is_wiped_before_its_lv_goes_and_the_next_volume_on_its_extents_reads_zeros()
    {
        await _cluster.AddAgentAsync("node-a");
        var old = await _cluster.CreateVolumeAsync("tenant-a", 16 * MiB);
        var oldLayout = _cluster.Lu!.Layout(_cluster.Pool, old.LvName);
        _cluster.Lu.WriteLv(oldLayout, 0, Enumerable.Repeat((byte)0x5A, (int)(16 * MiB)).ToArray());

        await Api.DeleteVolumeAsync(new DeleteVolumeRequest { Id = old.Id });
        await GoneAsync(old.Id);

        var next = await _cluster.CreateVolumeAsync("tenant-b", 16 * MiB);
        var nextLayout = _cluster.Lu.Layout(_cluster.Pool, next.LvName);
        Assert.Equal(oldLayout.Runs.Select(r => r.DeviceOffsetBytes), nextLayout.Runs.Select(r => r.DeviceOffsetBytes)); // LVM reused the freed extents
        Assert.Equal(new byte[16 * MiB], _cluster.Lu.ReadLv(nextLayout, 0, (int)(16 * MiB)));
    }

    [Fact]
    public async Task Without_a_node_that_sees_the_lu_a_deleted_volume_stays_deleting_says_why_and_is_wiped_once_one_comes()
    {
        var volume = await _cluster.CreateVolumeAsync("waits", 8 * MiB);
        await _cluster.AddAgentAsync("node-b", "missing-map"); // READY, but it does not see the LU

        await Api.DeleteVolumeAsync(new DeleteVolumeRequest { Id = volume.Id });

        await Eventually.TrueAsync(async () => (await Api.GetVolumeAsync(new GetVolumeRequest { Id = volume.Id })).Message.Contains("no READY node", StringComparison.Ordinal), "the volume says what it waits for");
        var waiting = await Api.GetVolumeAsync(new GetVolumeRequest { Id = volume.Id });
        Assert.Equal(VolumeState.Deleting, waiting.State);
        Assert.Contains("slvm_wipe_pending", _cluster.Tags(volume), StringComparison.Ordinal);
        var attach = await Assert.ThrowsAsync<RpcException>(async () => await Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volume.Id, Node = "node-b" }));
        Assert.Contains("being deleted", attach.Status.Detail, StringComparison.Ordinal);

        await _cluster.AddAgentAsync("node-a");
        await GoneAsync(volume.Id);
    }

    [Fact]
    public async Task A_clone_copies_with_progress_while_its_source_is_held_then_is_available_with_the_source_data()
    {
        await _cluster.AddAgentAsync("node-a");
        var source = await _cluster.CreateVolumeAsync("golden", 48 * MiB);
        var data = RandomNumberGenerator.GetBytes((int)(48 * MiB));
        Array.Clear(data, 0, (int)(8 * MiB));
        _cluster.Lu!.WriteLv(_cluster.Lu.Layout(_cluster.Pool, source.LvName), 0, data);

        var clone = await Api.CloneVolumeAsync(new CloneVolumeRequest { SourceVolumeId = source.Id, Name = "golden-copy" });
        Assert.Equal(VolumeState.Copying, clone.State);
        await Eventually.TrueAsync(async () => (await Api.GetVolumeAsync(new GetVolumeRequest { Id = clone.Id })).Progress is { DoneBytes: > 0, Node: "node-a", TotalBytes: 48 * MiB },
            "progress from node-a", TimeSpan.FromSeconds(20));
        var attach = await Assert.ThrowsAsync<RpcException>(async () => await Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = source.Id, Node = "node-a" }));
        Assert.Contains("being copied into clone", attach.Status.Detail, StringComparison.Ordinal);

        var done = await UntilStateAsync(clone.Id, VolumeState.Available);
        Assert.Null(done.Progress);
        Assert.DoesNotContain("slvm_copy_pending", _cluster.Tags(clone), StringComparison.Ordinal);
        Assert.Equal(SHA256.HashData(data), SHA256.HashData(_cluster.Lu.ReadLv(_cluster.Lu.Layout(_cluster.Pool, clone.LvName), 0, (int)(48 * MiB))));
        await Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = clone.Id, Node = "node-a" });
    }

    [Fact]
    public async Task A_controller_restarted_mid_copy_resumes_where_the_copy_stood()
    {
        await _cluster.AddAgentAsync("node-a");
        var source = await _cluster.CreateVolumeAsync("big", 64 * MiB);
        var data = RandomNumberGenerator.GetBytes((int)(64 * MiB));
        _cluster.Lu!.WriteLv(_cluster.Lu.Layout(_cluster.Pool, source.LvName), 0, data);
        var clone = await Api.CloneVolumeAsync(new CloneVolumeRequest { SourceVolumeId = source.Id, Name = "big-copy" });
        await Eventually.TrueAsync(async () => (await Api.GetVolumeAsync(new GetVolumeRequest { Id = clone.Id })).Progress is { DoneBytes: >= 16 * MiB },
            "a quarter copied", TimeSpan.FromSeconds(20));

        // Same address: the agent finds it again and registers with it.
        await _cluster.RestartControllerAsync("--listen", $"127.0.0.1:{_cluster.Controller.Address.Port}",
            "--Controller:DataJobMaxBytesPerSecond", (16 * MiB).ToString(System.Globalization.CultureInfo.InvariantCulture));

        await UntilStateAsync(clone.Id, VolumeState.Available);
        Assert.Contains(_cluster.Logs.Records, r => r.EventId.Id == 3901 && r.Message.Contains("copy started on node node-a from byte", StringComparison.Ordinal) && !r.Message.Contains("from byte 0 ", StringComparison.Ordinal));
        Assert.Equal(SHA256.HashData(data), SHA256.HashData(_cluster.Lu.ReadLv(_cluster.Lu.Layout(_cluster.Pool, clone.LvName), 0, (int)(64 * MiB))));
    }

    [Fact]
    public async Task Deleting_a_clone_mid_copy_stops_the_copy_then_wipes_it()
    {
        await _cluster.AddAgentAsync("node-a");
        var source = await _cluster.CreateVolumeAsync("src", 64 * MiB);
        _cluster.Lu!.WriteLv(_cluster.Lu.Layout(_cluster.Pool, source.LvName), 0, Enumerable.Repeat((byte)0x77, (int)(64 * MiB)).ToArray());
        var clone = await Api.CloneVolumeAsync(new CloneVolumeRequest { SourceVolumeId = source.Id, Name = "src-copy" });
        await Eventually.TrueAsync(async () => (await Api.GetVolumeAsync(new GetVolumeRequest { Id = clone.Id })).Progress is { DoneBytes: > 0 }, "copying", TimeSpan.FromSeconds(20));
        var layout = _cluster.Lu.Layout(_cluster.Pool, clone.LvName);

        await Api.DeleteVolumeAsync(new DeleteVolumeRequest { Id = clone.Id });

        await GoneAsync(clone.Id);
        Assert.Equal(new byte[64 * MiB], _cluster.Lu.ReadLv(layout, 0, (int)(64 * MiB)));
        await Api.DeleteVolumeAsync(new DeleteVolumeRequest { Id = source.Id }); // the source is free again
    }

    [Fact]
    public async Task A_pool_that_opted_out_removes_at_once()
    {
        await Api.UpdatePoolAsync(new UpdatePoolRequest { Name = _cluster.Pool, WipeOnDelete = WipePolicy.None });
        var volume = await _cluster.CreateVolumeAsync("scratch", 8 * MiB);

        await Api.DeleteVolumeAsync(new DeleteVolumeRequest { Id = volume.Id });

        var e = await Assert.ThrowsAsync<RpcException>(async () => await Api.GetVolumeAsync(new GetVolumeRequest { Id = volume.Id }));
        Assert.Equal(GrpcStatusCode.NotFound, e.StatusCode);
        Assert.Equal(WipePolicy.None, (await Api.GetPoolAsync(new GetPoolRequest { Name = _cluster.Pool })).WipeOnDelete);
    }

    [Fact]
    public async Task Clones_of_an_attached_volume_or_a_clone_still_copying_are_refused()
    {
        await _cluster.AddAgentAsync("node-a");
        var attached = await _cluster.CreateVolumeAsync("in-use", 8 * MiB);
        await Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = attached.Id, Node = "node-a" });

        var e = await Assert.ThrowsAsync<RpcException>(async () => await Api.CloneVolumeAsync(new CloneVolumeRequest { SourceVolumeId = attached.Id, Name = "torn" }));

        Assert.Equal(GrpcStatusCode.FailedPrecondition, e.StatusCode);
        Assert.Contains("would be torn", e.Status.Detail, StringComparison.Ordinal);
        Assert.Null((await Api.ListVolumesAsync(new ListVolumesRequest { Pool = _cluster.Pool })).Volumes.FirstOrDefault(v => v.Name == "torn"));
    }

    private async Task GoneAsync(string id) =>
        await Eventually.TrueAsync(async () =>
        {
            try
            {
                await Api.GetVolumeAsync(new GetVolumeRequest { Id = id });
                return false;
            }
            catch (RpcException e) when (e.StatusCode == GrpcStatusCode.NotFound)
            {
                return true;
            }
        }, $"volume {id} wiped and gone", TimeSpan.FromSeconds(30));

    private async Task<Volume> UntilStateAsync(string id, VolumeState state)
    {
        Volume? last = null;
        await Eventually.TrueAsync(async () => (last = await Api.GetVolumeAsync(new GetVolumeRequest { Id = id })).State == state,
            $"volume {id} becomes {state}", TimeSpan.FromSeconds(30));
        return last!;
    }
}
