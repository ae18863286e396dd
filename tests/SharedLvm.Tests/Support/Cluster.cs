using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using SharedLvm.Agent.Lvm;
using SharedLvm.Contracts.V1;
using ControllerRpc = SharedLvm.Contracts.V1.Controller;

namespace SharedLvm.Tests.Support;

/// <summary>What a cluster test starts with.</summary>
internal sealed record ClusterOptions
{
    /// <summary>A pool on a loop-device LU (root, real LVM); without it, the controller only.</summary>
    public long? PoolSizeBytes { get; init; }

    public ulong PoolMetadataSizeBytes { get; init; }

    /// <summary>The pool's WWID: the fixture trees' nodes see 35000c500a0000001, so data jobs can run on them.</summary>
    public string PoolWwid { get; init; } = string.Empty;

    public WipePolicy WipeOnDelete { get; init; }

    /// <summary>Extra controller arguments (heartbeats are 1 s unless these say otherwise).</summary>
    public IReadOnlyList<string> ControllerArgs { get; init; } = [];
}

/// <summary>
/// The controller, a pool on a loop-device LU, and agents that register with it, all in-process
/// over real gRPC: the one place cluster tests start hosts. Agents read fixture sysfs trees;
/// activation is faked below IVolumeActivator (<see cref="FakeActivator"/>) unless a test asks for
/// the agent's own. One log sink for every host: an unexpected error fails the test.
/// </summary>
internal sealed class Cluster : IAsyncDisposable
{
    private readonly string _state = Directory.CreateTempSubdirectory("slvm-cluster-").FullName;
    private readonly Dictionary<string, FakeActivator> _activators = [];
    private readonly List<InProcessAgent> _agents = [];

    private Cluster(LoopDevice? lu, string pool)
    {
        Lu = lu;
        Pool = pool;
    }

    public InProcessController Controller { get; private set; } = null!;

    public ControllerRpc.ControllerClient Api => Controller.Client;

    public LogSink Logs { get; } = new();

    /// <summary>The pool's LU; null when the cluster has no pool.</summary>
    public LoopDevice? Lu { get; }

    public string Pool { get; }

    public string StateDirectory => _state;

    /// <summary>Starts the controller (and the pool); skipped, with the reason, where the pool's LU can't be made.</summary>
    public static async Task<Cluster> StartAsync(ClusterOptions? options = null)
    {
        options ??= new ClusterOptions();
        var lu = options.PoolSizeBytes is { } size ? LoopDevice.Create(size) : null;
        if (options.PoolSizeBytes is not null)
        {
            LoopDevice.Present(lu);
        }

        var cluster = new Cluster(lu, "pool" + Guid.NewGuid().ToString("N")[..6]);
        await cluster.StartControllerAsync(options.ControllerArgs);
        if (lu is not null)
        {
            await cluster.Api.CreatePoolAsync(new CreatePoolRequest
            {
                Name = cluster.Pool, DevicePath = lu.Device, Mode = PoolCreateMode.Initialize, MetadataSizeBytes = options.PoolMetadataSizeBytes,
                Wwid = options.PoolWwid, WipeOnDelete = options.WipeOnDelete,
            });
        }

        return cluster;
    }

    /// <summary>Stops the controller and starts a new one on the same state (a restart), with these arguments.</summary>
    public async Task RestartControllerAsync(params string[] args)
    {
        await Controller.DisposeAsync();
        await StartControllerAsync(args);
    }

    /// <summary>
    /// An agent for <paramref name="node"/> on a fixture tree, registered (READY) before this returns.
    /// Activation is a <see cref="FakeActivator"/> (on the pool's LU when the cluster has one): the
    /// fixture trees have LVs active that this host's lvm can't see.
    /// </summary>
    public Task<InProcessAgent> AddAgentAsync(string node, string fixture = "two-paths", params string[] extraArgs) =>
        AddAgentAsync(node, fixture, null, extraArgs);

    /// <summary>As above, with the fake activation set up (<paramref name="prepare"/>) before the agent first reconciles.</summary>
    /// <summary>The LUs' persistent reservations, shared by every agent of this cluster (SPC-4 as a target keeps it).</summary>
    public FakeSan San { get; } = new();

    public async Task<InProcessAgent> AddAgentAsync(string node, string fixture, Action<FakeActivator>? prepare, params string[] extraArgs)
    {
        var activator = _activators[node] = new FakeActivator(Lu, node);
        prepare?.Invoke(activator);
        // The agent's lvm sees the pool's loop device as if it were the LU's multipath map: its data
        // jobs (copies, wipes) read the VG and do their I/O for real.
        string[] lvmSeesLu = Lu is null ? [] : ["--Agent:ExtraLvmDevicePatterns:0", $"^{Lu.Device}$"];
        var agent = await InProcessAgent.StartAsync(node, fixture, s =>
            {
                s.AddSingleton<IVolumeActivator>(activator);
                s.AddSingleton(San.Node());
            }, Logs,
            ["--controller", Controller.Address.ToString().TrimEnd('/'), "--Agent:InspectLvm", "false", "--Agent:ReservationCheckInterval", "00:00:01", .. lvmSeesLu, .. extraArgs]);
        _agents.Add(agent);
        await Eventually.TrueAsync(async () =>
        {
            try
            {
                return (await Api.GetNodeAsync(new GetNodeRequest { Name = node })).State == NodeState.Ready;
            }
            catch (RpcException)
            {
                return false;
            }
        }, $"{node} registered");
        return agent;
    }

    public FakeActivator Activator(string node) => _activators[node];

    /// <summary>Stops an agent (its node stops heartbeating).</summary>
    public async Task StopAgentAsync(InProcessAgent agent)
    {
        _agents.Remove(agent);
        await agent.DisposeAsync();
    }

    public Task<Volume> CreateVolumeAsync(string name, ulong sizeBytes = 16 * 1024 * 1024) =>
        Api.CreateVolumeAsync(new CreateVolumeRequest { Pool = Pool, Name = name, SizeBytes = sizeBytes }).ResponseAsync;

    /// <summary>The LV's tags as lvm itself reports them on the LU.</summary>
    public string Tags(Volume volume) => Lu!.LvTags(Pool, volume.LvName);

    public async ValueTask DisposeAsync()
    {
        try
        {
            foreach (var agent in _agents)
            {
                await agent.DisposeAsync();
            }

            await Controller.DisposeAsync();
        }
        finally
        {
            Lu?.Lvm("vgremove", "-f", Pool);
            Lu?.Dispose();
            Directory.Delete(_state, recursive: true);
        }
    }

    private async Task StartControllerAsync(IReadOnlyList<string> args) =>
        Controller = await InProcessController.StartAsync(_state, Logs, ["--Controller:HeartbeatInterval", "00:00:01", .. args]);
}
