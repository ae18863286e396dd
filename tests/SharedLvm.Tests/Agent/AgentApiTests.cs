using SharedLvm.Contracts.V1;
using SharedLvm.Grpc;
using SharedLvm.Tests.Support;

namespace SharedLvm.Tests.Agent;

/// <summary>The agent daemon over real gRPC, reading a fixture sysfs tree with a failed path.</summary>
public sealed class AgentApiTests : IAsyncLifetime
{
    private InProcessAgent _agent = null!;

    private GrpcServiceClient _api => _agent.Client;

    public async Task InitializeAsync() =>
        _agent = await InProcessAgent.StartAsync("node-a", "failed-path", "--Agent:ExpectedWwids:0", "35000c500a0000001", "--controller", "http://127.0.0.1:1");

    public async Task DisposeAsync() => await _agent.DisposeAsync();
    [Fact]
    public async Task Health_names_the_failing_layers()
    {
        var health = await _api.CallAsync<GetHealthResponse>(new GetHealthRequest());
        Assert.Equal("node-a", health.NodeName);
        Assert.Equal(HealthState.Failed, health.Overall);
        Assert.Contains(health.Findings, f => f is { Layer: Layer.Multipath, State: HealthState.Degraded, Code: "path_failed", Subject: "35000c500a0000001" });
        Assert.Contains(health.Findings, f => f is { Layer: Layer.Scsi, Code: "scsi_device_not_running" });
    }

    [Fact]
    public async Task Inventory_lists_hbas_paths_and_maps()
    {
        var inventory = await _api.CallAsync<Inventory>(new GetInventoryRequest());
        Assert.Equal(3, inventory.Hbas.Count);
        Assert.Equal("Online", inventory.Hbas.Single(h => h.Driver == "qla2xxx").PortState);
        var map = Assert.Single(inventory.MultipathMaps);
        Assert.Equal(new[] { PathState.Active, PathState.Failed }, map.Paths.Select(p => p.State));
        Assert.All(inventory.ScsiDevices, d => Assert.Equal("35000c500a0000001", d.Wwid));
    }

    [Fact]
    public async Task Bad_rescans_get_clear_statuses()
    {
        var unknownHost = await Assert.ThrowsAsync<RpcException>(() => _api.CallAsync<RescanResponse>(new RescanRequest { Hosts = { 9 } }));
        Assert.Equal(StatusCode.InvalidArgument, unknownHost.StatusCode);
        Assert.Contains("host9", unknownHost.Status.Detail, StringComparison.Ordinal);

        var misrouted = await Assert.ThrowsAsync<RpcException>(() =>
            _api.CallAsync<RescanResponse>(new RescanRequest { Header = new CommandHeader { NodeName = "node-b" } }));
        Assert.Equal(StatusCode.FailedPrecondition, misrouted.StatusCode);

        var badWwid = await Assert.ThrowsAsync<RpcException>(() =>
            _api.CallAsync<RescanResponse>(new RescanRequest { Expect = { new LunAddress { Wwid = "../../etc" } } }));
        Assert.Equal(StatusCode.InvalidArgument, badWwid.StatusCode);
    }

    [Fact]
    public async Task Activation_is_not_served_yet()
    {
        var e = await Assert.ThrowsAsync<RpcException>(() => _api.CallAsync<ActivateVolumeResponse>(new ActivateVolumeRequest()));
        Assert.Equal(StatusCode.Unimplemented, e.StatusCode);
    }
}
