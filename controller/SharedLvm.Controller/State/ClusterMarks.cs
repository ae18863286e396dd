using System.Text.Json.Serialization;

namespace SharedLvm.Controller.State;

/// <summary>
/// The part of the controller's state that must outlive every controller host (issue 16, "the LU is
/// the database"): nodes' reservation numbers (a number reused for another node would let one
/// preempt remove two nodes' keys), FENCED and DRAINING marks with their fence records (a controller
/// that forgot a fence would tell the fenced node to register its key again, undoing the fence
/// while its old LVs may still be active there), and each pool's wipe policy. The active controller
/// writes it beside every pool's lease (<see cref="Lease.LeaseArea"/>) before it acts on a change;
/// a controller that takes over reads the newest copy and merges it into its state directory.
/// Volumes, owners and data-job marks are LV tags and need no copy here; the attaches and detaches
/// in flight do (<see cref="Attachments"/>): an owner tag alone can't say whether its node was ever
/// asked to activate, or had already confirmed a deactivation.
/// </summary>
public sealed record ClusterMarks(
    [property: JsonPropertyName("epoch")] ulong Epoch,
    [property: JsonPropertyName("sequence")] ulong Sequence,
    [property: JsonPropertyName("nodes")] IReadOnlyList<NodeMark> Nodes,
    [property: JsonPropertyName("pools")] IReadOnlyList<PoolMark> Pools)
{
    /// <summary>
    /// The attachments in an ATTACHING or DETACHING phase, written before the owner tag changes; null
    /// in a copy written before they were kept here (a successor then leaves its own records alone).
    /// </summary>
    [JsonPropertyName("attachments")]
    public IReadOnlyList<AttachmentMark>? Attachments { get; init; }

    /// <summary>Which of two copies is newer: a takeover's epoch first, then the writer's sequence.</summary>
    public bool IsNewerThan(ClusterMarks? other) => other is null || (Epoch, Sequence).CompareTo((other.Epoch, other.Sequence)) > 0;
}

/// <summary>A node as the cluster must remember it; <see cref="Mark"/> is "Fenced", "Draining" or empty.</summary>
public sealed record NodeMark(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("reservation_number")] uint? ReservationNumber,
    [property: JsonPropertyName("address")] string Address,
    [property: JsonPropertyName("agent_version")] string AgentVersion,
    [property: JsonPropertyName("mark")] string Mark,
    [property: JsonPropertyName("fence")] FenceRow? Fence);

public sealed record PoolMark(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("wipe_on_delete")] string WipeOnDelete);

/// <summary>An attach or a detach that had started; <see cref="Phase"/> is "Attaching" or "Detaching".</summary>
public sealed record AttachmentMark(
    [property: JsonPropertyName("volume_id")] string VolumeId,
    [property: JsonPropertyName("node")] string Node,
    [property: JsonPropertyName("phase")] string Phase,
    [property: JsonPropertyName("since")] DateTimeOffset Since);
