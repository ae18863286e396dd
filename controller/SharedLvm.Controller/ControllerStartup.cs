using Grpc.HealthCheck;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SharedLvm.Controller.Pools;
using SharedLvm.Controller.State;
using ServingStatus = Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus;

namespace SharedLvm.Controller;

/// <summary>Runs before the API listens: takes a new epoch, loads every pool and settles the journal.</summary>
internal sealed class ControllerStartup(ControllerStore store, PoolRegistry pools, ControllerEpoch epoch, HealthServiceImpl health, ILogger<ControllerStartup> logger) : IHostedService
{
    public const string ApiService = "sharedlvm.v1.Controller";

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        epoch.Set(store.TakeEpoch(epoch.ControllerId));
        await pools.StartAsync(cancellationToken);
        store.PruneOperations(TimeSpan.FromDays(7));
        health.SetStatus(ApiService, ServingStatus.Serving);
        ControllerLog.Started(logger, epoch.ControllerId, epoch.Value, pools.All.Count);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        health.SetStatus(string.Empty, ServingStatus.NotServing);
        health.SetStatus(ApiService, ServingStatus.NotServing);
        await pools.DisposeAsync();
    }
}
