using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using SharedLvm.Contracts.V1;
using SharedLvm.Controller.Agents;
using SharedLvm.Controller.Catalog;
using AgentRpc = SharedLvm.Contracts.V1.Agent;

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
            var report = await AskAsync(node, "a live health report", a => a.GetHealthAsync(new GetHealthRequest(), new CallOptions(deadline: DateTime.UtcNow + LiveHealthTimeout, cancellationToken: cancellationToken)), cancellationToken)
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
        return await AskAsync(node, "the multipathd restart", a => a.RestartMultipathdAsync(new RestartMultipathdRequest { Header = epoch.HeaderFor(node.Name) }, new CallOptions(deadline: DateTime.UtcNow.AddSeconds(60), cancellationToken: cancellationToken)), cancellationToken)
            .ConfigureAwait(false);
    }

    /// <summary>A node's rescan for LUs (by WWID: targeted, see the agent's ScsiRescanner), under this controller's epoch.</summary>
    public async Task<RescanNodeResponse> RescanAsync(string name, IReadOnlyCollection<string> wwids, uint waitSeconds, CancellationToken cancellationToken)
    {
        if (waitSeconds > 300)
        {
            throw ControllerException.Invalid("wait_seconds must be at most 300.");
        }

        foreach (var wwid in wwids)
        {
            Validation.Wwid("wwids", wwid);
        }

        var node = nodes.Get(name);
        var request = new RescanRequest { Header = epoch.HeaderFor(node.Name), WaitSeconds = waitSeconds };
        request.Expect.AddRange(wwids.Select(w => new LunAddress { Wwid = w }));
        var result = await AskAsync(node, "the rescan", a => a.RescanAsync(request, new CallOptions(deadline: DateTime.UtcNow.AddSeconds((waitSeconds == 0 ? 30 : waitSeconds) + 90), cancellationToken: cancellationToken)), cancellationToken)
            .ConfigureAwait(false);
        var response = new RescanNodeResponse { DurationMs = result.DurationMs };
        response.Scans.AddRange(result.Hosts.Select(h => $"host{h.Host}: {h.Scan} ({h.DurationMs} ms){(h.Error.Length > 0 ? ": " + h.Error : string.Empty)}"));
        response.Appeared.AddRange(result.Appeared);
        response.Missing.AddRange(result.Missing);
        return response;
    }

    /// <summary>A call to the node's agent; its failure becomes the controller's own status, naming the node (<see cref="AgentClients.KindOf"/>).</summary>
    private async Task<T> AskAsync<T>(NodeRecord node, string what, Func<AgentRpc.AgentClient, AsyncUnaryCall<T>> call, CancellationToken cancellationToken)
    {
        try
        {
            return await call(agents.For(node.Name, node.Address)).ConfigureAwait(false);
        }
        catch (RpcException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new ControllerException(AgentClients.KindOf(e), $"Node {node.Name}'s agent did not answer {what} ({e.StatusCode}: {e.Status.Detail}); retry.", e);
        }
    }
}
