using Grpc.Core;
using SharedLvm.Contracts.V1;
using SharedLvm.Controller.Lease;
using SharedLvm.Controller.Nodes;
using SharedLvm.Controller.Pools;

namespace SharedLvm.Controller.Api;

/// <summary>sharedlvm.v1.NodeRegistry: agents register and heartbeat here.</summary>
public sealed class NodeRegistryService(NodeDirectory nodes, PoolRegistry pools, ControllerEpoch epoch, IWriterLease lease) : NodeRegistry.NodeRegistryBase
{
    public override async Task<RegisterNodeResponse> RegisterNode(RegisterNodeRequest request, ServerCallContext context)
    {
        if (request.HighestEpochSeen > epoch.Value)
        {
            // The agent will refuse us anyway; say why, and make sure the next epoch is above it.
            lease.HigherEpochSeen(request.NodeName, request.HighestEpochSeen);
        }

        nodes.Register(request.NodeName, request.Address, request.AgentVersion, request.VisibleWwids);
        // A new node's reservation number is on the LU before the reply hands it out: a successor
        // must never give it to another node.
        await lease.SaveMarksAsync(context.CancellationToken);
        var response = new RegisterNodeResponse
        {
            Epoch = epoch.ToContract(),
            HeartbeatIntervalSeconds = (uint)nodes.HeartbeatInterval.TotalSeconds,
            Reservations = nodes.ReservationOrderFor(request.NodeName),
        };
        // What the controller's records say this node owns: the agent deactivates anything else.
        response.OwnedVolumes.AddRange(pools.All.SelectMany(p => p.Catalog.Snapshot())
            .Where(v => v.IsOwnedBy(request.NodeName))
            .Select(v => new OwnedVolume { VolumeId = v.Id, VgName = v.VgName, LvName = v.LvName }));
        return response;
    }

    public override Task<HeartbeatResponse> Heartbeat(HeartbeatRequest request, ServerCallContext context)
    {
        var known = nodes.Heartbeat(request.NodeName, request.ActiveLvs, request.VisibleWwids, request.Health, request.Findings, request.Reservations);
        return Task.FromResult(new HeartbeatResponse
        {
            Epoch = epoch.ToContract(),
            Reregister = !known,
            Reservations = known ? nodes.ReservationOrderFor(request.NodeName) : null,
        });
    }
}
