using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using SharedLvm.Contracts.V1;
using SharedLvm.Controller.Catalog;
using SharedLvm.Controller.State;
using SharedLvm.Tests.Support;
using AgentRpc = SharedLvm.Contracts.V1.Agent;

namespace SharedLvm.Tests.Controller.Attachments;

/// <summary>
/// A controller that loads a pool without its own attachment records (a successor on another host)
/// takes each owner tag's word, ATTACHED with no device, and learns the device from the node's own
/// heartbeat. The node here is a scripted agent on the wire: its heartbeat says which LVs are active,
/// which the in-process agents (their view comes from a fixture sysfs tree) can't say for LVs made
/// during the test.
/// </summary>
public sealed class AttachmentSettlerTests : IAsyncLifetime
{
    private Cluster _cluster = null!;
    private GrpcTestServer _agent = null!;

    public async ValueTask InitializeAsync()
    {
        _cluster = await Cluster.StartAsync(new ClusterOptions { PoolSizeBytes = 256L * 1024 * 1024 });
        _agent = await GrpcTestServer.StartAsync<ScriptedAgent>(GrpcTestServer.OpenPolicy(AgentRpc.Descriptor));
    }

    public async ValueTask DisposeAsync()
    {
        Agent.StopHeartbeats();
        await _agent.DisposeAsync();
        await _cluster.DisposeAsync();
    }

    [Fact]
    public async Task A_volume_attached_on_its_tags_word_gets_its_device_from_the_node_that_reports_it_active()
    {
        await RegisterAsync([]);
        var active = await _cluster.CreateVolumeAsync("vm-active");
        var unreported = await _cluster.CreateVolumeAsync("vm-unreported");
        foreach (var volume in (Volume[])[active, unreported])
        {
            Assert.Equal(AttachmentState.Attached, (await _cluster.Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volume.Id, Node = "node-s" })).State);
        }

        // The controller's own records are lost (another host's successor has none); the tags are on the LU.
        await _cluster.Controller.DisposeAsync();
        using (var store = new ControllerStore(Path.Combine(_cluster.StateDirectory, "controller.db")))
        {
            store.RemoveAttachment(active.Id, "node-s");
            store.RemoveAttachment(unreported.Id, "node-s");
        }

        await _cluster.RestartControllerAsync();
        var loaded = Assert.Single((await _cluster.Api.GetVolumeAsync(new GetVolumeRequest { Id = active.Id })).Attachments);
        Assert.Equal((AttachmentState.Attached, (DevicePath?)null), (loaded.State, loaded.Device));
        var activations = Agent.Activations;

        // node-s comes back and reports one of the two active: that one's device is asked for.
        await RegisterAsync([$"{_cluster.Pool}/{active.LvName}"]);
        Volume settled = null!;
        await Eventually.TrueAsync(async () => (settled = await _cluster.Api.GetVolumeAsync(new GetVolumeRequest { Id = active.Id })).Attachments.Single().Device is not null,
            "vm-active's device is known", TimeSpan.FromSeconds(15));
        var attachment = Assert.Single(settled.Attachments);
        Assert.Equal(("node-s", AttachmentState.Attached, $"/dev/{_cluster.Pool}/{active.LvName}"), (attachment.Node, attachment.State, attachment.Device.Path));
        Assert.Equal(VolumeState.Attached, settled.State);
        Assert.Equal(activations + 1, Agent.Activations);
        Assert.Contains(_cluster.Logs.Records, r => r.Message.Contains($"Volume {active.Id} (vm-active) is attached to node node-s on its owner tag's word", StringComparison.Ordinal));

        // The other keeps the tag's word and is not touched: heartbeats go on, nothing asks for it.
        await Task.Delay(TimeSpan.FromSeconds(3));
        var kept = await _cluster.Api.GetVolumeAsync(new GetVolumeRequest { Id = unreported.Id });
        Assert.Equal((VolumeState.Attached, (DevicePath?)null), (kept.State, kept.Attachments.Single().Device));
        Assert.Equal(activations + 1, Agent.Activations);
        Assert.Contains("sharedlvm_owner_node-s", _cluster.Tags(unreported), StringComparison.Ordinal);
    }

    /// <summary>
    /// What a killed controller left in flight, found by the next one as records nobody runs: an
    /// attach whose tag was written but whose node was never asked is completed (one activate), one
    /// whose tag was never written is dropped, a detach is finished (one deactivate, then the tag
    /// goes). No client retries any of them.
    /// </summary>
    [Fact]
    public async Task Attaches_and_detaches_left_in_flight_are_finished_with_no_client_retrying()
    {
        await RegisterAsync([]);
        var tagged = await _cluster.CreateVolumeAsync("vm-tagged");
        var untagged = await _cluster.CreateVolumeAsync("vm-untagged");
        var detaching = await _cluster.CreateVolumeAsync("vm-detaching");
        foreach (var volume in (Volume[])[tagged, detaching])
        {
            await _cluster.Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volume.Id, Node = "node-s" });
        }

        // Killed half-way: the records say in flight, the tags say how far each got.
        await _cluster.Controller.DisposeAsync();
        using (var store = new ControllerStore(Path.Combine(_cluster.StateDirectory, "controller.db")))
        {
            var since = DateTimeOffset.UtcNow;
            store.SaveAttachment(new AttachmentRecord(tagged.Id, "node-s", AttachmentPhase.Attaching, null, since));
            store.SaveAttachment(new AttachmentRecord(untagged.Id, "node-s", AttachmentPhase.Attaching, null, since));
            store.SaveAttachment(new AttachmentRecord(detaching.Id, "node-s", AttachmentPhase.Detaching, null, since));
        }

        await _cluster.RestartControllerAsync();
        Assert.Equal(VolumeState.Attaching, (await _cluster.Api.GetVolumeAsync(new GetVolumeRequest { Id = tagged.Id })).State);
        var (activations, deactivations) = (Agent.Activations, Agent.Deactivations);
        await RegisterAsync([]);

        var completed = await UntilAsync(() => _cluster.Api.GetVolumeAsync(new GetVolumeRequest { Id = tagged.Id }).ResponseAsync, v => v.State == VolumeState.Attached);
        Assert.Equal($"/dev/{_cluster.Pool}/{tagged.LvName}", completed.Attachments.Single().Device.Path);
        await UntilAsync(() => _cluster.Api.GetVolumeAsync(new GetVolumeRequest { Id = detaching.Id }).ResponseAsync, v => v.State == VolumeState.Available);
        Assert.DoesNotContain("sharedlvm_owner_node-s", _cluster.Tags(detaching), StringComparison.Ordinal);
        Assert.Contains("sharedlvm_owner_node-s", _cluster.Tags(tagged), StringComparison.Ordinal);
        Assert.Equal((activations + 1, deactivations + 1), (Agent.Activations, Agent.Deactivations));
        await Eventually.TrueAsync(() => _cluster.Logs.Records.Count(r => r.Message.Contains("left in flight by an earlier controller", StringComparison.Ordinal)) == 3,
            "three settlements logged");
        using (var store = new ControllerStore(Path.Combine(_cluster.StateDirectory, "controller.db")))
        {
            Assert.DoesNotContain(store.Attachments(), a => a.VolumeId == untagged.Id);
        }

        Assert.Equal(VolumeState.Available, (await _cluster.Api.GetVolumeAsync(new GetVolumeRequest { Id = untagged.Id })).State);
    }

    private ScriptedAgent Agent => _agent.Services.GetRequiredService<ScriptedAgent>();

    /// <summary>Registers node-s with the current controller, then heartbeats for it (reporting <paramref name="activeLvs"/>) until the test ends.</summary>
    private async Task RegisterAsync(string[] activeLvs)
    {
        var registry = _cluster.Controller.Registry;
        await registry.RegisterNodeAsync(new RegisterNodeRequest { NodeName = "node-s", Address = _agent.Address.Authority, AgentVersion = "scripted" });
        Agent.StopHeartbeats();
        Agent.Heartbeats = Task.Run(async () =>
        {
            var stopping = Agent.Stopping.Token;
            while (!stopping.IsCancellationRequested)
            {
                try
                {
                    await registry.HeartbeatAsync(new HeartbeatRequest { NodeName = "node-s", ActiveLvs = { activeLvs } }, cancellationToken: stopping);
                    await Task.Delay(300, stopping);
                }
                catch (Exception e) when (e is OperationCanceledException or RpcException)
                {
                    // The test moved on: a new controller, or its end.
                    return;
                }
            }
        });
        await Eventually.TrueAsync(async () => (await _cluster.Api.GetNodeAsync(new GetNodeRequest { Name = "node-s" })).State == NodeState.Ready, "node-s is READY");
    }

    private static async Task<T> UntilAsync<T>(Func<Task<T>> read, Func<T, bool> done)
    {
        T last = default!;
        await Eventually.TrueAsync(async () => done(last = await read()), "the volume is ATTACHED", TimeSpan.FromSeconds(15));
        return last;
    }

    /// <summary>An agent that activates and deactivates whatever it is asked to, and counts.</summary>
    private sealed class ScriptedAgent : AgentRpc.AgentBase
    {
        private int _activations;

        private int _deactivations;

        public int Activations => _activations;

        public int Deactivations => _deactivations;

        public CancellationTokenSource Stopping { get; private set; } = new();

        public Task? Heartbeats { get; set; }

        public void StopHeartbeats()
        {
            Stopping.Cancel();
            Stopping = new CancellationTokenSource();
        }

        public override Task<ActivateVolumeResponse> ActivateVolume(ActivateVolumeRequest request, ServerCallContext context)
        {
            Interlocked.Increment(ref _activations);
            return Task.FromResult(new ActivateVolumeResponse
            {
                Device = new DevicePath { Path = $"/dev/{request.Lv.VgName}/{request.Lv.LvName}", DmName = request.Lv.VgName + "-" + request.Lv.LvName.Replace("-", "--", StringComparison.Ordinal), Major = 253, Minor = 7, SizeBytes = 16 * 1024 * 1024 },
                WasActive = true,
            });
        }

        public override Task<DeactivateVolumeResponse> DeactivateVolume(DeactivateVolumeRequest request, ServerCallContext context)
        {
            Interlocked.Increment(ref _deactivations);
            return Task.FromResult(new DeactivateVolumeResponse { WasActive = true });
        }
    }
}
