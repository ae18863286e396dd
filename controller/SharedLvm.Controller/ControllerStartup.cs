using Grpc.HealthCheck;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SharedLvm.Contracts.Conventions;
using SharedLvm.Controller.Api;
using SharedLvm.Controller.Lease;
using SharedLvm.Controller.Nodes;
using SharedLvm.Controller.Pools;
using SharedLvm.Controller.State;
using SharedLvm.Controller.Volumes;
using SharedLvm.Os.Lvm;
using SharedLvm.Os.Processes;
using ServingStatus = Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus;

namespace SharedLvm.Controller;

/// <summary>
/// Becomes the writer, then serves: takes the writer lease (at once without sanlock; with it, as a
/// standby for as long as another controller holds it, while the API answers UNAVAILABLE naming the
/// active one), takes the epoch, loads every pool and settles the journal. With sanlock it then
/// watches the lease on the disk, so a takeover stops this controller even when it has nothing to write.
/// </summary>
internal sealed class ControllerStartup(
    ControllerStore store, PoolRegistry pools, NodeDirectory nodes, ControllerEpoch epoch, IWriterLease lease, ControllerOptions options,
    IProcessRunner runner, SnapshotSupport snapshots, HealthServiceImpl health, ServingState serving, IHostApplicationLifetime lifetime, ILogger<ControllerStartup> logger) : IHostedService, IDisposable
{
    public const string ApiService = "sharedlvm.v1.Controller";
    private readonly CancellationTokenSource _stopping = new();
    private Task? _background;
    private int _stopped;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        health.SetStatus(ApiService, ServingStatus.NotServing);
        if (!options.UsesSanlock)
        {
            // One controller: the API listens once everything is loaded.
            await BecomeActiveAsync(cancellationToken).ConfigureAwait(false);
            return;
        }

        // A standby listens from the start: its answers point clients to the active controller.
        _background = Task.Run(() => RunAsync(_stopping.Token), CancellationToken.None);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        // A host may be stopped again after it was disposed (a test's restart): once is enough.
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return;
        }

        health.SetStatus(string.Empty, ServingStatus.NotServing);
        health.SetStatus(ApiService, ServingStatus.NotServing);
        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_background is not null)
        {
            await _background.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        await pools.DisposeAsync().ConfigureAwait(false);
    }

    public void Dispose() => _stopping.Dispose();

    private async Task RunAsync(CancellationToken stopping)
    {
        try
        {
            // One that may not bootstrap takes a pool only once its creator finished it (see below).
            await DiscoverPoolsAsync(stopping, lease.MayBootstrap ? null : lease.IsCompleteAsync).ConfigureAwait(false);
            await WaitForFirstPoolAsync(stopping).ConfigureAwait(false);
            await BecomeActiveAsync(stopping).ConfigureAwait(false);
            var period = TimeSpan.FromSeconds(Math.Max(1, options.LeaseIoTimeoutSeconds));
            using var timer = new PeriodicTimer(period);
            while (await timer.WaitForNextTickAsync(stopping).ConfigureAwait(false))
            {
                foreach (var pool in pools.All)
                {
                    await lease.VerifyAsync(pool.Name, stopping).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }
        catch (ControllerException) when (!lease.IsActive)
        {
            // Lost: the lease has logged it and asked the host to stop (exit 75).
        }
        catch (Exception e)
        {
            ControllerLog.StartupFailed(logger, e);
            Environment.ExitCode = SharedLvm.Hosting.Daemon.TemporaryFailure;
            lifetime.StopApplication();
        }
    }

    private async Task BecomeActiveAsync(CancellationToken cancellationToken)
    {
        epoch.Set(await lease.AcquireAsync(store.Pools(), cancellationToken).ConfigureAwait(false));
        // The lease brought the marks the last active controller kept on the LU; every pool's area
        // gets the merged copy (an area created just now has none).
        nodes.Reload();
        await lease.SaveMarksAsync(cancellationToken).ConfigureAwait(false);
        await pools.StartAsync(cancellationToken).ConfigureAwait(false);
        serving.PoolsLoaded();
        store.PruneOperations(TimeSpan.FromDays(7));
        health.SetStatus(ApiService, ServingStatus.Serving);
        ControllerLog.Started(logger, epoch.ControllerId, epoch.Value, pools.All.Count);
        if (snapshots.UnavailableReason is { } why)
        {
            ControllerLog.SnapshotsUnavailable(logger, why);
        }
    }

    /// <summary>
    /// The bootstrap race (issue 16): with no pool there is no lease to hold, and two controllers
    /// started empty would each be active on their own word, each create a pool and each hold its
    /// lease. Only the one that may bootstrap (<see cref="IWriterLease.MayBootstrap"/>) goes on; the
    /// others stay standbys and look at their PoolDevices every lease retry interval until a pool
    /// appears there whose lease area is complete (<see cref="IWriterLease.IsCompleteAsync"/>: its
    /// creator formatted it and holds it; formatting it alongside would wipe the creator's delta
    /// lease, and acquiring it first would leave two controllers that each think they are active),
    /// then wait for its lease like any standby. If host id 1's never creates a pool on a device
    /// they are given, they wait for ever: the log says so.
    /// </summary>
    private async Task WaitForFirstPoolAsync(CancellationToken cancellationToken)
    {
        if (lease.MayBootstrap || store.Pools().Count > 0)
        {
            return;
        }

        ControllerLog.WaitingForFirstPool(logger, options.PoolDevices, options.HostId);
        var interval = TimeSpan.FromSeconds(Math.Max(1, 2 * options.LeaseIoTimeoutSeconds));
        while (store.Pools().Count == 0)
        {
            await Task.Delay(interval, cancellationToken).ConfigureAwait(false);
            await DiscoverPoolsAsync(cancellationToken, lease.IsCompleteAsync).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The LU is the record of which pools exist: a device named in PoolDevices whose VG carries a lease
    /// area joins this controller's state (a fresh host, a lost state directory); with
    /// <paramref name="complete"/>, only once that says the area is.
    /// </summary>
    private async Task DiscoverPoolsAsync(CancellationToken cancellationToken, Func<PoolRow, CancellationToken, Task<bool>>? complete = null)
    {
        var known = store.Pools();
        foreach (var device in options.PoolDevices.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (known.Any(p => string.Equals(p.DevicePath, device, StringComparison.Ordinal)))
            {
                continue;
            }

            var probe = new PoolRow(string.Empty, string.Empty, device, string.Empty, Catalog.WipeOnDelete.Zero);
            var reader = new LvmReader(runner, PoolRegistry.LvmConfigFor(probe, options), options.LvmTimeout, options.LvmBinary);
            if (await reader.PvVgNameAsync(device, cancellationToken).ConfigureAwait(false) is not { Length: > 0 } vg
                || await reader.LayoutAsync(vg, LeaseArea.LvName, cancellationToken).ConfigureAwait(false) is null)
            {
                continue;
            }

            var found = probe with { Name = vg, VgName = vg, Wwid = MultipathDevice.WwidOf(device) };
            if (complete is not null && !await complete(found, cancellationToken).ConfigureAwait(false))
            {
                continue;
            }

            store.AddPool(found);
            ControllerLog.PoolDiscovered(logger, vg, device);
        }
    }
}
