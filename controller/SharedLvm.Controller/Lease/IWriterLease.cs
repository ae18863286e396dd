using SharedLvm.Controller.State;

namespace SharedLvm.Controller.Lease;

/// <summary>
/// Who may write the pools' VG metadata (invariant 1) and under which epoch. With sanlock, every
/// pool's LU carries a disk lease and only its holder writes; without, this controller is the writer
/// on its operator's word (one controller, ARCHITECTURE.md).
/// </summary>
public interface IWriterLease
{
    /// <summary>This controller holds the lease and serves; false while it is a standby or after it lost the lease.</summary>
    bool IsActive { get; }

    /// <summary>The active controller's gRPC address as the lease area records it (a standby's answers name it); null when unknown.</summary>
    string? ActiveAddress { get; }

    /// <summary>When the lease was last confirmed on the disk (every lvm write, every io_timeout); null without a disk lease.</summary>
    DateTimeOffset? LastVerified { get; }

    /// <summary>Waits until this controller holds the lease of every pool, then returns the epoch to serve under.</summary>
    Task<ulong> AcquireAsync(IReadOnlyList<PoolRow> pools, CancellationToken cancellationToken);

    /// <summary>A pool whose VG was just created or adopted: lays out its lease area and holds it.</summary>
    Task AddPoolAsync(PoolRow pool, CancellationToken cancellationToken);

    /// <summary>Right before every lvm write to <paramref name="pool"/>: throws when the lease is no longer ours.</summary>
    Task VerifyAsync(string pool, CancellationToken cancellationToken);

    /// <summary>
    /// Writes the state directory's <see cref="ClusterMarks"/> beside the lease when they changed since
    /// they were last written, before the caller acts on the change (a fence frees volumes only once
    /// its mark is on the LU); a no-op without a disk lease, where the state directory is the record.
    /// </summary>
    Task SaveMarksAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Whether this controller may be active with no pool at all (nothing on any LU to hold): the one
    /// that creates the first pool. Two that did both at once could each create a pool and each hold
    /// its lease (ARCHITECTURE.md, bootstrap).
    /// </summary>
    bool MayBootstrap { get; }

    /// <summary>
    /// Whether <paramref name="pool"/>'s lease area is complete: its writer resource formatted and its
    /// creator's record written, which it does once it holds the lease. A pool another controller has
    /// finished creating, and one a standby may wait for without racing its creator.
    /// </summary>
    Task<bool> IsCompleteAsync(PoolRow pool, CancellationToken cancellationToken);

    /// <summary>An agent has seen a higher epoch than ours: another controller took over, or this one's state is old.</summary>
    void HigherEpochSeen(string node, ulong epoch);
}
