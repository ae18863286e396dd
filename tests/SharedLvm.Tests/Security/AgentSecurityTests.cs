using Grpc.Net.Client;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using SharedLvm.Agent;
using SharedLvm.Agent.Lvm;
using SharedLvm.Contracts.V1;
using SharedLvm.Controller.Api;
using SharedLvm.Grpc;
using SharedLvm.Grpc.Security;
using SharedLvm.Tests.Support;
using GrpcStatusCode = Grpc.Core.StatusCode;

namespace SharedLvm.Tests.Security;

/// <summary>
/// The agent over mutual TLS: it obeys the controller's certificate alone, refuses an old epoch
/// even from it, and the controller and agent find each other by certificate end to end.
/// </summary>
public sealed class AgentSecurityTests : IAsyncLifetime
{
    private TestPki _pki = null!;
    private InProcessAgent _agent = null!;

    public async ValueTask InitializeAsync()
    {
        _pki = TestPki.Create(["controller"], ["node", "node-a"], ["node", "node-b"], ["client", "ada", "admin"]);
        _agent = await InProcessAgent.StartAsync("node-a", "failed-path", [.. _pki.ServerArgs("node-a"), "--controller", "https://127.0.0.1:1"]);
    }

    public async ValueTask DisposeAsync()
    {
        await _agent.DisposeAsync();
        _pki.Dispose();
    }

    [Fact]
    public async Task The_agent_obeys_only_the_controllers_certificate()
    {
        var activate = new ActivateVolumeRequest { Header = Header(1), Lv = new LvRef { VgName = "pool1", LvName = "vol1" } };
        foreach (var stranger in new[] { "ada", "node-b" })
        {
            using var channel = _pki.Channel(_agent.Address, stranger, PeerRoles.Node, "node-a");
            var e = await Assert.ThrowsAsync<RpcException>(async () => await Agent(channel).ActivateVolumeAsync(activate));
            Assert.Equal(GrpcStatusCode.PermissionDenied, e.StatusCode);
            Assert.Contains("needs controller", e.Status.Detail, StringComparison.Ordinal);
            var health = await Assert.ThrowsAsync<RpcException>(async () => await Agent(channel).GetHealthAsync(new GetHealthRequest()));
            Assert.Equal(GrpcStatusCode.PermissionDenied, health.StatusCode);
        }

        using var anonymous = TestPki.UncheckedChannel(_agent.Address, null);
        Assert.Equal(GrpcStatusCode.Unauthenticated, (await Assert.ThrowsAsync<RpcException>(async () => await Agent(anonymous).ActivateVolumeAsync(activate))).StatusCode);
        await new global::Grpc.Health.V1.Health.HealthClient(anonymous).CheckAsync(new global::Grpc.Health.V1.HealthCheckRequest());

        using var controller = _pki.Channel(_agent.Address, "controller", PeerRoles.Node, "node-a");
        Assert.NotEqual(HealthState.Unspecified, (await Agent(controller).GetHealthAsync(new GetHealthRequest())).Overall);
    }

    [Fact]
    public async Task A_replayed_command_from_an_older_epoch_is_refused_even_with_the_controllers_certificate()
    {
        using var controller = _pki.Channel(_agent.Address, "controller", PeerRoles.Node, "node-a");
        var lv = new LvRef { VgName = "pool1", LvName = "gone" };
        Assert.False((await Agent(controller).DeactivateVolumeAsync(new DeactivateVolumeRequest { Header = Header(7), Lv = lv })).WasActive);

        var replay = await Assert.ThrowsAsync<RpcException>(async () => await Agent(controller).DeactivateVolumeAsync(new DeactivateVolumeRequest { Header = Header(6), Lv = lv }));
        Assert.Equal(GrpcStatusCode.FailedPrecondition, replay.StatusCode);
        Assert.Contains("older than 7", replay.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_controller_refuses_to_talk_to_an_address_that_answers_with_another_nodes_certificate()
    {
        // Dialled as node-b, the agent answers with node-a's certificate: refused before any command.
        using var misrouted = _pki.Channel(_agent.Address, "controller", PeerRoles.Node, "node-b");
        var e = await Assert.ThrowsAsync<RpcException>(async () => await Agent(misrouted).GetHealthAsync(new GetHealthRequest()));
        Assert.Equal(GrpcStatusCode.Unavailable, e.StatusCode);
    }

    [Fact]
    public void An_agent_holding_another_nodes_certificate_does_not_start()
    {
        var state = Directory.CreateTempSubdirectory("slvm-agent-wrong-cert-").FullName;
        var e = Assert.Throws<TlsConfigurationException>(() => AgentHost.Build(
            ["--listen", "127.0.0.1:0", "--metrics-listen", "", "--node", "node-a", "--state-dir", state, .. _pki.ServerArgs("node-b")]));
        Assert.Contains("scripts/pki node node-a", e.Message, StringComparison.Ordinal);
        Directory.Delete(state, recursive: true);
    }

    [Fact]
    public async Task Controller_and_agent_register_and_talk_over_mutual_tls()
    {
        var state = Directory.CreateTempSubdirectory("slvm-mtls-controller-").FullName;
        await using var controller = await InProcessController.StartAsync(state, [.. _pki.ServerArgs("controller"), "--Controller:HeartbeatInterval", "00:00:01"]);
        // The fixture's host has pool1/slvm-aaaa active, which the reconciler deactivates after registering:
        // a recording activator, as there is no device-mapper here.
        await using var agent = await InProcessAgent.StartAsync("node-b", "failed-path", s => s.AddSingleton<IVolumeActivator>(new FakeActivator(null, "node-b")),
            [.. _pki.ServerArgs("node-b"), "--controller", controller.Address.ToString().TrimEnd('/'), "--Agent:InspectLvm", "false"]);
        using var admin = _pki.Channel(controller.Address, "ada");
        var api = new SharedLvm.Contracts.V1.Controller.ControllerClient(admin);

        await Eventually.TrueAsync(async () => (await api.ListNodesAsync(new ListNodesRequest())).Nodes.Any(n => n.Name == "node-b"),
            "node-b registered over mutual TLS");
        // Live: the controller dials node-b's agent and checks it is node-b.
        var health = await api.GetNodeHealthAsync(new GetNodeHealthRequest { Name = "node-b", Live = true });
        Assert.Equal("node-b", health.Node);
        Assert.NotNull(health.ReportedAt);
        Directory.Delete(state, recursive: true);
    }

    private static CommandHeader Header(ulong epoch) => new() { NodeName = "node-a", Epoch = new Epoch { Value = epoch } };

    private static SharedLvm.Contracts.V1.Agent.AgentClient Agent(GrpcChannel channel) => new(channel);
}
