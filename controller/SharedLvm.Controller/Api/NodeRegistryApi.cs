using SharedLvm.Contracts.V1;
using SharedLvm.Controller.Nodes;
using SharedLvm.Controller.Pools;
using SharedLvm.Grpc;
using static SharedLvm.Controller.Api.StatusMapping;

namespace SharedLvm.Controller.Api;

/// <summary>sharedlvm.v1.NodeRegistry: agents register and heartbeat here.</summary>
public sealed class NodeRegistryApi
{
    private readonly NodeDirectory _nodes;
    private readonly PoolRegistry _pools;
    private readonly ControllerStartup _startup;

    internal NodeRegistryApi(NodeDirectory nodes, PoolRegistry pools, ControllerStartup startup)
    {
        _nodes = nodes;
        _pools = pools;
        _startup = startup;
    }

    public static Google.Protobuf.Reflection.ServiceDescriptor Descriptor =>
        ControllerReflection.Descriptor.FindTypeByName<Google.Protobuf.Reflection.ServiceDescriptor>("NodeRegistry");

    public Task<RegisterNodeResponse> RegisterNode(RegisterNodeRequest request, ServerCallContext context) => Guard(() =>
    {
        _nodes.Register(request.NodeName, request.Address, request.AgentVersion, request.VisibleWwids);
        var response = new RegisterNodeResponse { Epoch = Epoch(), HeartbeatIntervalSeconds = (uint)_nodes.HeartbeatInterval.TotalSeconds };
        // What the controller's records say this node owns: the agent deactivates anything else.
        response.OwnedVolumes.AddRange(_pools.All.SelectMany(p => p.Catalog.Snapshot())
            .Where(v => v.Owners.Contains(request.NodeName, StringComparer.Ordinal))
            .Select(v => new OwnedVolume { VolumeId = v.Id, VgName = v.VgName, LvName = v.LvName }));
        return Task.FromResult(response);
    });

    public Task<HeartbeatResponse> Heartbeat(HeartbeatRequest request, ServerCallContext context) => Guard(() =>
    {
        var known = _nodes.Heartbeat(request.NodeName, request.ActiveLvs, request.VisibleWwids, request.Health, request.Findings);
        return Task.FromResult(new HeartbeatResponse { Epoch = Epoch(), Reregister = !known });
    });

    private Epoch Epoch() => new() { Value = _startup.Epoch, ControllerId = _startup.ControllerId };
}
