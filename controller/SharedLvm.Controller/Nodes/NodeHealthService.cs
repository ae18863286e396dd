using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using SharedLvm.Contracts.V1;
using SharedLvm.Controller.Agents;

namespace SharedLvm.Controller.Nodes;

/// <summary>A node's health by layer: as its last heartbeat reported it, or asked of its agent now.</summary>
public sealed class NodeHealthService(NodeDirectory nodes, AgentClients agents, ControllerEpoch epoch)
{
    /// <summary>A live health call must answer while an LU is blocked; the agent itself waits at most 5 s for lvm.</summary>
    private static readonly TimeSpan LiveHealthTimeout = TimeSpan.FromSeconds(15);

    public async Task<NodeHealth> GetAsync(string name, bool live, CancellationToken cancellationToken)
    {
        var node = nodes.Get(name);
        var health = new NodeHealth { Node = node.Name, Overall = node.Health };
        if (live)
        {
            var report = await agents.For(node.Name, node.Address)
                .GetHealthAsync(new GetHealthRequest(), new CallOptions(deadline: DateTime.UtcNow + LiveHealthTimeout, cancellationToken: cancellationToken))
                .ConfigureAwait(false);
            health.Overall = report.Overall;
            health.Findings.AddRange(report.Findings);
            health.ReportedAt = report.CollectedAt;
            return health;
        }

        health.Findings.AddRange(node.Findings);
        if (node.LastHeartbeat is { } at)
        {
            health.ReportedAt = Timestamp.FromDateTimeOffset(at);
        }

        return health;
    }

    /// <summary>The remedy of a multipathd_unit_down finding, without a shell on the node.</summary>
    public async Task<MultipathdState> RestartMultipathdAsync(string name, CancellationToken cancellationToken)
    {
        var node = nodes.Get(name);
        return await agents.For(node.Name, node.Address)
            .RestartMultipathdAsync(new RestartMultipathdRequest { Header = epoch.HeaderFor(node.Name) }, new CallOptions(deadline: DateTime.UtcNow.AddSeconds(60), cancellationToken: cancellationToken))
            .ConfigureAwait(false);
    }
}
