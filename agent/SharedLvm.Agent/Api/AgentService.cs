using Grpc.Core;
using Microsoft.Extensions.Logging;
using SharedLvm.Agent.Activation;
using SharedLvm.Agent.DBus;
using SharedLvm.Agent.Data;
using SharedLvm.Agent.Health;
using SharedLvm.Agent.Inventory;
using SharedLvm.Agent.Lvm;
using SharedLvm.Agent.Rescan;
using SharedLvm.Agent.Reservations;
using SharedLvm.Os.Reservations;
using SharedLvm.Agent.Telemetry;
using SharedLvm.Contracts.V1;
using AgentRpc = SharedLvm.Contracts.V1.Agent;

namespace SharedLvm.Agent.Api;

/// <summary>
/// sharedlvm.v1.Agent: messages in, the node's workflows, messages out. Every command passes the
/// <see cref="CommandGuard"/> first; exceptions become statuses in <see cref="AgentStatusMapper"/>.
/// </summary>
public sealed class AgentService(
    CommandGuard guard,
    ActivationWorkflow activation,
    DataWorkflow data,
    SanWatcher watcher,
    IDmSetup dmsetup,
    ScsiRescanner rescanner,
    SystemdBus systemd,
    AgentMetrics metrics,
    ReservationKeeper reservations,
    AgentOptions options,
    ILogger<AgentService> logger) : AgentRpc.AgentBase
{
    private const uint DefaultRescanWaitSeconds = 30;
    private const uint MaxRescanWaitSeconds = 600;
    private static readonly string AgentVersion = typeof(AgentService).Assembly.GetName().Version?.ToString() ?? string.Empty;

    public override Task<ActivateVolumeResponse> ActivateVolume(ActivateVolumeRequest request, ServerCallContext context) => Measured("activate", request.Lv, async () =>
    {
        var (vg, lv) = guard.Check(request.Header, request.Lv);
        var activated = await activation.ActivateAsync(vg, lv, request.Lv.Lun?.Wwid ?? string.Empty, context.CancellationToken);
        // Without lvmlockd, LVM activates the same way for one holder or two; what differs is that the
        // controller accepted a second holder for a live migration, which the logs should say.
        AgentLog.Activated(logger, vg, lv, request.Lv.VolumeId, options.NodeName, activated.Device.Path,
            (request.Shared ? "shared (multi-attach: another node may hold it too)" : "exclusive") + (activated.WasActive ? ", already active" : string.Empty),
            (long)activated.San.TotalMilliseconds, (long)activated.Lvm.TotalMilliseconds);
        return new ActivateVolumeResponse { Device = ToContract(activated.Device), WasActive = activated.WasActive, Rescanned = activated.Rescanned };
    });

    public override Task<DeactivateVolumeResponse> DeactivateVolume(DeactivateVolumeRequest request, ServerCallContext context) => Measured("deactivate", request.Lv, async () =>
    {
        var (vg, lv) = guard.Check(request.Header, request.Lv);
        var wasActive = await activation.DeactivateAsync(vg, lv, context.CancellationToken);
        AgentLog.DeactivatedOnOrder(logger, vg, lv, request.Lv.VolumeId, options.NodeName, wasActive);
        return new DeactivateVolumeResponse { WasActive = wasActive };
    });

    public override Task<ActivateVolumeResponse> RefreshVolume(RefreshVolumeRequest request, ServerCallContext context) => Measured("refresh", request.Lv, async () =>
    {
        var (vg, lv) = guard.Check(request.Header, request.Lv);
        return new ActivateVolumeResponse { Device = ToContract(await activation.RefreshAsync(vg, lv, context.CancellationToken)), WasActive = true };
    });

    public override Task WipeVolume(WipeVolumeRequest request, IServerStreamWriter<DataProgress> responseStream, ServerCallContext context) =>
        Streamed("wipe", request.Lv, responseStream, () =>
        {
            guard.Check(request.Header, request.Lv);
            return data.WipeAsync(request.Lv, request.Method == WipeMethod.Discard, request.ResumeFromBytes, request.MaxBytesPerSecond, context.CancellationToken);
        });

    public override Task CopyVolume(CopyVolumeRequest request, IServerStreamWriter<DataProgress> responseStream, ServerCallContext context) =>
        Streamed("copy", request.Target, responseStream, () =>
        {
            guard.Check(request.Header, request.Source);
            guard.Check(request.Header, request.Target);
            return data.CopyAsync(request.Source, request.Target, request.ResumeFromBytes, request.MaxBytesPerSecond, context.CancellationToken);
        });

    public override async Task<Contracts.V1.Inventory> GetInventory(GetInventoryRequest request, ServerCallContext context)
    {
        var snapshot = await watcher.RefreshAsync(context.CancellationToken);
        var dm = snapshot.View.ActiveLvs.Count > 0 ? await dmsetup.ReadAsync(context.CancellationToken) : new Dictionary<string, DmDeviceState>();
        return InventoryMapping.ToContract(snapshot, dm, options.NodeName, AgentVersion);
    }

    public override async Task<GetHealthResponse> GetHealth(GetHealthRequest request, ServerCallContext context)
    {
        var snapshot = await watcher.RefreshAsync(context.CancellationToken);
        var response = new GetHealthResponse
        {
            NodeName = options.NodeName,
            Overall = snapshot.Overall,
            CollectedAt = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(snapshot.View.CollectedAt),
        };
        response.Findings.AddRange(snapshot.Findings.Select(f => f.ToContract()));
        return response;
    }

    public override async Task<RescanResponse> Rescan(RescanRequest request, ServerCallContext context)
    {
        // A rescan changes what the node sees (a LIP resets the fabric login): a deposed controller
        // may not order one either.
        guard.Check(request.Header);
        if (request.WaitSeconds > MaxRescanWaitSeconds)
        {
            throw new AgentException(AgentErrorKind.InvalidArgument, $"wait_seconds must be at most {MaxRescanWaitSeconds}.");
        }

        foreach (var expected in request.Expect.Where(e => !Discovery.Wwid.IsValidText(e.Wwid)))
        {
            throw new AgentException(AgentErrorKind.InvalidArgument, $"expected WWID '{expected.Wwid}' is not a WWID.");
        }

        var outcome = await rescanner.RescanAsync(
            request.Targets.Select(t => new ScanTarget((int)t.Host, t.HasChannel ? (int)t.Channel : null, t.HasTarget ? (int)t.Target : null, t.HasLun ? (int)t.Lun : null)).ToArray(),
            request.Hosts.Select(h => (int)h).ToArray(),
            request.Expect.Select(e => e.Wwid).ToArray(),
            request.IssueLip,
            TimeSpan.FromSeconds(request.WaitSeconds == 0 ? DefaultRescanWaitSeconds : request.WaitSeconds),
            context.CancellationToken);
        var response = new RescanResponse { DurationMs = (uint)outcome.Duration.TotalMilliseconds };
        response.Hosts.AddRange(outcome.Hosts.Select(h => new HostScanResult { Host = (uint)h.Host, Scan = h.Written, DurationMs = (uint)h.Duration.TotalMilliseconds, Error = h.Error ?? string.Empty }));
        response.Appeared.AddRange(outcome.Appeared);
        response.Missing.AddRange(outcome.Missing);
        await watcher.RefreshAsync(context.CancellationToken);
        return response;
    }

    public override async Task<MultipathdState> RestartMultipathd(RestartMultipathdRequest request, ServerCallContext context)
    {
        guard.Check(request.Header);
        return (await systemd.RestartMultipathdAsync(context.CancellationToken)).ToContract();
    }

    public override Task<PreemptReservationResponse> PreemptReservation(PreemptReservationRequest request, ServerCallContext context)
    {
        guard.Check(request.Header);
        if (request.OwnKey == 0 || request.VictimKey == 0 || request.OwnKey == request.VictimKey || string.IsNullOrEmpty(request.Wwid))
        {
            throw new AgentException(AgentErrorKind.InvalidArgument, "wwid, own_key and victim_key are required, and a node does not preempt itself.");
        }

        return reservations.PreemptAsync(request.Wwid, new ReservationKey(request.OwnKey), new ReservationKey(request.VictimKey), context.CancellationToken);
    }

    /// <summary>A volume command: a span (joined to the controller's through traceparent) and its metrics.</summary>
    private async Task<T> Measured<T>(string operation, LvRef? lv, Func<Task<T>> call)
    {
        using var activity = AgentActivities.Source.StartActivity(operation + " volume")?
            .SetTag("sharedlvm.volume_id", lv?.VolumeId)
            .SetTag("sharedlvm.node", options.NodeName);
        return await metrics.Operations.Measure(operation, call);
    }

    /// <summary>A data job: its progress streamed as it comes, measured like every volume command.</summary>
    private Task Streamed(string operation, LvRef? lv, IServerStreamWriter<DataProgress> stream, Func<IAsyncEnumerable<DataProgress>> job) =>
        Measured(operation, lv, async () =>
        {
            await foreach (var progress in job())
            {
                await stream.WriteAsync(progress);
            }

            return true;
        });

    private static DevicePath ToContract(ActiveDevice device) => new()
    {
        Path = device.Path, DmName = device.DmName, Major = (uint)device.Major, Minor = (uint)device.Minor, SizeBytes = device.SizeBytes,
    };
}
