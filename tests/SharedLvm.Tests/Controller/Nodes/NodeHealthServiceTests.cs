using Grpc.Core;
using SharedLvm.Contracts.V1;
using SharedLvm.Tests.Support;

namespace SharedLvm.Tests.Controller.Nodes;

/// <summary>What the controller asks of a node's agent live: a rescan (slvm node rescan), a live health report.</summary>
public sealed class NodeHealthServiceTests : IAsyncLifetime
{
    private const string Lu = "35000c500a0000001";
    private Cluster _cluster = null!;

    public async ValueTask InitializeAsync() => _cluster = await Cluster.StartAsync();

    public async ValueTask DisposeAsync() => await _cluster.DisposeAsync();

    [Fact]
    public async Task A_rescan_by_wwid_reaches_the_agent_under_the_controllers_epoch_and_scans_only_that_lus_paths()
    {
        await _cluster.AddAgentAsync("node-a");
        var rescan = await _cluster.Api.RescanNodeAsync(new RescanNodeRequest { Name = "node-a", Wwids = { Lu }, WaitSeconds = 1 });
        Assert.Equal(["host0: 0 0 0", "host1: 0 0 0"], rescan.Scans.Select(s => s[..s.IndexOf(" (", StringComparison.Ordinal)]).Order());
        Assert.DoesNotContain(rescan.Scans, s => s.Contains("- - -", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Bad_rescans_are_refused_before_the_agent_is_asked()
    {
        await _cluster.AddAgentAsync("node-a");
        var badWwid = await Assert.ThrowsAsync<RpcException>(async () => await _cluster.Api.RescanNodeAsync(new RescanNodeRequest { Name = "node-a", Wwids = { "../etc" } }));
        Assert.Equal(StatusCode.InvalidArgument, badWwid.StatusCode);
        var tooLong = await Assert.ThrowsAsync<RpcException>(async () => await _cluster.Api.RescanNodeAsync(new RescanNodeRequest { Name = "node-a", WaitSeconds = 301 }));
        Assert.Equal(StatusCode.InvalidArgument, tooLong.StatusCode);
        var unknown = await Assert.ThrowsAsync<RpcException>(async () => await _cluster.Api.RescanNodeAsync(new RescanNodeRequest { Name = "node-z" }));
        Assert.Equal(StatusCode.NotFound, unknown.StatusCode);
    }

    [Fact]
    public async Task A_live_call_to_an_agent_that_does_not_answer_is_unavailable_naming_the_node()
    {
        var agent = await _cluster.AddAgentAsync("node-a");
        await _cluster.StopAgentAsync(agent);

        var e = await Assert.ThrowsAsync<RpcException>(async () => await _cluster.Api.GetNodeHealthAsync(new GetNodeHealthRequest { Name = "node-a", Live = true }));

        Assert.Equal(StatusCode.Unavailable, e.StatusCode);
        Assert.Contains("Node node-a's agent did not answer a live health report", e.Status.Detail, StringComparison.Ordinal);
        Assert.Equal("node-a", (await _cluster.Api.GetNodeHealthAsync(new GetNodeHealthRequest { Name = "node-a" })).Node); // the stored report still answers
    }
}
