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

    [Fact]
    public async Task A_controller_that_hangs_every_call_is_left_for_the_next_on_the_list_after_three_deadlines_not_one()
    {
        // A powered-off host whose address still accepts connections (the SAN lab's forwarded port):
        // the TCP handshake works, then nothing answers.
        using var blackHole = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        blackHole.Start();
        var accepted = new ConcurrentBag<System.Net.Sockets.Socket>();
        using var stop = new CancellationTokenSource();
        var accepting = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                accepted.Add(await blackHole.AcceptSocketAsync(stop.Token));
            }
        });
        var hung = $"127.0.0.1:{((System.Net.IPEndPoint)blackHole.LocalEndpoint).Port}";
        var registrationsBefore = Registry.Registrations.Count;
        await using var agent = await InProcessAgent.StartAsync(
            "node-f", "failed-path", s => s.AddSingleton<IVolumeActivator>(new FakeActivator(null, "node-f")),
            "--controller", $"{hung},{_registry.Address.ToString().TrimEnd('/')}", "--Agent:ControllerCallTimeout", "00:00:01");

        await Eventually.TrueAsync(() => Registry.Registrations.Any(r => r.NodeName == "node-f"), "node-f registered with the next controller", TimeSpan.FromSeconds(40));
        var deadlines = agent.Logs.Records.Count(r => r.EventId.Id == 4203 && r.Message.Contains(hung, StringComparison.Ordinal) && r.Message.Contains("DeadlineExceeded", StringComparison.Ordinal));
        Assert.Equal(3, deadlines);
        Assert.Contains(agent.Logs.Records, r => r.EventId.Id == 4410 && r.Message.Contains(_registry.Address.Authority, StringComparison.Ordinal));
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => accepting);
        foreach (var socket in accepted)
        {
            socket.Dispose();
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
