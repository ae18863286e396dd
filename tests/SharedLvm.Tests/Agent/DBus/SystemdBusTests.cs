using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using SharedLvm.Agent.DBus;
using SharedLvm.Agent.Health;
using SharedLvm.Contracts.V1;
using SharedLvm.Tests.Support;

namespace SharedLvm.Tests.Agent.DBus;

/// <summary>The agent on a private bus with a stand-in systemd: multipathd's unit in health, restarts, device-unit hints.</summary>
public sealed class SystemdBusTests : IAsyncLifetime
{
    private PrivateBus _bus = null!;
    private InProcessAgent _agent = null!;

    public async ValueTask InitializeAsync()
    {
        _bus = await PrivateBus.StartAsync();
        _agent = await InProcessAgent.StartAsync("node-a", "two-paths", "--controller", "http://127.0.0.1:1", "--dbus", _bus.Address);
        await Eventually.TrueAsync(() => _bus.Systemd.Subscribed == 1, "the agent subscribed to systemd's unit signals");
    }

    public async ValueTask DisposeAsync()
    {
        await _agent.DisposeAsync();
        await _bus.DisposeAsync();
    }

    [Fact]
    public async Task A_failed_multipathd_is_a_multipath_layer_finding_with_its_state_and_the_remedy()
    {
        var bus = _agent.Services.GetRequiredService<SystemdBus>();
        await Eventually.TrueAsync(() => bus.Multipathd is not null, "the agent read multipathd.service");
        var health = await _agent.Client.GetHealthAsync(new GetHealthRequest());
        var finding = Assert.Single(health.Findings, f => f.Code == "multipathd_unit_down");
        Assert.Equal((Layer.Multipath, HealthState.Failed), (finding.Layer, finding.State));
        Assert.Contains("failed (failed)", finding.Message, StringComparison.Ordinal);
        Assert.Contains("restarted 2 times", finding.Message, StringComparison.Ordinal);
        Assert.Contains("slvm node multipathd-restart node-a", finding.Remedy, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Restart_asks_systemd_and_answers_with_the_running_state()
    {
        var state = await _agent.Client.RestartMultipathdAsync(new RestartMultipathdRequest
        {
            Header = new CommandHeader { NodeName = "node-a", Epoch = new Epoch { Value = 1 } },
        });
        Assert.Equal(1, _bus.Systemd.RestartsAsked);
        Assert.Equal(("active", "running", "up"), (state.ActiveState, state.SubState, state.StatusText));

        // Like every command: a current epoch, addressed to this node.
        var misrouted = await Assert.ThrowsAsync<RpcException>(async () => await _agent.Client.RestartMultipathdAsync(new RestartMultipathdRequest
        {
            Header = new CommandHeader { NodeName = "node-b", Epoch = new Epoch { Value = 1 } },
        }));
        Assert.Equal(StatusCode.FailedPrecondition, misrouted.StatusCode);
        Assert.Equal(1, _bus.Systemd.RestartsAsked);
    }

    [Fact]
    public async Task A_map_device_unit_appearing_makes_the_agent_take_a_new_view()
    {
        var bus = _agent.Services.GetRequiredService<SystemdBus>();
        var watcher = _agent.Services.GetRequiredService<SanWatcher>();
        await watcher.WaitForFirstScanAsync(CancellationToken.None);
        var before = watcher.Resyncs;

        _bus.Systemd.Unit("dev-sda.device", added: true);
        _bus.Systemd.Unit(SystemdBus.MapUnitPrefix + "35000c500a0000002.device", added: true);

        await Eventually.TrueAsync(() => bus.MapUnitEvents == 1, "the map unit was heard (and the plain disk ignored)");
        await Eventually.TrueAsync(() => watcher.Resyncs > before, "the agent took a new view of the SAN");
    }

    [Theory]
    [InlineData("dev-disk-by\\x2did-dm\\x2duuid\\x2dmpath\\x2d35000c500a0000001.device", "35000c500a0000001")]
    [InlineData("dev-disk-by\\x2did-dm\\x2duuid\\x2dmpath\\x2d3600a098038303053453f463045727a65.device", "3600a098038303053453f463045727a65")]
    [InlineData("dev-sda.device", null)]
    [InlineData("multipathd.service", null)]
    public void The_wwid_of_a_map_unit_is_read_from_its_escaped_name(string unit, string? wwid) =>
        Assert.Equal(wwid, SystemdBus.WwidOfMapUnit(unit));

    [Fact]
    public async Task Without_a_bus_the_agent_says_so_and_works_as_before()
    {
        await using var agent = await InProcessAgent.StartAsync("node-b", "two-paths", "--controller", "http://127.0.0.1:1", "--dbus", "unix:path=/nonexistent/bus");
        var health = await agent.Client.GetHealthAsync(new GetHealthRequest());
        Assert.DoesNotContain(health.Findings, f => f.Subject == SystemdBus.MultipathdUnit);
        var e = await Assert.ThrowsAsync<RpcException>(async () => await agent.Client.RestartMultipathdAsync(new RestartMultipathdRequest
        {
            Header = new CommandHeader { NodeName = "node-b", Epoch = new Epoch { Value = 1 } },
        }));
        Assert.Equal(StatusCode.Unavailable, e.StatusCode);
        Assert.Contains("no system bus", e.Status.Detail, StringComparison.Ordinal);
    }
}
