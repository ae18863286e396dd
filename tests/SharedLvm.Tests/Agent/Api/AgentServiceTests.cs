using Grpc.Core;
using SharedLvm.Contracts.V1;
using SharedLvm.Grpc;
using SharedLvm.Tests.Support;

namespace SharedLvm.Tests.Agent.Api;

/// <summary>The agent daemon over real gRPC, reading a fixture sysfs tree with a failed path.</summary>
public sealed class AgentServiceTests : IAsyncLifetime
{
    private InProcessAgent _agent = null!;

    private SharedLvm.Contracts.V1.Agent.AgentClient _api => _agent.Client;

    public async ValueTask InitializeAsync() =>
        _agent = await InProcessAgent.StartAsync("node-a", "failed-path", "--Agent:ExpectedWwids:0", "35000c500a0000001", "--controller", "http://127.0.0.1:1");

    public async ValueTask DisposeAsync() => await _agent.DisposeAsync();
    [Fact]
    public async Task Health_names_the_failing_layers()
    {
        var health = await _api.GetHealthAsync(new GetHealthRequest());
        Assert.Equal("node-a", health.NodeName);
        Assert.Equal(HealthState.Failed, health.Overall);
        Assert.Contains(health.Findings, f => f is { Layer: Layer.Multipath, State: HealthState.Degraded, Code: "path_failed", Subject: "35000c500a0000001" });
        Assert.Contains(health.Findings, f => f is { Layer: Layer.Scsi, Code: "scsi_device_not_running" });
    }

    [Fact]
    public async Task Health_answers_while_lvm_hangs_on_a_blocked_lu_and_no_second_lvm_piles_up()
    {
        // lvm that never answers, like one blocked in the kernel on a queueing map with no path.
        var directory = Directory.CreateTempSubdirectory("slvm-hung-lvm-").FullName;
        var lvm = Path.Combine(directory, "lvm");
        var calls = Path.Combine(directory, "calls");
        await File.WriteAllTextAsync(lvm, $"#!/bin/sh\necho \"$1\" >> {calls}\nexec sleep 60\n");
        File.SetUnixFileMode(lvm, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        try
        {
            await using var agent = await InProcessAgent.StartAsync("node-h", "two-paths",
                "--controller", "http://127.0.0.1:1", "--Agent:LvmBinary", lvm, "--Agent:LvmInspectWait", "00:00:01", "--Agent:LvmUnresponsiveAfter", "00:00:01");

            // Every health call answers within its deadline while lvm hangs, and soon names the layer
            // (once the hung lvm is older than LvmUnresponsiveAfter: later on a loaded machine).
            var named = false;
            for (var attempt = 0; attempt < 20 && !named; attempt++)
            {
                var health = await agent.Client.GetHealthAsync(new GetHealthRequest(), deadline: DateTime.UtcNow.AddSeconds(10));
                named = health.Findings.Any(f => f is { Layer: Layer.Lvm, State: HealthState.Failed, Code: "lvm_unresponsive" });
                await Task.Delay(named ? 0 : 250);
            }

            Assert.True(named, "health never named the hung lvm (lvm_unresponsive)");
            Assert.Single(await File.ReadAllLinesAsync(calls));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task Inventory_lists_hbas_paths_and_maps()
    {
        var inventory = await _api.GetInventoryAsync(new GetInventoryRequest());
        Assert.Equal(3, inventory.Hbas.Count);
        Assert.Equal("Online", inventory.Hbas.Single(h => h.Driver == "qla2xxx").PortState);
        var map = Assert.Single(inventory.MultipathMaps);
        Assert.Equal(new[] { PathState.Active, PathState.Failed }, map.Paths.Select(p => p.State));
        Assert.All(inventory.ScsiDevices, d => Assert.Equal("35000c500a0000001", d.Wwid));
    }

    [Fact]
    public async Task Bad_rescans_get_clear_statuses()
    {
        var current = new CommandHeader { NodeName = "node-a", Epoch = new Epoch { Value = 3, ControllerId = "c3" } };
        var unknownHost = await Assert.ThrowsAsync<RpcException>(async () => await _api.RescanAsync(new RescanRequest { Header = current, Hosts = { 9 } }));
        Assert.Equal(StatusCode.InvalidArgument, unknownHost.StatusCode);
        Assert.Contains("host9", unknownHost.Status.Detail, StringComparison.Ordinal);

        var misrouted = await Assert.ThrowsAsync<RpcException>(async () => await
            _api.RescanAsync(new RescanRequest { Header = new CommandHeader { NodeName = "node-b", Epoch = current.Epoch } }));
        Assert.Equal(StatusCode.FailedPrecondition, misrouted.StatusCode);

        var badWwid = await Assert.ThrowsAsync<RpcException>(async () => await
            _api.RescanAsync(new RescanRequest { Header = current, Expect = { new LunAddress { Wwid = "../../etc" } } }));
        Assert.Equal(StatusCode.InvalidArgument, badWwid.StatusCode);

        // A deposed controller may not order a rescan (a LIP resets the fabric login) either.
        var older = await Assert.ThrowsAsync<RpcException>(async () => await
            _api.RescanAsync(new RescanRequest { Header = new CommandHeader { NodeName = "node-a", Epoch = new Epoch { Value = 2, ControllerId = "c2" } } }));
        Assert.Equal(StatusCode.FailedPrecondition, older.StatusCode);
        var twin = await Assert.ThrowsAsync<RpcException>(async () => await
            _api.RescanAsync(new RescanRequest { Header = new CommandHeader { NodeName = "node-a", Epoch = new Epoch { Value = 3, ControllerId = "other" } } }));
        Assert.Equal(StatusCode.FailedPrecondition, twin.StatusCode);
        Assert.Contains("c3", twin.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Activation_commands_need_an_epoch_this_node_and_lvm_names()
    {
        var noEpoch = await Assert.ThrowsAsync<RpcException>(async () => await _api.ActivateVolumeAsync(new ActivateVolumeRequest
        {
            Header = new CommandHeader { NodeName = "node-a" },
            Lv = new LvRef { VgName = "pool1", LvName = "slvm-aaaa" },
        }));
        Assert.Equal(StatusCode.InvalidArgument, noEpoch.StatusCode);
        Assert.Contains("epoch", noEpoch.Status.Detail, StringComparison.Ordinal);

        var badName = await Assert.ThrowsAsync<RpcException>(async () => await _api.DeactivateVolumeAsync(new DeactivateVolumeRequest
        {
            Header = new CommandHeader { NodeName = "node-a", Epoch = new Epoch { Value = 1 } },
            Lv = new LvRef { VgName = "pool1", LvName = "../../etc/passwd" },
        }));
        Assert.Equal(StatusCode.InvalidArgument, badName.StatusCode);

        var misrouted = await Assert.ThrowsAsync<RpcException>(async () => await _api.RefreshVolumeAsync(new RefreshVolumeRequest
        {
            Header = new CommandHeader { NodeName = "node-b", Epoch = new Epoch { Value = 1 } },
            Lv = new LvRef { VgName = "pool1", LvName = "slvm-aaaa" },
        }));
        Assert.Equal(StatusCode.FailedPrecondition, misrouted.StatusCode);

        // Not active here: a deactivate is a no-op, a refresh is refused.
        var header = new CommandHeader { NodeName = "node-a", Epoch = new Epoch { Value = 1 } };
        Assert.False((await _api.DeactivateVolumeAsync(new DeactivateVolumeRequest { Header = header, Lv = new LvRef { VgName = "pool1", LvName = "other" } })).WasActive);
    }
}
