using SharedLvm.Contracts.V1;
using SharedLvm.Os.Reservations;

namespace SharedLvm.Controller.Catalog;

public enum NodeLiveness
{
    Ready,
    Unreachable,
    Fenced,
    Draining,
}

/// <summary>How a FENCED node was fenced: only Storage is verified (its key read back absent on every pool's LU).</summary>
public enum FenceMethod
{
    Storage,
    Declared,
}

/// <summary>Why and how a node is FENCED; shown by `slvm node get/list` and in events.</summary>
public sealed record FenceInfo(FenceMethod Method, string Trigger, string Reason, DateTimeOffset At);

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
    IReadOnlyList<HealthFinding> Findings)
{
    /// <summary>Its persistent reservation key, assigned once at its first registration (null: never registered since).</summary>
    public ReservationKey? Key { get; init; }

    /// <summary>Set while FENCED.</summary>
    public FenceInfo? Fence { get; init; }

    /// <summary>What the node last read of the pools' LUs' reservations (its last heartbeat).</summary>
    public IReadOnlyList<LuReservations> Reservations { get; init; } = [];
}
