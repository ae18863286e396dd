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
        Assert.Contains(stored.Findings, f => f.Code == "path_failed");
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
    public async Task An_lv_active_on_two_nodes_raises_an_alarm_within_seconds()
    {
        using var watch = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var call = Api.WatchEvents(new WatchEventsRequest { Kinds = { EventKind.Alarm } }, cancellationToken: watch.Token);
        var alarms = call.ResponseStream.ReadAllAsync(watch.Token).GetAsyncEnumerator(watch.Token);
        var next = alarms.MoveNextAsync();
        var started = DateTime.UtcNow;
        // Both fixture nodes have dm-1 (pool1/slvm-aaaa...) active.
        _cluster.Logs.Expect(3403); // DOUBLE ACTIVATION: the alarm this test provokes
        await _cluster.AddAgentAsync("node-a", "two-paths");
        await _cluster.AddAgentAsync("node-b", "two-paths");
        Assert.True(await next);
        Assert.Contains("pool1/slvm-aaaaaaaaaaaaaaaaaaaaaaaaaa is active on", alarms.Current.Message, StringComparison.Ordinal);
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(15));
        Assert.True(_cluster.Controller.Services.GetRequiredService<NodeDirectory>().DoubleActivations > 0);
        await watch.CancelAsync();
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
