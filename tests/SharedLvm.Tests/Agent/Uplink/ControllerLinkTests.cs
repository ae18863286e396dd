using System.Collections.Concurrent;
using Grpc.Core;
using SharedLvm.Agent.Lvm;
using SharedLvm.Agent.Uplink;
using SharedLvm.Contracts.V1;
using SharedLvm.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace SharedLvm.Tests.Agent.Uplink;

/// <summary>The agent's uplink against a stand-in registry: what it reports, and which controllers it accepts.</summary>
public sealed class ControllerLinkTests : IAsyncLifetime
{
    private GrpcTestServer _registry = null!;
    private InProcessAgent _agent = null!;

    private FakeRegistry Registry => _registry.Services.GetRequiredService<FakeRegistry>();

    public async ValueTask InitializeAsync()
    {
        _registry = await GrpcTestServer.StartAsync<FakeRegistry>(GrpcTestServer.OpenPolicy(NodeRegistry.Descriptor));
        // The fixture's host has pool1/slvm-aaaa active; the reconciler would deactivate it after registering, so it gets
        // an activator that records instead of the real lvchange, which has no device-mapper here.
        _agent = await InProcessAgent.StartAsync(
            "node-a", "failed-path", s => s.AddSingleton<IVolumeActivator>(new FakeActivator(null, "node-a")),
            "--controller", _registry.Address.ToString().TrimEnd('/'));
    }

    public async ValueTask DisposeAsync()
    {
        await _agent.DisposeAsync();
        await _registry.DisposeAsync();
    }

    [Fact]
    public async Task It_registers_as_its_node_then_heartbeats_its_volumes_and_findings_with_layer_state_and_remedy()
    {
        await Eventually.TrueAsync(() => !Registry.Heartbeats.IsEmpty, "a heartbeat after the registration");
        var registration = Assert.Single(Registry.Registrations);
        Assert.Equal("node-a", registration.NodeName);
        Assert.Equal(["35000c500a0000001"], registration.VisibleWwids);
        Assert.Equal(_agent.Address.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), registration.Address.Split(':')[^1]);
        var heartbeat = Registry.Heartbeats.Last();
        // The node's own ubuntu-vg/ubuntu-lv is active too: only volumes are reported.
        Assert.Equal(["pool1/slvm-aaaaaaaaaaaaaaaaaaaaaaaaaa"], heartbeat.ActiveLvs);
        Assert.Equal(HealthState.Failed, heartbeat.Health);
        var path = Assert.Single(heartbeat.Findings, f => f.Code == "path_failed");
        Assert.Equal((Layer.Multipath, HealthState.Degraded), (path.Layer, path.State));
        Assert.NotEmpty(path.Remedy);
    }

    [Fact]
    public async Task A_controller_asking_it_to_register_again_gets_a_new_registration()
    {
        await Eventually.TrueAsync(() => !Registry.Heartbeats.IsEmpty, "heartbeating");
        Registry.AskToReregister = true;
        await Eventually.TrueAsync(() => Registry.Registrations.Count == 2, "registered again");
    }

    [Fact]
    public async Task An_older_epoch_than_it_has_seen_is_refused_and_said_so()
    {
        await Eventually.TrueAsync(() => !Registry.Heartbeats.IsEmpty, "heartbeating");
        _agent.Logs.Expect(4204);
        Registry.Epoch = 3;
        await Eventually.TrueAsync(() => _agent.Logs.Records.Any(r => r.EventId.Id == 4204), "the stale epoch refused");
        Assert.Equal(5UL, _agent.Services.GetRequiredService<EpochStore>().Highest);
    }

    /// <summary>
    /// A controller whose host died may not refuse connections: they hang until the call's deadline.
    /// The agent must then try the next controller on its list (the one that takes over), as it does
    /// on UNAVAILABLE. Seen in the SAN lab: the first attach after a takeover came 34 s after the
    /// first create through the new controller.
    /// </summary>
    [Fact]
    public async Task A_controller_that_never_answers_is_passed_over_for_the_next_on_the_list()
    {
        using var silent = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        silent.Start();
        var held = new List<System.Net.Sockets.TcpClient>();
        using var stop = new CancellationTokenSource();
        var accepting = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                held.Add(await silent.AcceptTcpClientAsync(stop.Token));
            }
        });
        var registry = await GrpcTestServer.StartAsync<FakeRegistry>(GrpcTestServer.OpenPolicy(NodeRegistry.Descriptor));
        var agent = await InProcessAgent.StartAsync(
            "node-b", "failed-path", s => s.AddSingleton<IVolumeActivator>(new FakeActivator(null, "node-b")),
            "--controller", $"http://127.0.0.1:{((System.Net.IPEndPoint)silent.LocalEndpoint).Port},{registry.Address.ToString().TrimEnd('/')}");
        try
        {
            var fake = registry.Services.GetRequiredService<FakeRegistry>();
            await Eventually.TrueAsync(() => !fake.Registrations.IsEmpty, "registered with the second controller", TimeSpan.FromSeconds(40));
            Assert.Contains(agent.Logs.Records, r => r.EventId.Id == 4203 && r.Message.Contains("DeadlineExceeded", StringComparison.Ordinal));
        }
        finally
        {
            await agent.DisposeAsync();
            await registry.DisposeAsync();
            await stop.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => accepting);
            held.ForEach(c => c.Dispose());
        }
    }

    /// <summary>A NodeRegistry that records what agents send and answers with the epoch it is given.</summary>
    internal sealed class FakeRegistry : NodeRegistry.NodeRegistryBase
    {
        public ConcurrentQueue<RegisterNodeRequest> Registrations { get; } = new();

        public ConcurrentQueue<HeartbeatRequest> Heartbeats { get; } = new();

        public ulong Epoch { get; set; } = 5;

        public bool AskToReregister { get; set; }

        public override Task<RegisterNodeResponse> RegisterNode(RegisterNodeRequest request, ServerCallContext context)
        {
            Registrations.Enqueue(request);
            AskToReregister = false;
            return Task.FromResult(new RegisterNodeResponse { Epoch = new Epoch { Value = Epoch, ControllerId = "fake" }, HeartbeatIntervalSeconds = 1 });
        }

        public override Task<HeartbeatResponse> Heartbeat(HeartbeatRequest request, ServerCallContext context)
        {
            Heartbeats.Enqueue(request);
            return Task.FromResult(new HeartbeatResponse { Epoch = new Epoch { Value = Epoch, ControllerId = "fake" }, Reregister = AskToReregister });
        }
    }
}
