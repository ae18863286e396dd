using Grpc.Core;
using SharedLvm.Contracts.V1;
using SharedLvm.Controller.Nodes;
using SharedLvm.Grpc;
using SharedLvm.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using GrpcStatusCode = Grpc.Core.StatusCode;
using ControllerRpc = SharedLvm.Contracts.V1.Controller;

namespace SharedLvm.Tests.Controller;

/// <summary>A real controller and real agents in-process: registration, heartbeats, liveness, fencing, double activation.</summary>
public sealed class NodeRegistryTests : IAsyncLifetime
{
    private readonly string _state = Directory.CreateTempSubdirectory("slvm-nodes-").FullName;
    private InProcessController _controller = null!;

    private ControllerRpc.ControllerClient Api => _controller.Client;

    public async ValueTask InitializeAsync() =>
        _controller = await InProcessController.StartAsync(_state, "--Controller:HeartbeatInterval", "00:00:01");

    public async ValueTask DisposeAsync()
    {
        await _controller.DisposeAsync();
        Directory.Delete(_state, recursive: true);
    }

    [Fact]
    public async Task An_agent_registers_reports_health_and_becomes_unreachable_when_it_stops()
    {
        var agent = await StartAgentAsync("node-a", "failed-path");
        var node = await EventuallyNode("node-a", n => n.State == NodeState.Ready && n.Health == HealthState.Failed);
        Assert.Equal(["35000c500a0000001"], node.VisibleWwids);

        var stored = await Api.GetNodeHealthAsync(new GetNodeHealthRequest { Name = "node-a" });
        Assert.Contains(stored.Findings, f => f.Code == "path_failed");
        var live = await Api.GetNodeHealthAsync(new GetNodeHealthRequest { Name = "node-a", Live = true });
        Assert.Contains(live.Findings, f => f is { Layer: Layer.Multipath, Code: "path_failed" });

        await agent.DisposeAsync();
        await EventuallyNode("node-a", n => n.State == NodeState.Unreachable);
    }

    [Fact]
    public async Task A_fenced_node_stays_fenced_until_resumed_even_if_its_agent_returns()
    {
        await using (await StartAgentAsync("node-b", "two-paths"))
        {
            await EventuallyNode("node-b", n => n.State == NodeState.Ready);
            var noReason = await Assert.ThrowsAsync<RpcException>(async () => await Api.FenceNodeAsync(new FenceNodeRequest { Name = "node-b" }));
            Assert.Equal(GrpcStatusCode.InvalidArgument, noReason.StatusCode);
            Assert.Equal(NodeState.Fenced, (await Api.FenceNodeAsync(new FenceNodeRequest { Name = "node-b", Reason = "IPMI power off, ticket 42" })).State);
            await Task.Delay(2500); // heartbeats keep coming
            Assert.Equal(NodeState.Fenced, (await Api.GetNodeAsync(new GetNodeRequest { Name = "node-b" })).State);
            Assert.Equal(NodeState.Ready, (await Api.ResumeNodeAsync(new ResumeNodeRequest { Name = "node-b" })).State);
        }
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
        await using var a = await StartAgentAsync("node-a", "two-paths");
        await using var b = await StartAgentAsync("node-b", "two-paths");
        Assert.True(await next);
        Assert.Contains("pool1/slvm-aaaaaaaaaaaaaaaaaaaaaaaaaa is active on", alarms.Current.Message, StringComparison.Ordinal);
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(15));
        Assert.True(_controller.Services.GetRequiredService<NodeDirectory>().DoubleActivations > 0);
        await watch.CancelAsync();
    }

    [Fact]
    public async Task Bad_node_requests_are_refused()
    {
        var registry = _controller.Registry;
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

    [Fact]
    public void The_epoch_store_refuses_older_epochs_across_restarts()
    {
        var dir = Directory.CreateTempSubdirectory("slvm-epoch-").FullName;
        var store = new SharedLvm.Agent.Uplink.EpochStore(dir);
        Assert.True(store.Observe(5));
        Assert.True(store.Observe(5));
        var reopened = new SharedLvm.Agent.Uplink.EpochStore(dir);
        Assert.Equal(5UL, reopened.Highest);
        Assert.False(reopened.Observe(4));
        Directory.Delete(dir, recursive: true);
    }

    [Theory]
    [InlineData("pool1-slvm--aaaa", "pool1/slvm-aaaa")]
    [InlineData("my--vg-my--lv", "my-vg/my-lv")]
    [InlineData("nodash", null)]
    public void Dm_names_map_back_to_vg_and_lv(string dmName, string? vgLv) =>
        Assert.Equal(vgLv, SharedLvm.Contracts.Conventions.DmName.ToVgLv(dmName));

    private Task<InProcessAgent> StartAgentAsync(string node, string fixture) =>
        InProcessAgent.StartAsync(node, fixture, "--controller", _controller.Address.ToString().TrimEnd('/'));

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
