using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SharedLvm.Controller.Pools;
using SharedLvm.Controller.State;
using SharedLvm.Controller.Volumes;
using SharedLvm.Grpc;
using ServingStatus = Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus;

namespace SharedLvm.Controller;

/// <summary>Runs before the API listens: takes a new epoch, loads every pool and settles the journal.</summary>
internal sealed partial class ControllerStartup : IHostedService
{
    private readonly ControllerStore _store;
    private readonly PoolRegistry _pools;
    private readonly VolumeService _volumes;
    private readonly HealthService _health;
    private readonly ILogger<ControllerStartup> _logger;

    public ControllerStartup(ControllerStore store, PoolRegistry pools, VolumeService volumes, HealthService health, ILogger<ControllerStartup> logger)
    {
        _store = store;
        _pools = pools;
        _volumes = volumes;
        _health = health;
        _logger = logger;
    }

    public string ControllerId { get; } = Guid.NewGuid().ToString("N")[..12];

    public ulong Epoch { get; private set; }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        Epoch = _store.TakeEpoch(ControllerId);
        await _pools.StartAsync(_volumes.ReconcileAsync, cancellationToken);
        _store.PruneOperations(TimeSpan.FromDays(7));
        _health.SetStatus("sharedlvm.v1.Controller", ServingStatus.Serving);
        LogStarted(_logger, ControllerId, Epoch, _pools.All.Count);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _health.SetStatus(string.Empty, ServingStatus.NotServing);
        await _pools.DisposeAsync();
    }

    [LoggerMessage(3301, LogLevel.Information, "Controller {ControllerId} serving with epoch {Epoch} and {Pools} pools")]
    private static partial void LogStarted(ILogger logger, string controllerId, ulong epoch, int pools);
}
