using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SharedLvm.Agent.Health;
using SharedLvm.Contracts.V1;
using Grpc.Core;
using SharedLvm.Contracts.Conventions;
using SharedLvm.Grpc.Security;

namespace SharedLvm.Agent.Uplink;

/// <summary>
/// Registers with the controller and heartbeats what is active here and what the node sees. When the
/// controller is away the agent keeps serving and retries with capped, jittered backoff, so a fleet
/// does not reconnect in lockstep.
/// </summary>
public sealed partial class ControllerLink : BackgroundService
{
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(30);
    private readonly AgentOptions _options;
    private readonly SanWatcher _watcher;
    private readonly EpochStore _epochs;
    private readonly Reconciler _reconciler;
    private readonly IServer _server;
    private readonly IHostApplicationLifetime _lifetime;
    private readonly ILogger<ControllerLink> _logger;
    private readonly TransportSecurity _security;

    public ControllerLink(AgentOptions options, SanWatcher watcher, EpochStore epochs, Reconciler reconciler, IServer server, IHostApplicationLifetime lifetime, TransportSecurity security, ILogger<ControllerLink> logger)
    {
        _security = security;
        _reconciler = reconciler;
        _options = options;
        _watcher = watcher;
        _epochs = epochs;
        _server = server;
        _lifetime = lifetime;
        _logger = logger;
    }

    public bool Connected { get; private set; }

    /// <summary>LVs the controller says this node owns, from the last registration.</summary>
    public IReadOnlyList<OwnedVolume> OwnedVolumes { get; private set; } = [];

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var channel = _security.Dial(_options.Controller, PeerRoles.Controller, refused: why => LogControllerRefused(_logger, _options.Controller, why));
        var registry = new NodeRegistry.NodeRegistryClient(channel);
        await _watcher.WaitForFirstScanAsync(stoppingToken).ConfigureAwait(false);
        var address = _options.AdvertiseAddress ?? await BoundAddressAsync(stoppingToken).ConfigureAwait(false);
        var registered = false;
        var interval = TimeSpan.FromSeconds(5);
        var backoff = TimeSpan.FromSeconds(1);
        while (!stoppingToken.IsCancellationRequested)
        {
            var call = new CallOptions(deadline: DateTime.UtcNow.AddSeconds(10), cancellationToken: stoppingToken);
            try
            {
                var snapshot = _watcher.Current;
                var wwids = snapshot?.View.Maps.Select(m => m.Wwid).ToArray() ?? [];
                if (!registered)
                {
                    var response = await registry.RegisterNodeAsync(new RegisterNodeRequest
                    {
                        NodeName = _options.NodeName,
                        Address = address,
                        AgentVersion = typeof(ControllerLink).Assembly.GetName().Version?.ToString() ?? string.Empty,
                        HighestEpochSeen = _epochs.Highest,
                        VisibleWwids = { wwids },
                    }, call).ConfigureAwait(false);
                    AcceptEpoch(response.Epoch);
                    OwnedVolumes = response.OwnedVolumes;
                    interval = TimeSpan.FromSeconds(Math.Max(1, response.HeartbeatIntervalSeconds));
                    await _reconciler.ReconcileAsync(response.OwnedVolumes, stoppingToken).ConfigureAwait(false);
                    registered = true;
                    LogRegistered(_logger, _options.NodeName, _options.Controller, response.Epoch.Value, response.OwnedVolumes.Count);
                }
                else
                {
                    var heartbeat = new HeartbeatRequest { NodeName = _options.NodeName, VisibleWwids = { wwids } };
                    if (snapshot is not null)
                    {
                        heartbeat.ActiveLvs.AddRange(snapshot.View.ActiveLvs.Select(l => DmName.ToVgLv(l.DmName)).OfType<string>());
                        heartbeat.Health = snapshot.Overall;
                        heartbeat.Findings.AddRange(snapshot.Findings.Select(f => f.ToContract()));
                    }

                    var response = await registry.HeartbeatAsync(heartbeat, call).ConfigureAwait(false);
                    AcceptEpoch(response.Epoch);
                    registered = !response.Reregister;
                }

                if (!Connected)
                {
                    Connected = true;
                    LogConnected(_logger, _options.Controller);
                }

                backoff = TimeSpan.FromSeconds(1);
                await Task.Delay(interval, stoppingToken).ConfigureAwait(false);
            }
            catch (RpcException e) when (!stoppingToken.IsCancellationRequested)
            {
                if (Connected || !registered)
                {
                    LogUnreachable(_logger, _options.Controller, e.StatusCode, e.Status.Detail, backoff.TotalSeconds);
                }

                Connected = false;
                registered = registered && e.StatusCode != StatusCode.NotFound;
                await Task.Delay(backoff + TimeSpan.FromMilliseconds(Random.Shared.Next(0, 1000)), stoppingToken).ConfigureAwait(false);
                backoff = TimeSpan.FromTicks(Math.Min(MaxBackoff.Ticks, backoff.Ticks * 2));
            }
            catch (OperationCanceledException)
            {
                break;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // E.g. the epoch file can't be written: keep trying rather than go silent.
                LogLinkFailed(_logger, e);
                Connected = false;
                registered = false;
                await Task.Delay(backoff, stoppingToken).ConfigureAwait(false);
                backoff = TimeSpan.FromTicks(Math.Min(MaxBackoff.Ticks, backoff.Ticks * 2));
            }
        }
    }

    /// <summary>The address Kestrel really bound (Listen may say port 0), known once the server started.</summary>
    private async Task<string> BoundAddressAsync(CancellationToken cancellationToken)
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using (_lifetime.ApplicationStarted.Register(() => started.TrySetResult()))
        {
            await started.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }

        var bound = _server.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault();
        return bound is null ? _options.Listen : new Uri(bound).Authority;
    }

    private void AcceptEpoch(Epoch epoch)
    {
        if (!_epochs.Observe(epoch.Value))
        {
            LogStaleController(_logger, epoch.Value, epoch.ControllerId, _epochs.Highest);
            throw new RpcException(new Status(StatusCode.FailedPrecondition, $"Controller epoch {epoch.Value} is older than {_epochs.Highest}: a deposed controller."));
        }
    }

    [LoggerMessage(4206, LogLevel.Error, "Controller {Controller} refused over TLS: {Reason}")]
    private static partial void LogControllerRefused(ILogger logger, string controller, string reason);

    [LoggerMessage(4201, LogLevel.Information, "Node {Node} registered with controller {Controller} at epoch {Epoch}; it owns {Owned} volumes")]
    private static partial void LogRegistered(ILogger logger, string node, string controller, ulong epoch, int owned);

    [LoggerMessage(4202, LogLevel.Information, "Connected to controller {Controller}")]
    private static partial void LogConnected(ILogger logger, string controller);

    [LoggerMessage(4203, LogLevel.Warning, "Controller {Controller} unreachable ({StatusCode}: {Detail}); retrying in about {Seconds} s")]
    private static partial void LogUnreachable(ILogger logger, string controller, StatusCode statusCode, string detail, double seconds);

    [LoggerMessage(4205, LogLevel.Error, "Controller link failed; retrying")]
    private static partial void LogLinkFailed(ILogger logger, Exception exception);

    [LoggerMessage(4204, LogLevel.Error, "Refusing controller epoch {Epoch} ({ControllerId}): this agent has seen epoch {Highest}")]
    private static partial void LogStaleController(ILogger logger, ulong epoch, string controllerId, ulong highest);
}
