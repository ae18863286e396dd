using Microsoft.Extensions.Logging;
using SharedLvm.Controller.State;

namespace SharedLvm.Controller.Lease;

/// <summary>
/// No disk lease (Controller:Lease "none"): one controller, the writer because its operator runs only
/// one. The epoch comes from the state directory; an agent that has seen a higher one makes the next
/// start take an epoch above it, so a lost state directory costs one restart, not a visit to every node.
/// </summary>
public sealed class LocalLease(ControllerStore store, ControllerEpoch epoch, ILogger<LocalLease> logger) : IWriterLease
{
    private ulong _highestReported;

    public bool IsActive { get; private set; }

    public string? ActiveAddress => null;

    public DateTimeOffset? LastVerified => null;

    public Task<ulong> AcquireAsync(IReadOnlyList<PoolRow> pools, CancellationToken cancellationToken)
    {
        IsActive = true;
        return Task.FromResult(store.TakeEpoch(epoch.ControllerId));
    }

    public Task AddPoolAsync(PoolRow pool, CancellationToken cancellationToken) => Task.CompletedTask;

    public Task VerifyAsync(string pool, CancellationToken cancellationToken) => Task.CompletedTask;

    public Task SaveMarksAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public bool MayBootstrap => true;

    public Task<bool> IsCompleteAsync(PoolRow pool, CancellationToken cancellationToken) => Task.FromResult(true);

    public void HigherEpochSeen(string node, ulong seen)
    {
        if (Interlocked.Exchange(ref _highestReported, Math.Max(seen, Volatile.Read(ref _highestReported))) < seen)
        {
            store.TakeEpoch(epoch.ControllerId, seen);
            ControllerLog.HigherEpochSeen(logger, node, seen, epoch.Value);
        }
    }
}
