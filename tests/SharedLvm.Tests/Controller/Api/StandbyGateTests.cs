using Grpc.Core;
using SharedLvm.Contracts.Conventions;
using SharedLvm.Controller.Api;
using SharedLvm.Controller.Lease;
using SharedLvm.Controller.State;
using SharedLvm.Tests.Support;

namespace SharedLvm.Tests.Controller.Api;

/// <summary>Which calls a controller answers by its lease and its pools: standby, just active, serving.</summary>
public class StandbyGateTests
{
    private const string CreateVolume = "/sharedlvm.v1.Controller/CreateVolume";

    [Fact]
    public async Task A_standby_answers_unavailable_naming_the_active_controller()
    {
        var e = await Assert.ThrowsAsync<RpcException>(() => Call(new Lease(active: false, "ctl2.example:7400"), new ServingState(), CreateVolume));

        Assert.Equal(StatusCode.Unavailable, e.StatusCode);
        Assert.Contains("standby", e.Status.Detail, StringComparison.Ordinal);
        Assert.Equal("ctl2.example:7400", e.Trailers.GetValue(ActiveController.Trailer));
    }

    [Fact]
    public async Task The_new_active_controller_answers_unavailable_until_its_pools_are_loaded()
    {
        var serving = new ServingState();
        var lease = new Lease(active: true, "10.0.0.2:7400");

        var loading = await Assert.ThrowsAsync<RpcException>(() => Call(lease, serving, CreateVolume));
        Assert.Equal(StatusCode.Unavailable, loading.StatusCode);
        Assert.Contains("loading its pools", loading.Status.Detail, StringComparison.Ordinal);
        // It names itself, so agents stay with it rather than going round their lists.
        Assert.Equal("10.0.0.2:7400", loading.Trailers.GetValue(ActiveController.Trailer));

        serving.PoolsLoaded();
        Assert.Equal("answered", await Call(lease, serving, CreateVolume));
    }

    [Fact]
    public async Task Status_and_health_are_answered_whatever_the_lease()
    {
        var lease = new Lease(active: false, null);
        Assert.Equal("answered", await Call(lease, new ServingState(), "/sharedlvm.v1.Controller/GetControllerStatus"));
        Assert.Equal("answered", await Call(lease, new ServingState(), "/grpc.health.v1.Health/Check"));
    }

    private static Task<string> Call(IWriterLease lease, ServingState serving, string method) =>
        new StandbyGate(lease, serving).UnaryServerHandler<string, string>("request", new FakeCallContext(method), (_, _) => Task.FromResult("answered"));

    private sealed class Lease(bool active, string? activeAddress) : IWriterLease
    {
        public bool IsActive => active;

        public string? ActiveAddress => activeAddress;

        public DateTimeOffset? LastVerified => null;

        public Task<ulong> AcquireAsync(IReadOnlyList<PoolRow> pools, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task AddPoolAsync(PoolRow pool, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task VerifyAsync(string pool, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task SaveMarksAsync(CancellationToken cancellationToken) => throw new NotSupportedException();

        public bool MayBootstrap => throw new NotSupportedException();

        public Task<bool> IsCompleteAsync(PoolRow pool, CancellationToken cancellationToken) => throw new NotSupportedException();

        public void HigherEpochSeen(string node, ulong epoch) => throw new NotSupportedException();
    }
}
