using SharedLvm.Contracts.V1;

namespace SharedLvm.Controller.Catalog;

public enum NodeLiveness
{
    Ready,
    Unreachable,
    Fenced,
    Draining,
}

/// <summary>What the controller knows of one node: its registration and its last report.</summary>
public sealed record NodeRecord(
    string Name,
    string Address,
    NodeLiveness State,
    string AgentVersion,
    DateTimeOffset? LastHeartbeat,
    IReadOnlyList<string> VisibleWwids,
    IReadOnlyList<string> ActiveLvs,
    HealthState Health,
    IReadOnlyList<HealthFinding> Findings);
