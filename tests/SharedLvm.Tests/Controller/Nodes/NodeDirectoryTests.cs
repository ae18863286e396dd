using Grpc.Core;
using SharedLvm.Contracts.V1;
using SharedLvm.Controller.Nodes;
using SharedLvm.Grpc;
using SharedLvm.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using GrpcStatusCode = Grpc.Core.StatusCode;
using ControllerRpc = SharedLvm.Contracts.V1.Controller;

namespace SharedLvm.Tests.Controller.Nodes;

/// <summary>A real controller and real agents in-process: registration, heartbeats, liveness, fencing, double activation.</summary>
public sealed class NodeDirectoryTests : IAsyncLifetime
{
    private Cluster _cluster = null!;

    private ControllerRpc.ControllerClient Api => _cluster.Api;

    public async ValueTask InitializeAsync() => _cluster = await Cluster.StartAsync();

    public async ValueTask DisposeAsync() => await _cluster.DisposeAsync();

    [Fact]
    public async Task An_agent_registers_reports_health_and_becomes_unreachable_when_it_stops()
    {
        var agent = await _cluster.AddAgentAsync("node-a", "failed-path");
        var node = await EventuallyNode("node-a", n => n.State == NodeState.Ready && n.Health == HealthState.Failed);
        Assert.Equal(["35000c500a0000001"], node.VisibleWwids);

        var stored = await Api.GetNodeHealthAsync(new GetNodeHealthRequest { Name = "node-a" });
        // Stored from the heartbeat, by layer, with state and remedy (what `slvm node health` shows without --live).
        Assert.Contains(stored.Findings, f => f is { Layer: Layer.Multipath, State: HealthState.Degraded, Code: "path_failed" } && f.Remedy.Length > 0);
        var live = await Api.GetNodeHealthAsync(new GetNodeHealthRequest { Name = "node-a", Live = true });
        Assert.Contains(live.Findings, f => f is { Layer: Layer.Multipath, Code: "path_failed" });

        await _cluster.StopAgentAsync(agent);
        await EventuallyNode("node-a", n => n.State == NodeState.Unreachable);
    }

    [Fact]
    public async Task A_fenced_node_stays_fenced_until_resumed_even_if_its_agent_returns()
    {
        await _cluster.AddAgentAsync("node-b", "two-paths");
        var noReason = await Assert.ThrowsAsync<RpcException>(async () => await Api.FenceNodeAsync(new FenceNodeRequest { Name = "node-b" }));
        Assert.Equal(GrpcStatusCode.InvalidArgument, noReason.StatusCode);
        Assert.Equal(NodeState.Fenced, (await Api.FenceNodeAsync(new FenceNodeRequest { Name = "node-b", Reason = "IPMI power off, ticket 42" })).State);
        await Task.Delay(2500); // heartbeats keep coming
        Assert.Equal(NodeState.Fenced, (await Api.GetNodeAsync(new GetNodeRequest { Name = "node-b" })).State);
        Assert.Equal(NodeState.Ready, (await Api.ResumeNodeAsync(new ResumeNodeRequest { Name = "node-b" })).State);
    }

    [Fact]
    public async Task A_volume_active_on_two_nodes_raises_an_alarm_within_a_heartbeat()
    {
        await using var cluster = await Cluster.StartAsync(new ClusterOptions { PoolSizeBytes = 256L << 20 });
        var volume = await cluster.CreateVolumeAsync("vm-1");
        var alarms = await WatchAlarmsAsync(cluster);
        cluster.Logs.Expect(3403); // DOUBLE ACTIVATION: the alarm this test provokes

        await HeartbeatAsync(cluster, "node-x", $"{cluster.Pool}/{volume.LvName}");
        await HeartbeatAsync(cluster, "node-y", $"{cluster.Pool}/{volume.LvName}");

        var alarm = await alarms.NextAsync();
        Assert.Contains($"{cluster.Pool}/{volume.LvName} is active on node-y and on node-x", alarm.Message, StringComparison.Ordinal);
        Assert.Equal(1, cluster.Controller.Services.GetRequiredService<NodeDirectory>().DoubleActivations);
    }

    [Fact]
    public async Task Local_lvs_of_the_same_name_and_a_legitimate_multi_attach_raise_nothing()
    {
        await using var cluster = await Cluster.StartAsync(new ClusterOptions { PoolSizeBytes = 256L << 20 });
        var volume = await cluster.CreateVolumeAsync("vm-1");
        var agents = new[] { await cluster.AddAgentAsync("node-a"), await cluster.AddAgentAsync("node-b") };
        await cluster.Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volume.Id, Node = "node-a", MultiAttach = true });
        await cluster.Api.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volume.Id, Node = "node-b", MultiAttach = true });
        // From here the heartbeats are this test's: the fixture agents would report their own trees.
        foreach (var agent in agents)
        {
            await cluster.StopAgentAsync(agent);
        }

        // Nodes built from one image: the same local LV everywhere; and an LV whose name looks like a
        // volume's in a VG that is no managed pool.
        string[] active = ["ubuntu-vg/ubuntu-lv", "localvg/slvm-aaaaaaaaaaaaaaaaaaaaaaaaaa", $"{cluster.Pool}/{volume.LvName}"];
        await HeartbeatAsync(cluster, "node-a", active);
        await HeartbeatAsync(cluster, "node-b", active);
        await HeartbeatAsync(cluster, "node-a", active);

        Assert.Equal(0, cluster.Controller.Services.GetRequiredService<NodeDirectory>().DoubleActivations);
    }

    /// <summary>A heartbeat as the node's agent would send it (registering the node first if needed).</summary>
    private static async Task HeartbeatAsync(Cluster cluster, string node, params string[] activeLvs)
    {
        var registry = cluster.Controller.Registry;
        if ((await registry.HeartbeatAsync(new HeartbeatRequest { NodeName = node, ActiveLvs = { activeLvs } })).Reregister)
        {
            await registry.RegisterNodeAsync(new RegisterNodeRequest { NodeName = node, Address = "127.0.0.1:1" });
            await registry.HeartbeatAsync(new HeartbeatRequest { NodeName = node, ActiveLvs = { activeLvs } });
        }
    }

    private static async Task<AlarmWatch> WatchAlarmsAsync(Cluster cluster)
    {
        var watch = new AlarmWatch(cluster.Api.WatchEvents(new WatchEventsRequest { Kinds = { EventKind.Alarm } }));
        await Task.Yield();
        return watch;
    }

    /// <summary>The alarm stream, read with a bound.</summary>
    private sealed class AlarmWatch(AsyncServerStreamingCall<Event> call)
    {
        public async Task<Event> NextAsync()
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            Assert.True(await call.ResponseStream.MoveNext(timeout.Token), "an alarm within 15 s");
            return call.ResponseStream.Current;
        }
    }

    [Fact]
    public async Task Bad_node_requests_are_refused()
    {
        var registry = _cluster.Controller.Registry;
        var badName = await Assert.ThrowsAsync<RpcException>(async () => await
            registry.RegisterNodeAsync(new RegisterNodeRequest { NodeName = "Node A!", Address = "127.0.0.1:1" }));
        Assert.Equal(GrpcStatusCode.InvalidArgument, badName.StatusCode);
        var noAddress = await Assert.ThrowsAsync<RpcException>(async () => await registry.RegisterNodeAsync(new RegisterNodeRequest { NodeName = "node-z" }));
        Assert.Equal(GrpcStatusCode.InvalidArgument, noAddress.StatusCode);
        var unknown = await Assert.ThrowsAsync<RpcException>(async () => await Api.GetNodeAsync(new GetNodeRequest { Name = "node-nope" }));
        Assert.Equal(GrpcStatusCode.NotFound, unknown.StatusCode);
        var heartbeat = await registry.HeartbeatAsync(new HeartbeatRequest { NodeName = "node-never-registered" });
        Assert.True(heartbeat.Reregister);
        Assert.True(heartbeat.Epoch.Value >= 1);
    }

    private async Task<Node> EventuallyNode(string name, Func<Node, bool> condition)
    {
        Node? last = null;
        await Eventually.TrueAsync(() =>
        {
            try
            {
                last = Api.GetNodeAsync(new GetNodeRequest { Name = name }).GetAwaiter().GetResult();
                return condition(last);
            }
            catch (RpcException)
            {
                return false;
            }
        }, $"node {name} reaches the expected state (last: {last?.State})", TimeSpan.FromSeconds(20));
        return last!;
    }
}
