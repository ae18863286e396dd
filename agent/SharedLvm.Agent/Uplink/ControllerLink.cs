using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SharedLvm.Agent.Health;
using SharedLvm.Agent.Reservations;
using SharedLvm.Contracts.V1;
using Grpc.Core;
using SharedLvm.Contracts.Conventions;
using Grpc.Net.Client;
using SharedLvm.Grpc.Security;

namespace SharedLvm.Agent.Uplink;

/// <summary>
/// Registers with the controller and heartbeats what is active here and what the node sees. When the
/// controller is away the agent keeps serving and retries with capped, jittered backoff, so a fleet
/// does not reconnect in lockstep.
/// </summary>
public sealed class ControllerLink : BackgroundService
{
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Calls to one controller that may fail in a row (a deadline, not a refusal) before the agent
    /// tries the next on its list. One is too few: a single slow heartbeat to a live, loaded active
    /// controller then sent the agent to a standby and back through a new registration, and its node
    /// read UNREACHABLE (SAN lab S9z, cbb4d93, reverted). Never moving is too many: a controller
    /// process that hangs (or a host that froze behind a proxy that still accepts connections)
    /// answers every call with a deadline, and the agent would retry it for ever with its backoff
    /// grown to 30 s while a standby takes over. (The lab's powered-off guest is not that case: its
    /// forwarded port answers EOF at once, UNAVAILABLE, and the agent moves on the first.) After
    /// three the controller has marked this node UNREACHABLE anyway, so moving costs nothing.
    /// </summary>
    private const int FailoverAfterFailures = 3;

    private readonly AgentOptions _options;
    private readonly SanWatcher _watcher;
    private readonly EpochStore _epochs;
    private readonly Reconciler _reconciler;
    private readonly ReservationKeeper _reservations;
    private readonly IServer _server;
    private readonly IHostApplicationLifetime _lifetime;
    private readonly ILogger<ControllerLink> _logger;
    private readonly TransportSecurity _security;

    public ControllerLink(AgentOptions options, SanWatcher watcher, EpochStore epochs, Reconciler reconciler, ReservationKeeper reservations, IServer server, IHostApplicationLifetime lifetime, TransportSecurity security, ILogger<ControllerLink> logger)
    {
        _reservations = reservations;
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
        // One controller, or several (one active, standbys): a standby names the active one in a
        // trailer; an unreachable controller makes the agent try the next address.
        var controllers = _options.ControllerAddresses;
        var current = controllers[0];
        var channel = Dial(current);
        var registry = new NodeRegistry.NodeRegistryClient(channel);
        await _watcher.WaitForFirstScanAsync(stoppingToken).ConfigureAwait(false);
        var address = _options.AdvertiseAddress ?? await BoundAddressAsync(stoppingToken).ConfigureAwait(false);
        var registered = false;
        var interval = TimeSpan.FromSeconds(5);
        var backoff = TimeSpan.FromSeconds(1);
        // Failed calls in a row, per controller: kept when the agent moves on, so a dead controller
        // that a standby still names is left after one more failure, not three.
        var failures = new Dictionary<string, int>(StringComparer.Ordinal);
        CallOptions Call() => new(deadline: DateTime.UtcNow + _options.ControllerCallTimeout, cancellationToken: stoppingToken);
        while (!stoppingToken.IsCancellationRequested)
        {
            var call = Call();
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
                    _reservations.Apply(response.Reservations);
                    OwnedVolumes = response.OwnedVolumes;
                    interval = TimeSpan.FromSeconds(Math.Max(1, response.HeartbeatIntervalSeconds));
                    // The reconcile refreshes the whole SAN view (lvm included) and may deactivate
                    // strays: seconds on a node that just booted or restarted its agent, more than the
                    // 3 intervals the controller waits for a heartbeat. Seen in the SAN lab: every
                    // (re)registration was followed by UNREACHABLE 6 s later, and an attach right then
                    // was refused. Heartbeats go on while it runs.
                    var reconcile = _reconciler.ReconcileAsync(response.OwnedVolumes, stoppingToken);
                    while (await Task.WhenAny(reconcile, Task.Delay(interval, stoppingToken)).ConfigureAwait(false) != reconcile)
                    {
                        try
                        {
                            await registry.HeartbeatAsync(Heartbeat(), Call()).ConfigureAwait(false);
                        }
                        catch (RpcException) when (!stoppingToken.IsCancellationRequested)
                        {
                            // The loop below deals with the link once the reconcile is done.
                        }
                    }

                    await reconcile.ConfigureAwait(false);
                    registered = true;
                    AgentLog.Registered(_logger, _options.NodeName, current, response.Epoch.Value, response.OwnedVolumes.Count);
                }
                else
                {
                    var response = await registry.HeartbeatAsync(Heartbeat(), call).ConfigureAwait(false);
                    AcceptEpoch(response.Epoch);
                    _reservations.Apply(response.Reservations);
                    registered = !response.Reregister;
                }

                if (!Connected)
                {
                    Connected = true;
                    AgentLog.ControllerLinkConnected(_logger, current);
                }

                backoff = TimeSpan.FromSeconds(1);
                failures.Remove(current);
                await Task.Delay(interval, stoppingToken).ConfigureAwait(false);
            }
            catch (RpcException e) when (!stoppingToken.IsCancellationRequested)
            {
                if (Connected || !registered)
                {
                    AgentLog.Unreachable(_logger, current, e.StatusCode, e.Status.Detail, backoff.TotalSeconds);
                }

                Connected = false;
                registered = registered && e.StatusCode != StatusCode.NotFound;
                var named = e.Trailers.GetValue(ActiveController.Trailer);
                if (named is { Length: > 0 })
                {
                    // A standby answered: no failure of the link, and it may be active in a moment.
                    // Measured in the SAN lab: with the backoff grown to 30 s during an 80 s
                    // takeover, the node's agent registered with the new active controller 39 s after
                    // its first create worked, and the first attach waited for it.
                    backoff = TimeSpan.FromSeconds(1);
                }

                var failed = named is { Length: > 0 } ? 0 : failures.GetValueOrDefault(current) + 1;
                failures[current] = failed;
                var next = named is { Length: > 0 } ? named
                    : e.StatusCode == StatusCode.Unavailable || failed >= FailoverAfterFailures ? controllers[(Array.IndexOf(controllers, current) + 1) % controllers.Length]
                    : current;
                if (!string.Equals(next, current, StringComparison.Ordinal))
                {
                    // A new controller: register with it (it answers with its epoch and what this node owns).
                    channel.Dispose();
                    current = next;
                    channel = Dial(current);
                    registry = new NodeRegistry.NodeRegistryClient(channel);
                    registered = false;
                    AgentLog.FollowingController(_logger, current);
                }

                await Task.Delay(backoff + TimeSpan.FromMilliseconds(Random.Shared.Next(0, 1000)), stoppingToken).ConfigureAwait(false);
                backoff = named is { Length: > 0 } ? backoff : TimeSpan.FromTicks(Math.Min(MaxBackoff.Ticks, backoff.Ticks * 2));
            }
            catch (OperationCanceledException)
            {
                break;
            }
            catch (RpcException) when (stoppingToken.IsCancellationRequested)
            {
                // The agent is stopping with a call in flight: the call ends CANCELLED, which is no failure.
                break;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // E.g. the epoch file can't be written: keep trying rather than go silent.
                AgentLog.LinkFailed(_logger, e);
                Connected = false;
                registered = false;
                await Task.Delay(backoff, stoppingToken).ConfigureAwait(false);
                backoff = TimeSpan.FromTicks(Math.Min(MaxBackoff.Ticks, backoff.Ticks * 2));
            }
        }

        channel.Dispose();
    }

    /// <summary>What the node reports in a heartbeat: its view of the SAN as the watcher has it now.</summary>
    private HeartbeatRequest Heartbeat()
    {
        var snapshot = _watcher.Current;
        var heartbeat = new HeartbeatRequest { NodeName = _options.NodeName, VisibleWwids = { snapshot?.View.Maps.Select(m => m.Wwid) ?? [] } };
        if (snapshot is not null)
        {
            // Volumes only: the node's own LVs (root, swap) are no business of the
            // controller's double-activation check.
            heartbeat.ActiveLvs.AddRange(snapshot.View.ActiveLvs
                .Select(l => DmName.Split(l.DmName)).OfType<(string Vg, string Lv)>()
                .Where(l => VolumeId.IsVolumeLv(l.Lv)).Select(l => l.Vg + "/" + l.Lv));
            heartbeat.Health = snapshot.Overall;
            heartbeat.Findings.AddRange(snapshot.Findings.Select(f => f.ToContract()));
        }

        heartbeat.Reservations.AddRange(_reservations.Observed);
        return heartbeat;
    }

    private GrpcChannel Dial(string address) =>
        _security.Dial(address, PeerRoles.Controller, refused: why => AgentLog.ControllerRefused(_logger, address, why));

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
        if (!_epochs.Observe(epoch.Value, epoch.ControllerId))
        {
            AgentLog.StaleController(_logger, epoch.Value, epoch.ControllerId, _epochs.Highest);
            throw new RpcException(new Status(StatusCode.FailedPrecondition,
                $"Controller {epoch.ControllerId} at epoch {epoch.Value} is deposed: this node has seen epoch {_epochs.Highest} of controller {_epochs.Holder}."));
        }
    }
}
