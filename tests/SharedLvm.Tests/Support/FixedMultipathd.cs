using SharedLvm.Agent.Discovery;

namespace SharedLvm.Tests.Support;

/// <summary>multipathd as a fixed answer (null: multipathd does not answer).</summary>
internal sealed class FixedMultipathd(IReadOnlyList<MultipathdMap>? maps) : IMultipathd
{
    public Task<IReadOnlyList<MultipathdMap>?> ShowMapsAsync(CancellationToken cancellationToken) => Task.FromResult(maps);
}
