namespace SharedLvm.Controller.Api;

/// <summary>
/// Whether this controller has loaded its pools since it became the writer. Between taking the lease
/// and that, every pool looks absent: the lab's takeover (S10) saw a create answered NOT_FOUND for a
/// pool the new active controller was still loading. <see cref="StandbyGate"/> answers UNAVAILABLE
/// until then, which clients retry.
/// </summary>
public sealed class ServingState
{
    private volatile bool _serving;

    public bool IsServing => _serving;

    /// <summary>Called once the pools are loaded and the journal settled.</summary>
    public void PoolsLoaded() => _serving = true;
}
