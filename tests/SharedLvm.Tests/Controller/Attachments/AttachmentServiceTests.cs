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

namespace SharedLvm.Tests.Controller;

/// <summary>
/// Exclusive attach end to end in-process: the real controller writing real tags on a loop-device VG,
/// real agents over gRPC; only activation is faked (no device-mapper here), and the fake enforces
/// volume_list from the LV's real tags as LVM does. The SAN lab proves the real activation.
/// </summary>
public sealed class AttachTests : IAsyncLifetime
{
    private const ulong MiB = 1024 * 1024;
    private readonly string _state = Directory.CreateTempSubdirectory("slvm-attach-").FullName;
    private readonly Dictionary<string, FakeActivator> _activators = [];
    private readonly List<InProcessAgent> _agents = [];
    private LoopDevice? _lu;
    private InProcessController _controller = null!;
    private string _pool = null!;

    private ControllerRpc.ControllerClient Api => _controller.Client;

    public async ValueTask InitializeAsync()
    {
        _lu = LoopDevice.Create(1L * 1024 * 1024 * 1024);
        _pool = "att" + Guid.NewGuid().ToString("N")[..6];
        LoopDevice.Present(_lu);

        _controller = await InProcessController.StartAsync(_state, "--Controller:HeartbeatInterval", "00:00:01");
        await Api.CreatePoolAsync(new CreatePoolRequest { Name = _pool, DevicePath = _lu.Device, Mode = PoolCreateMode.Initialize });
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            foreach (var agent in _agents)
            {
                await agent.DisposeAsync();
            }

            if (_lu is not null)
            {
                await _controller.DisposeAsync();
            }
        }
        finally
        {
            _lu?.Lvm("vgremove", "-f", _pool);
            _lu?.Dispose();
            Directory.Delete(_state, recursive: true);
        }
    }

    [Fact]
    public async Task Attach_tags_then_activates_a_second_node_is_refused_and_lvm_itself_refuses_it_too()
    {
        LoopDevice.Present(_lu);

        var (a, b) = (await StartAgentAsync("node-a"), await StartAgentAsync("node-b"));
        var volume = await CreateAsync("vm-1");
        var attachment = await Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volume.Id, Node = "node-a" });
        Assert.Equal(AttachmentState.Attached, attachment.State);
        Assert.Equal($"/dev/{_pool}/{volume.LvName}", attachment.Device.Path);
        Assert.Contains("sharedlvm_owner_node-a", Tags(volume), StringComparison.Ordinal);
        Assert.True(_activators["node-a"].IsActive(_pool, volume.LvName));
        var seen = await Api.GetVolumeAsync(new GetVolumeRequest { Id = volume.Id });
        Assert.Equal(VolumeState.Attached, seen.State);
        Assert.Equal("node-a", Assert.Single(seen.Attachments).Node);

        // Attaching again to the same node is idempotent.
        Assert.Equal(AttachmentState.Attached, (await Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volume.Id, Node = "node-a" })).State);

        var second = await Assert.ThrowsAsync<RpcException>(async () => await Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volume.Id, Node = "node-b" }));
        Assert.Equal(GrpcStatusCode.FailedPrecondition, second.StatusCode);
        Assert.Contains("attached to node-a", second.Status.Detail, StringComparison.Ordinal);
        Assert.False(_activators["node-b"].IsActive(_pool, volume.LvName));

        // A stale or forged order sent straight to node-b's agent: refused by the tag check.
        var direct = await Assert.ThrowsAsync<RpcException>(async () => await b.Client.ActivateVolumeAsync(new ActivateVolumeRequest
        {
            Header = new CommandHeader { Epoch = new Epoch { Value = 1 }, NodeName = "node-b" },
            Lv = new LvRef { VgName = _pool, LvName = volume.LvName },
        }));
        Assert.Equal(GrpcStatusCode.FailedPrecondition, direct.StatusCode);
        Assert.Contains("not tagged for this node", direct.Status.Detail, StringComparison.Ordinal);
        Assert.NotNull(a);
    }

    [Fact]
    public async Task Move_is_detach_then_attach_and_detach_is_refused_while_the_device_is_open()
    {
        LoopDevice.Present(_lu);

        await StartAgentAsync("node-a");
        await StartAgentAsync("node-b");
        var volume = await CreateAsync("vm-2");
        await Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volume.Id, Node = "node-a" });

        _activators["node-a"].Open.Add(volume.LvName);
        var busy = await Assert.ThrowsAsync<RpcException>(async () => await Api.DetachVolumeAsync(new DetachVolumeRequest { VolumeId = volume.Id, Node = "node-a" }));
        Assert.Equal(GrpcStatusCode.FailedPrecondition, busy.StatusCode);
        Assert.Contains("pid 4242 (qemu-system-x86)", busy.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("sharedlvm_owner_node-a", Tags(volume), StringComparison.Ordinal);

        _activators["node-a"].Open.Clear();
        await Api.DetachVolumeAsync(new DetachVolumeRequest { VolumeId = volume.Id, Node = "node-a" });
        Assert.DoesNotContain("sharedlvm_owner", Tags(volume), StringComparison.Ordinal);
        Assert.False(_activators["node-a"].IsActive(_pool, volume.LvName));
        await Api.DetachVolumeAsync(new DetachVolumeRequest { VolumeId = volume.Id, Node = "node-a" }); // not attached: succeeds

        var moved = await Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volume.Id, Node = "node-b" });
        Assert.Equal("node-b", moved.Node);
        Assert.Contains("sharedlvm_owner_node-b", Tags(volume), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Extend_of_an_attached_volume_answers_once_the_owner_device_has_the_new_size()
    {
        LoopDevice.Present(_lu);

        await StartAgentAsync("node-a");
        var volume = await CreateAsync("vm-3");
        await Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volume.Id, Node = "node-a" });
        var grown = await Api.ExtendVolumeAsync(new ExtendVolumeRequest { Id = volume.Id, SizeBytes = 64 * MiB });
        Assert.Equal(64 * MiB, grown.SizeBytes);
        Assert.Equal(1, _activators["node-a"].Refreshes);

        var delete = await Assert.ThrowsAsync<RpcException>(async () => await Api.DeleteVolumeAsync(new DeleteVolumeRequest { Id = volume.Id }));
        Assert.Equal(GrpcStatusCode.FailedPrecondition, delete.StatusCode);
        var snapshot = await Assert.ThrowsAsync<RpcException>(async () => await Api.CreateSnapshotAsync(new CreateSnapshotRequest { SourceVolumeId = volume.Id, Name = "snap" }));
        Assert.Equal(GrpcStatusCode.FailedPrecondition, snapshot.StatusCode);
    }

    [Fact]
    public async Task Without_fencing_an_unreachable_holder_pins_the_volume_and_fencing_releases_it()
    {
        LoopDevice.Present(_lu);

        var a = await StartAgentAsync("node-a");
        await StartAgentAsync("node-b");
        var volume = await CreateAsync("vm-4");
        await Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volume.Id, Node = "node-a" });

        _agents.Remove(a);
        await a.DisposeAsync();
        await Eventually.TrueAsync(() => Api.GetNodeAsync(new GetNodeRequest { Name = "node-a" }).GetAwaiter().GetResult().State == NodeState.Unreachable, "node-a is unreachable");

        var refused = await Assert.ThrowsAsync<RpcException>(async () => await Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volume.Id, Node = "node-b" }));
        Assert.Contains("attached to node-a", refused.Status.Detail, StringComparison.Ordinal);
        var stuck = await Assert.ThrowsAsync<RpcException>(async () => await Api.DetachVolumeAsync(new DetachVolumeRequest { VolumeId = volume.Id, Node = "node-a" }));
        Assert.Equal(GrpcStatusCode.Unavailable, stuck.StatusCode);
        Assert.Contains("sharedlvm_owner_node-a", Tags(volume), StringComparison.Ordinal);

        await Api.FenceNodeAsync(new FenceNodeRequest { Name = "node-a", Reason = "powered off by IPMI" });
        await Api.DetachVolumeAsync(new DetachVolumeRequest { VolumeId = volume.Id, Node = "node-a" });
        Assert.Equal("node-b", (await Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volume.Id, Node = "node-b" })).Node);

        var toFenced = await Assert.ThrowsAsync<RpcException>(async () => await Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volume.Id, Node = "node-a", MultiAttach = true }));
        Assert.Contains("FENCED", toFenced.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_agent_that_saw_a_newer_controller_refuses_this_ones_orders()
    {
        LoopDevice.Present(_lu);

        var state = Directory.CreateTempSubdirectory("slvm-epoch-agent-").FullName;
        File.WriteAllText(Path.Combine(state, "highest-epoch"), "1000");
        await StartAgentAsync("node-c", "--state-dir", state);
        var volume = await CreateAsync("vm-5");
        var e = await Assert.ThrowsAsync<RpcException>(async () => await Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volume.Id, Node = "node-c" }));
        Assert.Equal(GrpcStatusCode.FailedPrecondition, e.StatusCode);
        Assert.Contains("older than 1000", e.Status.Detail, StringComparison.Ordinal);
        Assert.False(_activators["node-c"].IsActive(_pool, volume.LvName));
        Directory.Delete(state, recursive: true);
    }

    [Fact]
    public async Task Multi_attach_allows_two_nodes_for_a_live_migration_and_no_third()
    {
        LoopDevice.Present(_lu);

        await StartAgentAsync("node-a");
        await StartAgentAsync("node-b");
        await StartAgentAsync("node-c");
        var volume = await CreateAsync("vm-6");
        await Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volume.Id, Node = "node-a" });
        await Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volume.Id, Node = "node-b", MultiAttach = true });
        Assert.Equal(["node-a", "node-b"], (await Api.GetVolumeAsync(new GetVolumeRequest { Id = volume.Id })).Attachments.Select(x => x.Node).Order());
        var third = await Assert.ThrowsAsync<RpcException>(async () => await Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volume.Id, Node = "node-c", MultiAttach = true }));
        Assert.Contains("two nodes", third.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_hung_agent_times_out_and_a_controller_restart_mid_attach_converges_on_retry()
    {
        LoopDevice.Present(_lu);

        await _controller.DisposeAsync();
        _controller = await InProcessController.StartAsync(_state, "--Controller:HeartbeatInterval", "00:00:01", "--Controller:AgentTimeout", "00:00:01");
        var port = _controller.Address.Port;
        await StartAgentAsync("node-a");
        var volume = await CreateAsync("vm-8");

        // The agent hangs: the controller gives up after its timeout, the tag stays, the volume is ATTACHING.
        _activators["node-a"].Hang = true;
        var hung = await Assert.ThrowsAsync<RpcException>(async () => await Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volume.Id, Node = "node-a" }));
        Assert.Equal(GrpcStatusCode.Unavailable, hung.StatusCode);
        Assert.Contains("sharedlvm_owner_node-a", Tags(volume), StringComparison.Ordinal);
        Assert.Equal(VolumeState.Attaching, (await Api.GetVolumeAsync(new GetVolumeRequest { Id = volume.Id })).State);

        // The controller restarts (a crash after the tag, before the agent confirmed): the retry converges.
        _activators["node-a"].Hang = false;
        await _controller.DisposeAsync();
        _controller = await InProcessController.StartAsync(_state, "--Controller:HeartbeatInterval", "00:00:01", "--listen", $"127.0.0.1:{port}");
        var afterRestart = await Api.GetVolumeAsync(new GetVolumeRequest { Id = volume.Id });
        Assert.Equal(VolumeState.Attaching, afterRestart.State);
        Assert.Equal("node-a", Assert.Single(afterRestart.Attachments).Node);
        await Eventually.TrueAsync(() => Api.GetNodeAsync(new GetNodeRequest { Name = "node-a" }).GetAwaiter().GetResult().State == NodeState.Ready, "node-a re-registered");
        var retried = await Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volume.Id, Node = "node-a" });
        Assert.Equal(AttachmentState.Attached, retried.State);
        Assert.Equal(VolumeState.Attached, (await Api.GetVolumeAsync(new GetVolumeRequest { Id = volume.Id })).State);
        Assert.Single(Tags(volume).Split(',', StringSplitOptions.TrimEntries), t => t.StartsWith("sharedlvm_owner_", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_attach_is_one_trace_from_the_controller_to_the_agent()
    {
        LoopDevice.Present(_lu);

        var spans = new ConcurrentBag<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name.StartsWith("SharedLvm.", StringComparison.Ordinal),
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = spans.Add,
        };
        ActivitySource.AddActivityListener(listener);
        await StartAgentAsync("node-t");
        var volume = await CreateAsync("vm-traced");

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
        LoopDevice.Present(_lu);

        // The fixture node has pool1/slvm-aaaa... active (auto-activated at boot, say); the controller says it owns nothing.
        var agent = await StartAgentAsync("node-r");
        await Eventually.TrueAsync(() => _activators["node-r"].Deactivated.Contains("pool1/slvm-aaaaaaaaaaaaaaaaaaaaaaaaaa"), "the stray LV was deactivated");

        _activators["node-x"] = new FakeActivator(_lu, "node-x");
        _activators["node-x"].Open.Add("slvm-aaaaaaaaaaaaaaaaaaaaaaaaaa");
        var open = await InProcessAgent.StartAsync("node-x", "two-paths", s => s.AddSingleton<IVolumeActivator>(_activators["node-x"]),
            ["--controller", _controller.Address.ToString().TrimEnd('/'), "--Agent:InspectLvm", "false"]);
        _agents.Add(open);
        await Eventually.TrueAsync(() =>
            open.Client.GetHealthAsync(new GetHealthRequest()).GetAwaiter().GetResult().Findings.Any(f => f.Code == "active_not_owned"),
            "the open stray LV is reported instead of pulled");
        Assert.Empty(_activators["node-x"].Deactivated);
        Assert.NotNull(agent);
    }

    [Theory]
    [InlineData("aaaaaaaaaaaaaaaaaaaaaaaaaa", "node-a", GrpcStatusCode.NotFound)]
    [InlineData("not-an-id", "node-a", GrpcStatusCode.InvalidArgument)]
    [InlineData(null, "node-nobody", GrpcStatusCode.NotFound)]
    [InlineData(null, "Bad Node", GrpcStatusCode.InvalidArgument)]
    public async Task Bad_attach_requests_get_clear_statuses_and_change_nothing(string? volumeId, string node, GrpcStatusCode expected)
    {
        LoopDevice.Present(_lu);

        await StartAgentAsync("node-a");
        var volume = await CreateAsync("vm-7");
        var e = await Assert.ThrowsAsync<RpcException>(async () => await Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volumeId ?? volume.Id, Node = node }));
        Assert.Equal(expected, e.StatusCode);
        Assert.DoesNotContain("sharedlvm_owner", Tags(volume), StringComparison.Ordinal);
    }

    private async Task<InProcessAgent> StartAgentAsync(string node, params string[] extra)
    {
        var activator = new FakeActivator(_lu!, node);
        _activators[node] = activator;
        var agent = await InProcessAgent.StartAsync(node, "two-paths", s => s.AddSingleton<IVolumeActivator>(activator),
            ["--controller", _controller.Address.ToString().TrimEnd('/'), "--Agent:InspectLvm", "false", .. extra]);
        _agents.Add(agent);
        await Eventually.TrueAsync(() =>
        {
            try
            {
                return Api.GetNodeAsync(new GetNodeRequest { Name = node }).GetAwaiter().GetResult().State == NodeState.Ready;
            }
            catch (RpcException)
            {
                return false;
            }
        }, $"{node} registered");
        return agent;
    }

    private Task<Volume> CreateAsync(string name) =>
        Api.CreateVolumeAsync(new CreateVolumeRequest { Pool = _pool, Name = name, SizeBytes = 16 * MiB }).ResponseAsync;

    private string Tags(Volume volume) => _lu!.Lvm("lvs", "--noheadings", "-o", "lv_tags", $"{_pool}/{volume.LvName}").Output;

    /// <summary>Activation without device-mapper: tracks state, and refuses LVs not tagged for its node (volume_list).</summary>
    private sealed class FakeActivator(LoopDevice lu, string node) : IVolumeActivator
    {
        private readonly ConcurrentDictionary<string, ulong> _active = new(StringComparer.Ordinal);

        public HashSet<string> Open { get; } = [];

        public ConcurrentBag<string> Deactivated { get; } = [];

        /// <summary>Activation blocks until cancelled, like lvm stuck on a dead path.</summary>
        public bool Hang { get; set; }

        public int Refreshes { get; private set; }

        public bool IsActive(string vg, string lv) => _active.ContainsKey(vg + "/" + lv);

        public async Task<ActiveDevice> ActivateAsync(string vgName, string lvName, CancellationToken cancellationToken)
        {
            if (Hang)
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }

            var (code, output) = lu.Lvm("lvs", "--noheadings", "--units", "b", "--nosuffix", "-o", "lv_tags,lv_size", $"{vgName}/{lvName}");
            if (code != 0 || !output.Contains("sharedlvm_owner_" + node, StringComparison.Ordinal))
            {
                throw new AgentException(AgentErrorKind.FailedPrecondition, $"LVM refused to activate {vgName}/{lvName}: it is not tagged for this node (volume_list).");
            }

            _active[vgName + "/" + lvName] = ulong.Parse(FirstLine(output).Split(' ', StringSplitOptions.RemoveEmptyEntries)[^1], System.Globalization.CultureInfo.InvariantCulture);
            return Device(vgName, lvName)!;
        }

        public Task RefreshAsync(string vgName, string lvName, CancellationToken cancellationToken)
        {
            Refreshes++;
            var (_, output) = lu.Lvm("lvs", "--noheadings", "--units", "b", "--nosuffix", "-o", "lv_size", $"{vgName}/{lvName}");
            _active[vgName + "/" + lvName] = ulong.Parse(FirstLine(output), System.Globalization.CultureInfo.InvariantCulture);
            return Task.CompletedTask;
        }

        public Task DeactivateAsync(string vgName, string lvName, CancellationToken cancellationToken)
        {
            Deactivated.Add(vgName + "/" + lvName);
            _active.TryRemove(vgName + "/" + lvName, out _);
            return Task.CompletedTask;
        }

        public Task<ActiveDevice?> DeviceAsync(string vgName, string lvName, CancellationToken cancellationToken) => Task.FromResult(Device(vgName, lvName));

        public Task<IReadOnlyList<string>> OpenersAsync(string vgName, string lvName, CancellationToken cancellationToken) =>
            Task.FromResult<IReadOnlyList<string>>(Open.Contains(lvName) ? ["pid 4242 (qemu-system-x86)"] : []);

        /// <summary>The report line (LoopDevice.Lvm appends lvm's stderr warnings after it).</summary>
        private static string FirstLine(string output) => output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)[0];

        private ActiveDevice? Device(string vg, string lv) =>
            _active.TryGetValue(vg + "/" + lv, out var size) ? new ActiveDevice($"/dev/{vg}/{lv}", SharedLvm.Contracts.Conventions.DmName.Of(vg, lv), 254, 7, size) : null;
    }
}
