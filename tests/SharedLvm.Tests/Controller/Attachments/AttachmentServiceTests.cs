using Grpc.Core;
using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using SharedLvm.Agent;
using SharedLvm.Agent.Lvm;
using SharedLvm.Contracts.V1;
using SharedLvm.Grpc;
using SharedLvm.Tests.Support;
using GrpcStatusCode = Grpc.Core.StatusCode;
using ControllerRpc = SharedLvm.Contracts.V1.Controller;

namespace SharedLvm.Tests.Controller.Attachments;

/// <summary>
/// Exclusive attach end to end in-process: the real controller writing real tags on a loop-device VG,
/// real agents over gRPC; only activation is faked (no device-mapper here), and the fake enforces
/// volume_list from the LV's real tags as LVM does. The SAN lab proves the real activation.
/// </summary>
public sealed class AttachmentServiceTests : IAsyncLifetime
{
    private const ulong MiB = 1024 * 1024;
    private Cluster _cluster = null!;

    private ControllerRpc.ControllerClient Api => _cluster.Api;

    public async ValueTask InitializeAsync() => _cluster = await Cluster.StartAsync(new ClusterOptions { PoolSizeBytes = 1L * 1024 * 1024 * 1024 });

    public async ValueTask DisposeAsync() => await _cluster.DisposeAsync();

    [Fact]
    public async Task Attach_tags_then_activates_a_second_node_is_refused_and_lvm_itself_refuses_it_too()
    {
        var (a, b) = (await _cluster.AddAgentAsync("node-a"), await _cluster.AddAgentAsync("node-b"));
        var volume = await _cluster.CreateVolumeAsync("vm-1");
        var attachment = await Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volume.Id, Node = "node-a" });
        Assert.Equal(AttachmentState.Attached, attachment.State);
        Assert.Equal($"/dev/{_cluster.Pool}/{volume.LvName}", attachment.Device.Path);
        Assert.Contains("sharedlvm_owner_node-a", _cluster.Tags(volume), StringComparison.Ordinal);
        Assert.True(_cluster.Activator("node-a").IsActive(_cluster.Pool, volume.LvName));
        var seen = await Api.GetVolumeAsync(new GetVolumeRequest { Id = volume.Id });
        Assert.Equal(VolumeState.Attached, seen.State);
        Assert.Equal("node-a", Assert.Single(seen.Attachments).Node);

        // Attaching again to the same node is idempotent.
        Assert.Equal(AttachmentState.Attached, (await Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volume.Id, Node = "node-a" })).State);

        var second = await Assert.ThrowsAsync<RpcException>(async () => await Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volume.Id, Node = "node-b" }));
        Assert.Equal(GrpcStatusCode.FailedPrecondition, second.StatusCode);
        Assert.Contains("attached to node-a", second.Status.Detail, StringComparison.Ordinal);
        Assert.False(_cluster.Activator("node-b").IsActive(_cluster.Pool, volume.LvName));

        // A stale or forged order sent straight to node-b's agent: refused by the tag check.
        var direct = await Assert.ThrowsAsync<RpcException>(async () => await b.Client.ActivateVolumeAsync(new ActivateVolumeRequest
        {
            Header = new CommandHeader { Epoch = new Epoch { Value = 1 }, NodeName = "node-b" },
            Lv = new LvRef { VgName = _cluster.Pool, LvName = volume.LvName },
        }));
        Assert.Equal(GrpcStatusCode.FailedPrecondition, direct.StatusCode);
        Assert.Contains("not tagged for this node", direct.Status.Detail, StringComparison.Ordinal);
        Assert.NotNull(a);
    }

    [Fact]
    public async Task Move_is_detach_then_attach_and_detach_is_refused_while_the_device_is_open()
    {
        await _cluster.AddAgentAsync("node-a");
        await _cluster.AddAgentAsync("node-b");
        var volume = await _cluster.CreateVolumeAsync("vm-2");
        await Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volume.Id, Node = "node-a" });

        _cluster.Activator("node-a").Open.Add(volume.LvName);
        var busy = await Assert.ThrowsAsync<RpcException>(async () => await Api.DetachVolumeAsync(new DetachVolumeRequest { VolumeId = volume.Id, Node = "node-a" }));
        Assert.Equal(GrpcStatusCode.FailedPrecondition, busy.StatusCode);
        Assert.Contains("pid 4242 (qemu-system-x86)", busy.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("sharedlvm_owner_node-a", _cluster.Tags(volume), StringComparison.Ordinal);

        _cluster.Activator("node-a").Open.Clear();
        await Api.DetachVolumeAsync(new DetachVolumeRequest { VolumeId = volume.Id, Node = "node-a" });
        Assert.DoesNotContain("sharedlvm_owner", _cluster.Tags(volume), StringComparison.Ordinal);
        Assert.False(_cluster.Activator("node-a").IsActive(_cluster.Pool, volume.LvName));
        await Api.DetachVolumeAsync(new DetachVolumeRequest { VolumeId = volume.Id, Node = "node-a" }); // not attached: succeeds

        var moved = await Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volume.Id, Node = "node-b" });
        Assert.Equal("node-b", moved.Node);
        Assert.Contains("sharedlvm_owner_node-b", _cluster.Tags(volume), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Extend_of_an_attached_volume_answers_once_the_owner_device_has_the_new_size()
    {
        await _cluster.AddAgentAsync("node-a");
        var volume = await _cluster.CreateVolumeAsync("vm-3");
        await Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volume.Id, Node = "node-a" });
        var grown = await Api.ExtendVolumeAsync(new ExtendVolumeRequest { Id = volume.Id, SizeBytes = 64 * MiB });
        Assert.Equal(64 * MiB, grown.SizeBytes);
        Assert.Equal(1, _cluster.Activator("node-a").Refreshes);

        var delete = await Assert.ThrowsAsync<RpcException>(async () => await Api.DeleteVolumeAsync(new DeleteVolumeRequest { Id = volume.Id }));
        Assert.Equal(GrpcStatusCode.FailedPrecondition, delete.StatusCode);
        var snapshot = await Assert.ThrowsAsync<RpcException>(async () => await Api.CreateSnapshotAsync(new CreateSnapshotRequest { SourceVolumeId = volume.Id, Name = "snap" }));
        Assert.Equal(GrpcStatusCode.FailedPrecondition, snapshot.StatusCode);
        Assert.Contains("attached to node-a; detach it first", snapshot.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_fencing_an_unreachable_holder_pins_the_volume_and_fencing_releases_it()
    {
        var a = await _cluster.AddAgentAsync("node-a");
        await _cluster.AddAgentAsync("node-b");
        var volume = await _cluster.CreateVolumeAsync("vm-4");
        await Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volume.Id, Node = "node-a" });

        await _cluster.StopAgentAsync(a);
        await Eventually.TrueAsync(() => Api.GetNodeAsync(new GetNodeRequest { Name = "node-a" }).GetAwaiter().GetResult().State == NodeState.Unreachable, "node-a is unreachable");

        var refused = await Assert.ThrowsAsync<RpcException>(async () => await Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volume.Id, Node = "node-b" }));
        Assert.Contains("attached to node-a", refused.Status.Detail, StringComparison.Ordinal);
        // Asking for multi-attach is no way around it: the holder may still be writing.
        var multi = await Assert.ThrowsAsync<RpcException>(async () => await Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volume.Id, Node = "node-b", MultiAttach = true }));
        Assert.Equal(GrpcStatusCode.FailedPrecondition, multi.StatusCode);
        Assert.Contains("node-a, which is UNREACHABLE", multi.Status.Detail, StringComparison.Ordinal);
        var stuck = await Assert.ThrowsAsync<RpcException>(async () => await Api.DetachVolumeAsync(new DetachVolumeRequest { VolumeId = volume.Id, Node = "node-a" }));
        Assert.Equal(GrpcStatusCode.Unavailable, stuck.StatusCode);
        Assert.Contains("sharedlvm_owner_node-a", _cluster.Tags(volume), StringComparison.Ordinal);

        await Api.FenceNodeAsync(new FenceNodeRequest { Name = "node-a", Reason = "powered off by IPMI" });
        await Api.DetachVolumeAsync(new DetachVolumeRequest { VolumeId = volume.Id, Node = "node-a" });
        Assert.Equal("node-b", (await Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volume.Id, Node = "node-b" })).Node);

        var toFenced = await Assert.ThrowsAsync<RpcException>(async () => await Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volume.Id, Node = "node-a", MultiAttach = true }));
        Assert.Contains("FENCED", toFenced.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_agent_that_saw_a_newer_controller_refuses_this_ones_orders()
    {
        _cluster.Logs.Expect(4204); // the agent refusing the older controller: what this test is about
        _cluster.Logs.Expect(3955); // and the controller hearing at registration that it is behind
        var state = Directory.CreateTempSubdirectory("slvm-epoch-agent-").FullName;
        File.WriteAllText(Path.Combine(state, "highest-epoch"), "1000");
        await _cluster.AddAgentAsync("node-c", "two-paths", "--state-dir", state);
        var volume = await _cluster.CreateVolumeAsync("vm-5");
        var e = await Assert.ThrowsAsync<RpcException>(async () => await Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volume.Id, Node = "node-c" }));
        Assert.Equal(GrpcStatusCode.FailedPrecondition, e.StatusCode);
        Assert.Contains("older than 1000", e.Status.Detail, StringComparison.Ordinal);
        Assert.False(_cluster.Activator("node-c").IsActive(_cluster.Pool, volume.LvName));
        Directory.Delete(state, recursive: true);
    }

    [Fact]
    public async Task Multi_attach_allows_two_nodes_that_both_asked_for_it_and_no_third()
    {
        await _cluster.AddAgentAsync("node-a");
        await _cluster.AddAgentAsync("node-b");
        await _cluster.AddAgentAsync("node-c");
        var volume = await _cluster.CreateVolumeAsync("vm-6");
        await Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volume.Id, Node = "node-a", MultiAttach = true });
        Assert.Contains("slvm_multi", _cluster.Tags(volume), StringComparison.Ordinal);
        await Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volume.Id, Node = "node-b", MultiAttach = true });
        Assert.Equal(["node-a", "node-b"], (await Api.GetVolumeAsync(new GetVolumeRequest { Id = volume.Id })).Attachments.Select(x => x.Node).Order());
        Assert.True(_cluster.Activator("node-b").IsActive(_cluster.Pool, volume.LvName));
        var third = await Assert.ThrowsAsync<RpcException>(async () => await Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volume.Id, Node = "node-c", MultiAttach = true }));
        Assert.Contains("two nodes", third.Status.Detail, StringComparison.Ordinal);

        // The migration ends: the source detaches, then the target; the mark goes with the last holder.
        await Api.DetachVolumeAsync(new DetachVolumeRequest { VolumeId = volume.Id, Node = "node-a" });
        Assert.Contains("slvm_multi", _cluster.Tags(volume), StringComparison.Ordinal);
        await Api.DetachVolumeAsync(new DetachVolumeRequest { VolumeId = volume.Id, Node = "node-b" });
        Assert.DoesNotContain("slvm_multi", _cluster.Tags(volume), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_second_holder_can_not_join_an_attachment_that_did_not_ask_to_share()
    {
        await _cluster.AddAgentAsync("node-a");
        await _cluster.AddAgentAsync("node-b");
        var volume = await _cluster.CreateVolumeAsync("vm-7");
        await Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volume.Id, Node = "node-a" });

        var e = await Assert.ThrowsAsync<RpcException>(async () => await Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volume.Id, Node = "node-b", MultiAttach = true }));

        Assert.Equal(GrpcStatusCode.FailedPrecondition, e.StatusCode);
        Assert.Contains("without multi_attach", e.Status.Detail, StringComparison.Ordinal);
        Assert.False(_cluster.Activator("node-b").IsActive(_cluster.Pool, volume.LvName));
        Assert.DoesNotContain("sharedlvm_owner_node-b", _cluster.Tags(volume), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_hung_agent_times_out_and_a_controller_restart_mid_attach_converges_with_no_retry()
    {
        await _cluster.RestartControllerAsync("--Controller:AgentTimeout", "00:00:01");
        var port = _cluster.Controller.Address.Port;
        await _cluster.AddAgentAsync("node-a");
        var volume = await _cluster.CreateVolumeAsync("vm-8");

        // The agent hangs: the controller gives up after its timeout, the tag stays, the volume is ATTACHING.
        _cluster.Activator("node-a").Hang = true;
        var hung = await Assert.ThrowsAsync<RpcException>(async () => await Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volume.Id, Node = "node-a" }));
        Assert.Equal(GrpcStatusCode.Unavailable, hung.StatusCode);
        Assert.Contains("sharedlvm_owner_node-a", _cluster.Tags(volume), StringComparison.Ordinal);
        Assert.Equal(VolumeState.Attaching, (await Api.GetVolumeAsync(new GetVolumeRequest { Id = volume.Id })).State);

        // The controller restarts (a crash after the tag, before the agent confirmed): the retry converges.
        _cluster.Activator("node-a").Hang = false;
        await _cluster.RestartControllerAsync("--listen", $"127.0.0.1:{port}");
        var afterRestart = await Api.GetVolumeAsync(new GetVolumeRequest { Id = volume.Id });
        Assert.Equal(VolumeState.Attaching, afterRestart.State);
        Assert.Equal("node-a", Assert.Single(afterRestart.Attachments).Node);
        await Eventually.TrueAsync(() => Api.GetNodeAsync(new GetNodeRequest { Name = "node-a" }).GetAwaiter().GetResult().State == NodeState.Ready, "node-a re-registered");
        // The restarted controller completes the attach it left in flight on its own (AttachmentSettler);
        // the client's retry, after that, changes nothing.
        await Eventually.TrueAsync(async () => (await Api.GetVolumeAsync(new GetVolumeRequest { Id = volume.Id })).State == VolumeState.Attached,
            "the attach left in flight completed with no retry", TimeSpan.FromSeconds(30));
        var retried = await Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volume.Id, Node = "node-a" });
        Assert.Equal(AttachmentState.Attached, retried.State);
        Assert.Equal(VolumeState.Attached, (await Api.GetVolumeAsync(new GetVolumeRequest { Id = volume.Id })).State);
        Assert.Single(_cluster.Tags(volume).Split(',', StringSplitOptions.TrimEntries), t => t.StartsWith("sharedlvm_owner_", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_attach_is_one_trace_from_the_controller_to_the_agent()
    {
        var spans = new ConcurrentBag<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name.StartsWith("SharedLvm.", StringComparison.Ordinal),
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = spans.Add,
        };
        ActivitySource.AddActivityListener(listener);
        await _cluster.AddAgentAsync("node-t");
        var volume = await _cluster.CreateVolumeAsync("vm-traced");

        await Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volume.Id, Node = "node-t" });

        var mine = spans.Where(a => Equals(a.GetTagItem("sharedlvm.volume_id"), volume.Id)).ToList();
        var attach = Assert.Single(mine, a => a.OperationName == "attach volume");
        var activate = Assert.Single(mine, a => a.OperationName == "activate volume");
        Assert.Equal(attach.TraceId, activate.TraceId);
        Assert.NotEqual(attach.SpanId, activate.SpanId);
        Assert.Equal("node-t", activate.GetTagItem("sharedlvm.node"));
    }

    [Fact]
    public async Task At_registration_an_agent_deactivates_what_it_does_not_own_unless_it_is_open()
    {
        // The fixture node has pool1/slvm-aaaa... active (auto-activated at boot, say); the controller says it owns nothing.
        var agent = await _cluster.AddAgentAsync("node-r");
        await Eventually.TrueAsync(() => _cluster.Activator("node-r").Deactivated.Contains("pool1/slvm-aaaaaaaaaaaaaaaaaaaaaaaaaa"), "the stray LV was deactivated");

        _cluster.Logs.Expect(4302); // the open stray LV, reported instead of pulled
        var open = await _cluster.AddAgentAsync("node-x", "two-paths", activator => activator.Open.Add("slvm-aaaaaaaaaaaaaaaaaaaaaaaaaa"));
        await Eventually.TrueAsync(() =>
            open.Client.GetHealthAsync(new GetHealthRequest()).GetAwaiter().GetResult().Findings.Any(f => f.Code == "active_not_owned"),
            "the open stray LV is reported instead of pulled");
        Assert.Empty(_cluster.Activator("node-x").Deactivated);
        Assert.NotNull(agent);
    }

    [Theory]
    [InlineData("aaaaaaaaaaaaaaaaaaaaaaaaaa", "node-a", GrpcStatusCode.NotFound)]
    [InlineData("not-an-id", "node-a", GrpcStatusCode.InvalidArgument)]
    [InlineData(null, "node-nobody", GrpcStatusCode.NotFound)]
    [InlineData(null, "Bad Node", GrpcStatusCode.InvalidArgument)]
    public async Task Bad_attach_requests_get_clear_statuses_and_change_nothing(string? volumeId, string node, GrpcStatusCode expected)
    {
        await _cluster.AddAgentAsync("node-a");
        var volume = await _cluster.CreateVolumeAsync("vm-7");
        var e = await Assert.ThrowsAsync<RpcException>(async () => await Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volumeId ?? volume.Id, Node = node }));
        Assert.Equal(expected, e.StatusCode);
        Assert.DoesNotContain("sharedlvm_owner", _cluster.Tags(volume), StringComparison.Ordinal);
    }
}
