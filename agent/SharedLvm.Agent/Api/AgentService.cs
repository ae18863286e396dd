using Grpc.Core;
using SharedLvm.Agent.Activation;
using SharedLvm.Agent.DBus;
using SharedLvm.Agent.Health;
using SharedLvm.Agent.Inventory;
using SharedLvm.Agent.Lvm;
using SharedLvm.Agent.Rescan;
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
    SanWatcher watcher,
    IDmSetup dmsetup,
    ScsiRescanner rescanner,
    SystemdBus systemd,
    AgentMetrics metrics,
    AgentOptions options) : AgentRpc.AgentBase
{
    private const uint DefaultRescanWaitSeconds = 30;
    private const uint MaxRescanWaitSeconds = 600;
    private static readonly string AgentVersion = typeof(AgentService).Assembly.GetName().Version?.ToString() ?? string.Empty;

    public override Task<ActivateVolumeResponse> ActivateVolume(ActivateVolumeRequest request, ServerCallContext context) => Measured("activate", request.Lv, async () =>
    {
        var (vg, lv) = guard.Check(request.Header, request.Lv);
        var activated = await activation.ActivateAsync(vg, lv, request.Lv.Lun?.Wwid ?? string.Empty, context.CancellationToken);
        return new ActivateVolumeResponse { Device = ToContract(activated.Device), WasActive = activated.WasActive, Rescanned = activated.Rescanned };
    });

    public override Task<DeactivateVolumeResponse> DeactivateVolume(DeactivateVolumeRequest request, ServerCallContext context) => Measured("deactivate", request.Lv, async () =>
    {
        var (vg, lv) = guard.Check(request.Header, request.Lv);
        return new DeactivateVolumeResponse { WasActive = await activation.DeactivateAsync(vg, lv, context.CancellationToken) };
    });

    public override Task<ActivateVolumeResponse> RefreshVolume(RefreshVolumeRequest request, ServerCallContext context) => Measured("refresh", request.Lv, async () =>
    {
        var (vg, lv) = guard.Check(request.Header, request.Lv);
        return new ActivateVolumeResponse { Device = ToContract(await activation.RefreshAsync(vg, lv, context.CancellationToken)), WasActive = true };
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
        guard.CheckAddressedToMe(request.Header);
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

    /// <summary>A volume command: a span (joined to the controller's through traceparent) and its metrics.</summary>
    private async Task<T> Measured<T>(string operation, LvRef? lv, Func<Task<T>> call)
    {
        using var activity = AgentActivities.Source.StartActivity(operation + " volume")?
            .SetTag("sharedlvm.volume_id", lv?.VolumeId)
            .SetTag("sharedlvm.node", options.NodeName);
        return await metrics.Operations.Measure(operation, call);
    }

    private static DevicePath ToContract(ActiveDevice device) => new()
    {
        Path = device.Path, DmName = device.DmName, Major = (uint)device.Major, Minor = (uint)device.Minor, SizeBytes = device.SizeBytes,
    };
}
