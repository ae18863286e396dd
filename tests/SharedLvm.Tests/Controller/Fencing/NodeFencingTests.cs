using SharedLvm.Contracts.V1;
using SharedLvm.Controller.State;
using SharedLvm.Os.Reservations;
using SharedLvm.Tests.Support;
using ControllerRpc = SharedLvm.Contracts.V1.Controller;

namespace SharedLvm.Tests.Controller.Fencing;

/// <summary>
/// Fence = preempt, end to end in-process: the real controller (a pool on a loop-device VG with the
/// fixtures' WWID), real agents over gRPC, and the LU's persistent reservations modelled by
/// <see cref="FakeSan"/> (the host has no SCSI; the SAN lab runs tgt).
/// </summary>
public sealed class NodeFencingTests : IAsyncLifetime
{
    private const string Wwid = "35000c500a0000001";
    private const string Map = "/dev/mapper/" + Wwid;
    private Cluster _cluster = null!;

    private ControllerRpc.ControllerClient Api => _cluster.Api;

    public async ValueTask InitializeAsync() => _cluster = await Cluster.StartAsync(new ClusterOptions { PoolSizeBytes = 256L * 1024 * 1024, PoolWwid = Wwid });

    public async ValueTask DisposeAsync() => await _cluster.DisposeAsync();

    [Fact]
    public async Task Each_node_gets_a_durable_key_and_registers_it_on_every_path_and_one_holds_the_reservation()
    {
        await _cluster.AddAgentAsync("node-a", "two-paths");
        await _cluster.AddAgentAsync("node-b", "two-paths");
        var a = new ReservationKey((await Api.GetNodeAsync(new GetNodeRequest { Name = "node-a" })).ReservationKey);
        var b = new ReservationKey((await Api.GetNodeAsync(new GetNodeRequest { Name = "node-b" })).ReservationKey);
        Assert.True(a.IsSharedLvm && b.IsSharedLvm);
        Assert.NotEqual(a, b);
        await Eventually.TrueAsync(() => _cluster.San.Keys(Map).Count(k => k == a) == 2 && _cluster.San.Keys(Map).Count(k => k == b) == 2, "both keys on both paths");
        Assert.NotNull(_cluster.San.Holder(Map));

        // `slvm pool get`: the keys by node, each on both paths, and the holder, as the nodes read them.
        await Eventually.TrueAsync(async () => (await Api.GetPoolAsync(new GetPoolRequest { Name = _cluster.Pool })).Reservations is { Supported: true } r
            && r.Keys.Select(k => (k.Node, k.Paths)).Order().SequenceEqual([("node-a", 2u), ("node-b", 2u)])
            && r.HolderNode is "node-a" or "node-b" && r.Holder == _cluster.San.Holder(Map)!.Value.Value, "the pool shows both keys by node, and the holder");

        // The key is the controller's durable record, not derived from anything: the same after a restart.
        await _cluster.RestartControllerAsync();
        Assert.Equal(a.Value, (await Api.GetNodeAsync(new GetNodeRequest { Name = "node-a" })).ReservationKey);
    }

    [Fact]
    public async Task Fence_preempts_the_key_confirms_it_gone_then_marks_fenced_at_the_storage_and_the_node_latches_until_resumed()
    {
        var victim = await _cluster.AddAgentAsync("node-a", "two-paths");
        await _cluster.AddAgentAsync("node-b", "two-paths");
        var a = new ReservationKey((await Api.GetNodeAsync(new GetNodeRequest { Name = "node-a" })).ReservationKey);
        await Eventually.TrueAsync(() => _cluster.San.Keys(Map).Count(k => k == a) == 2 && _cluster.San.Keys(Map).Count >= 4, "both nodes registered");

        _cluster.Logs.Expect(4702); // the fenced agent's FENCED AT THE STORAGE
        var fenced = await Api.FenceNodeAsync(new FenceNodeRequest { Name = "node-a", Reason = "hung, ticket 7" });
        Assert.Equal((NodeState.Fenced, FenceKind.Storage), (fenced.State, fenced.FenceKind));
        Assert.DoesNotContain(a, _cluster.San.Keys(Map));

        // node-a's agent sees its key gone: fenced_at_storage, and it does not register itself back in.
        await Eventually.TrueAsync(async () => (await Api.GetNodeHealthAsync(new GetNodeHealthRequest { Name = "node-a" })).Findings
            .Any(f => f is { Code: "fenced_at_storage", Layer: Layer.Multipath, State: HealthState.Failed }), "node-a reports fenced_at_storage");
        await Task.Delay(2500);
        Assert.DoesNotContain(a, _cluster.San.Keys(Map));

        // Resume: the next reply lets it register again, on every path.
        await Api.ResumeNodeAsync(new ResumeNodeRequest { Name = "node-a" });
        await Eventually.TrueAsync(() => _cluster.San.Keys(Map).Count(k => k == a) == 2, "node-a registered on both paths");
        await Eventually.TrueAsync(async () => !(await Api.GetNodeHealthAsync(new GetNodeHealthRequest { Name = "node-a" })).Findings.Any(f => f.Code == "fenced_at_storage"), "the finding clears");
        Assert.Equal(FenceKind.Unspecified, (await Api.GetNodeAsync(new GetNodeRequest { Name = "node-a" })).FenceKind);
        _ = victim;
    }

    /// <summary>
    /// A fence asked for while another fence of the same node runs (two operators, or the tick that
    /// retries a pending fence, as in the SAN lab's S9 on 2026-12-04) waits for it and answers with its
    /// outcome: it must not fence the node a second time, nor leave a fence pending that the tick
    /// then retries for ever.
    /// </summary>
    [Fact]
    public async Task A_fence_asked_while_one_runs_is_answered_by_it_and_leaves_nothing_pending()
    {
        await _cluster.AddAgentAsync("node-a", "two-paths");
        await _cluster.AddAgentAsync("node-b", "two-paths");
        var a = new ReservationKey((await Api.GetNodeAsync(new GetNodeRequest { Name = "node-a" })).ReservationKey);
        await Eventually.TrueAsync(() => _cluster.San.Keys(Map).Count(k => k == a) == 2 && _cluster.San.Keys(Map).Count >= 4, "both nodes registered");
        _cluster.Logs.Expect(4702); // the fenced agent's FENCED AT THE STORAGE

        _cluster.San.PreemptDelay = TimeSpan.FromSeconds(2);
        var first = Api.FenceNodeAsync(new FenceNodeRequest { Name = "node-a", Reason = "first operator" }).ResponseAsync;
        await Task.Delay(500); // the first holds the fence gate, inside its 2 s preempt
        Assert.False(first.IsCompleted, "the first fence finished before the second was asked: the test proves nothing");
        var second = await Api.FenceNodeAsync(new FenceNodeRequest { Name = "node-a", Reason = "second operator" });
        var done = await first;

        Assert.Equal((NodeState.Fenced, FenceKind.Storage, "first operator"), (done.State, done.FenceKind, done.FenceReason));
        Assert.Equal((NodeState.Fenced, FenceKind.Storage, "first operator"), (second.State, second.FenceKind, second.FenceReason));
        Assert.Equal(1, _cluster.San.Preempts);
        Assert.Single(_cluster.Logs.Records, r => r.EventId.Id == 3800); // "Node node-a FENCED": once
        await Task.Delay(2500); // a tick of the fence check (2 s) would retry anything left pending
        Assert.DoesNotContain(_cluster.Logs.Records, r => r.EventId.Id == 3801 || (r.EventId.Id == 3803 && r.Message.Contains("already_absent", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Without_PR_on_the_LU_an_operator_fence_is_declared_and_labelled_so()
    {
        _cluster.San.Supported = false;
        await _cluster.AddAgentAsync("node-a", "two-paths");
        await _cluster.AddAgentAsync("node-b", "two-paths");
        var fenced = await Api.FenceNodeAsync(new FenceNodeRequest { Name = "node-a", Reason = "IPMI power off, ticket 42" });
        Assert.Equal((NodeState.Fenced, FenceKind.Declared), (fenced.State, fenced.FenceKind));
        Assert.Equal("IPMI power off, ticket 42", fenced.FenceReason);
        Assert.Equal(0, _cluster.San.Preempts);
        await Eventually.TrueAsync(async () => (await Api.GetPoolAsync(new GetPoolRequest { Name = _cluster.Pool })).Reservations is { Supported: false },
            "the pool shows that its LU has no persistent reservations");
    }

    [Fact]
    public async Task A_crash_between_preempt_and_marking_fenced_converges_at_the_next_start()
    {
        var oldA = await _cluster.AddAgentAsync("node-a", "two-paths");
        var oldB = await _cluster.AddAgentAsync("node-b", "two-paths");
        var a = new ReservationKey((await Api.GetNodeAsync(new GetNodeRequest { Name = "node-a" })).ReservationKey);
        await Eventually.TrueAsync(() => _cluster.San.Keys(Map).Count(k => k == a) == 2, "node-a registered on both paths");

        // What a controller killed right after the preempt leaves: the intent row and the key gone.
        await _cluster.Controller.DisposeAsync();
        using (var store = new ControllerStore(Path.Combine(_cluster.StateDirectory, "controller.db")))
        {
            store.SaveFence(new FenceRow("node-a", "preempting", "Storage", "Operator", "hung, ticket 8", DateTimeOffset.UtcNow));
        }

        await _cluster.StopAgentAsync(oldA);
        await _cluster.StopAgentAsync(oldB);
        _cluster.San.Remove(Map, a);
        await _cluster.RestartControllerAsync();
        // The restarted controller listens elsewhere: the nodes' agents come back to it (node-a's with
        // no memory of having registered: it is told not to, the fence's intent is on record).
        await _cluster.AddAgentAsync("node-a", "two-paths");
        await _cluster.AddAgentAsync("node-b", "two-paths");

        // node-b re-registers and becomes READY, the pending fence is retried: the key is already
        // absent, so the retry only reads, and the node ends FENCED at the storage.
        await Eventually.TrueAsync(async () => (await Api.GetNodeAsync(new GetNodeRequest { Name = "node-a" })) is { State: NodeState.Fenced, FenceKind: FenceKind.Storage },
            "the pending fence completes", TimeSpan.FromSeconds(30));
        Assert.Equal(0, _cluster.San.Preempts);
        Assert.DoesNotContain(a, _cluster.San.Keys(Map));
    }

    [Fact]
    public async Task Automatic_fencing_is_storage_only_and_needs_volumes_held()
    {
        await _cluster.RestartControllerAsync("--Controller:AutoFenceAfterSeconds", "3");
        var a = await _cluster.AddAgentAsync("node-a", "two-paths");
        await _cluster.AddAgentAsync("node-b", "two-paths");
        var volume = await _cluster.CreateVolumeAsync("vm-1");
        await Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volume.Id, Node = "node-a" });
        var key = new ReservationKey((await Api.GetNodeAsync(new GetNodeRequest { Name = "node-a" })).ReservationKey);
        await Eventually.TrueAsync(() => _cluster.San.Keys(Map).Contains(key), "node-a registered");

        await _cluster.StopAgentAsync(a);
        await Eventually.TrueAsync(async () => (await Api.GetNodeAsync(new GetNodeRequest { Name = "node-a" })) is { State: NodeState.Fenced, AttachedVolumeIds.Count: 0 },
            "node-a fenced automatically and its volume released", TimeSpan.FromSeconds(40));
        var node = await Api.GetNodeAsync(new GetNodeRequest { Name = "node-a" });
        Assert.Equal(FenceKind.Storage, node.FenceKind);
        Assert.DoesNotContain(key, _cluster.San.Keys(Map));
        // Its volume was released: it attaches on node-b at once.
        Assert.Empty(node.AttachedVolumeIds);
        Assert.Equal(AttachmentState.Attached, (await Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volume.Id, Node = "node-b" })).State);
    }
}
