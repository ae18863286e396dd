using Google.Protobuf.WellKnownTypes;
using System.Text.RegularExpressions;
using SharedLvm.Agent.Controller;
using SharedLvm.Agent.Discovery;
using SharedLvm.Agent.Lvm;
using SharedLvm.Agent.Health;
using SharedLvm.Agent.Rescan;
using SharedLvm.Agent.Telemetry;
using SharedLvm.Contracts.V1;
using SharedLvm.Grpc;

namespace SharedLvm.Agent;

/// <summary>
/// sharedlvm.v1.Agent: a thin adapter over discovery, health, rescans and activation. Every command
/// is checked first: addressed to this node, and from a controller epoch not older than the highest
/// seen (a deposed controller's stale order is refused).
/// </summary>
public sealed partial class AgentApi
{
    private const uint DefaultRescanWaitSeconds = 30;
    private const uint MaxRescanWaitSeconds = 600;
    private readonly SanWatcher _watcher;
    private readonly SanDiscovery _discovery;
    private readonly IDmSetup _dmsetup;
    private readonly ScsiRescanner _rescanner;
    private readonly AgentOptions _options;
    private readonly IVolumeActivator _activator;
    private readonly EpochStore _epochs;
    private readonly AgentMetrics _metrics;

    public AgentApi(SanWatcher watcher, SanDiscovery discovery, IDmSetup dmsetup, ScsiRescanner rescanner, AgentOptions options, IVolumeActivator activator, EpochStore epochs, AgentMetrics metrics)
    {
        _metrics = metrics;
        _watcher = watcher;
        _discovery = discovery;
        _dmsetup = dmsetup;
        _rescanner = rescanner;
        _options = options;
        _activator = activator;
        _epochs = epochs;
    }

    [GeneratedRegex("^[a-zA-Z0-9+_.][a-zA-Z0-9+_.-]{0,127}$", RegexOptions.CultureInvariant)]
    private static partial Regex LvmName();

    public Task<ActivateVolumeResponse> ActivateVolume(ActivateVolumeRequest request, ServerCallContext context) => Measured("activate", request.Lv, async () =>
    {
        var (vg, lv) = CheckCommand(request.Header, request.Lv);
        var rescanned = false;
        // The SAN view only (sysfs, multipathd), not the watcher's full refresh: its lvm inspection
        // doubled the attach time under TCG in the lab, and activation runs lvm anyway.
        if (request.Lv.Lun is { Wwid.Length: > 0 } lun && !(await _discovery.ScanAsync(context.CancellationToken)).IsUsable(lun.Wwid))
        {
            // The LU was mapped to this node after its last scan (LUN masking changes raise no event).
            var outcome = await _rescanner.RescanAsync([], [], [lun.Wwid], false, TimeSpan.FromSeconds(DefaultRescanWaitSeconds), context.CancellationToken);
            rescanned = true;
            if (outcome.Missing.Count > 0)
            {
                throw new AgentException(AgentErrorKind.Unavailable, $"LU {lun.Wwid} of {vg}/{lv} is not visible on node {_options.NodeName}, even after a rescan.");
            }
        }

        var wasActive = await _activator.DeviceAsync(vg, lv, context.CancellationToken) is not null;
        var device = await _activator.ActivateAsync(vg, lv, context.CancellationToken);
        return new ActivateVolumeResponse { Device = ToContract(device), WasActive = wasActive, Rescanned = rescanned };
    });

    public Task<DeactivateVolumeResponse> DeactivateVolume(DeactivateVolumeRequest request, ServerCallContext context) => Measured("deactivate", request.Lv, async () =>
    {
        var (vg, lv) = CheckCommand(request.Header, request.Lv);
        if (await _activator.DeviceAsync(vg, lv, context.CancellationToken) is null)
        {
            return new DeactivateVolumeResponse { WasActive = false };
        }

        var openers = await _activator.OpenersAsync(vg, lv, context.CancellationToken);
        if (openers.Count > 0)
        {
            throw new AgentException(AgentErrorKind.FailedPrecondition,
                $"{vg}/{lv} is open on node {_options.NodeName} by {string.Join(", ", openers)}; stop its user before detaching.");
        }

        await _activator.DeactivateAsync(vg, lv, context.CancellationToken);
        if (await _activator.DeviceAsync(vg, lv, context.CancellationToken) is not null)
        {
            throw new AgentException(AgentErrorKind.Unavailable, $"{vg}/{lv} was deactivated but its device is still present on node {_options.NodeName}.");
        }

        return new DeactivateVolumeResponse { WasActive = true };
    });

    public Task<ActivateVolumeResponse> RefreshVolume(RefreshVolumeRequest request, ServerCallContext context) => Measured("refresh", request.Lv, async () =>
    {
        var (vg, lv) = CheckCommand(request.Header, request.Lv);
        if (await _activator.DeviceAsync(vg, lv, context.CancellationToken) is null)
        {
            throw new AgentException(AgentErrorKind.FailedPrecondition, $"{vg}/{lv} is not active on node {_options.NodeName}; nothing to refresh.");
        }

        await _activator.RefreshAsync(vg, lv, context.CancellationToken);
        var device = await _activator.DeviceAsync(vg, lv, context.CancellationToken)
            ?? throw new AgentException(AgentErrorKind.Unavailable, $"{vg}/{lv} disappeared during its refresh.");
        return new ActivateVolumeResponse { Device = ToContract(device), WasActive = true };
    });

    public static Google.Protobuf.Reflection.ServiceDescriptor Descriptor =>
        AgentReflection.Descriptor.FindTypeByName<Google.Protobuf.Reflection.ServiceDescriptor>("Agent");

    public async Task<Inventory> GetInventory(GetInventoryRequest request, ServerCallContext context)
    {
        var snapshot = await _watcher.RefreshAsync(context.CancellationToken);
        var view = snapshot.View;
        var inventory = new Inventory
        {
            NodeName = _options.NodeName,
            CollectedAt = Timestamp.FromDateTimeOffset(view.CollectedAt),
            AgentVersion = typeof(AgentApi).Assembly.GetName().Version?.ToString() ?? string.Empty,
        };
        inventory.Hbas.AddRange(view.Hosts.Select(h => new Hba
        {
            Name = "host" + h.Number,
            HostNumber = (uint)h.Number,
            Driver = h.Driver,
            PortName = h.Fc?.PortName ?? string.Empty,
            NodeName = h.Fc?.NodeName ?? string.Empty,
            PortState = h.Fc?.PortState ?? string.Empty,
            Speed = h.Fc?.Speed ?? string.Empty,
        }));
        inventory.ScsiDevices.AddRange(view.Disks.Select(d => new ScsiDevice
        {
            Name = d.Name, Hctl = d.Hctl, Wwid = d.Wwid ?? string.Empty, Vendor = d.Vendor, Model = d.Model,
            State = d.State, SizeBytes = d.SizeBytes, Holder = d.Holder ?? string.Empty,
        }));
        inventory.MultipathMaps.AddRange(view.Maps.Select(m =>
        {
            var map = new MultipathMap { Wwid = m.Wwid, Name = m.Name, DmDevice = m.DmDevice, SizeBytes = m.SizeBytes, Queueing = m.Queueing, Suspended = m.Suspended };
            map.Paths.AddRange(m.Paths.Select(p => new MultipathPath
            {
                Device = p.Device,
                Hctl = p.Hctl,
                State = p.Status switch { PathStatus.Active => PathState.Active, PathStatus.Standby => PathState.Standby, _ => PathState.Failed },
                DmState = p.DmState,
                CheckerState = p.CheckerState,
            }));
            return map;
        }));
        if (snapshot.Lvm is { } lvm)
        {
            inventory.PhysicalVolumes.AddRange(lvm.VolumeGroups.SelectMany(r => r.PhysicalVolumes).Select(pv => new PhysicalVolume
            {
                Device = pv.Name, VgName = pv.VgName, SizeBytes = pv.SizeBytes,
                Wwid = view.Maps.FirstOrDefault(m => pv.Name.EndsWith(m.Wwid, StringComparison.OrdinalIgnoreCase))?.Wwid ?? string.Empty,
            }));
            inventory.VolumeGroups.AddRange(lvm.VolumeGroups.Select(r => r.VolumeGroup.Name));
        }

        var dm = view.ActiveLvs.Count > 0 ? await _dmsetup.ReadAsync(context.CancellationToken) : new Dictionary<string, DmDeviceState>();
        inventory.ActiveLvs.AddRange(view.ActiveLvs.Select(l =>
        {
            var dmState = dm.GetValueOrDefault(l.DmName);
            var names = Controller.DmName.ToVgLv(l.DmName)?.Split('/');
            var metadata = names is [var vg, var lv] ? snapshot.Lvm?.Find(vg, lv) : null;
            var activation = new LvActivation
            {
                VgName = names?[0] ?? string.Empty,
                LvName = names?.ElementAtOrDefault(1) ?? string.Empty,
                MetadataSizeBytes = metadata?.SizeBytes ?? 0,
                Device = new DevicePath { DmName = l.DmName, Major = (uint)Math.Max(0, l.Major), Minor = (uint)Math.Max(0, l.Minor), SizeBytes = l.SizeBytes },
                TableStale = metadata is not null && metadata.SizeBytes != l.SizeBytes,
                Suspended = l.Suspended,
                DmTable = dmState?.Table ?? string.Empty,
                OpenCount = (uint)(dmState?.OpenCount ?? 0),
            };
            activation.Tags.AddRange(metadata?.Tags ?? []);
            return activation;
        }));
        return inventory;
    }

    public async Task<GetHealthResponse> GetHealth(GetHealthRequest request, ServerCallContext context)
    {
        var snapshot = await _watcher.RefreshAsync(context.CancellationToken);
        var response = new GetHealthResponse
        {
            NodeName = _options.NodeName,
            Overall = ToContract(snapshot.Overall),
            CollectedAt = Timestamp.FromDateTimeOffset(snapshot.View.CollectedAt),
        };
        response.Findings.AddRange(snapshot.Findings.Select(f => new HealthFinding
        {
            Layer = f.Layer switch
            {
                IoLayer.Transport => Layer.Transport,
                IoLayer.Scsi => Layer.Scsi,
                IoLayer.Multipath => Layer.Multipath,
                IoLayer.Lvm => Layer.Lvm,
                _ => Layer.Lv,
            },
            State = ToContract(f.Severity),
            Subject = f.Subject,
            Code = f.Code,
            Message = f.Message,
            Remedy = f.Remedy,
        }));
        return response;
    }

    public async Task<RescanResponse> Rescan(RescanRequest request, ServerCallContext context)
    {
        CheckAddressedToMe(request.Header);
        if (request.WaitSeconds > MaxRescanWaitSeconds)
        {
            throw new RpcException(StatusCode.InvalidArgument, $"wait_seconds must be at most {MaxRescanWaitSeconds}.");
        }

        foreach (var expected in request.Expect.Where(e => !System.Text.RegularExpressions.Regex.IsMatch(e.Wwid, "^[0-9a-zA-Z._:-]{1,128}$")))
        {
            throw new RpcException(StatusCode.InvalidArgument, $"expected WWID '{expected.Wwid}' is not a WWID.");
        }

        return await Guard(async () =>
        {
            var outcome = await _rescanner.RescanAsync(
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
            await _watcher.RefreshAsync(context.CancellationToken);
            return response;
        });
    }

    /// <summary>
    /// Every command: addressed to this node (a stale address or reused IP misroutes it), carrying a
    /// controller epoch, not older than the highest seen (a deposed controller), valid LVM names.
    /// </summary>
    private (string Vg, string Lv) CheckCommand(CommandHeader? header, LvRef? lv)
    {
        CheckAddressedToMe(header);
        if (header?.Epoch is not { Value: > 0 } epoch)
        {
            throw new AgentException(AgentErrorKind.InvalidArgument, "The command carries no controller epoch.");
        }

        if (!_epochs.Observe(epoch.Value))
        {
            throw new AgentException(AgentErrorKind.FailedPrecondition,
                $"Refused: controller epoch {epoch.Value} is older than {_epochs.Highest}, the highest this node has seen (a deposed controller?).");
        }

        if (lv is null || !LvmName().IsMatch(lv.VgName) || !LvmName().IsMatch(lv.LvName))
        {
            throw new AgentException(AgentErrorKind.InvalidArgument, $"'{lv?.VgName}/{lv?.LvName}' is not a VG/LV name.");
        }

        return (lv.VgName, lv.LvName);
    }

    /// <summary>A command for another node was misrouted (stale address, reused IP): refuse it.</summary>
    private void CheckAddressedToMe(CommandHeader? header)
    {
        if (header is { NodeName.Length: > 0 } && !string.Equals(header.NodeName, _options.NodeName, StringComparison.Ordinal))
        {
            throw new RpcException(StatusCode.FailedPrecondition, $"This is node {_options.NodeName}; the command was addressed to {header.NodeName}.");
        }
    }

    /// <summary>A volume command: a span (joined to the controller's through traceparent), its metrics, the status mapping.</summary>
    private async Task<T> Measured<T>(string operation, LvRef? lv, Func<Task<T>> call)
    {
        using var activity = AgentMetrics.Activities.StartActivity(operation + " volume")?
            .SetTag("sharedlvm.volume_id", lv?.VolumeId)
            .SetTag("sharedlvm.node", _options.NodeName);
        return await _metrics.Operations.Measure(operation, () => Guard(call));
    }

    /// <summary>The wire boundary of the agent: its exceptions become statuses here.</summary>
    private static async Task<T> Guard<T>(Func<Task<T>> call)
    {
        try
        {
            return await call();
        }
        catch (AgentException e)
        {
            throw new RpcException(e.Kind switch
            {
                AgentErrorKind.InvalidArgument => StatusCode.InvalidArgument,
                AgentErrorKind.NotFound => StatusCode.NotFound,
                AgentErrorKind.Unavailable => StatusCode.Unavailable,
                _ => StatusCode.FailedPrecondition,
            }, e.Message);
        }
        catch (Exception e) when (e is SharedLvm.Os.Lvm.LvmException or SharedLvm.Os.Processes.ProcessTimeoutException or SharedLvm.Os.Processes.ProcessStartException)
        {
            throw new RpcException(StatusCode.Unavailable, e.Message);
        }
    }

    private static DevicePath ToContract(ActiveDevice device) => new()
    {
        Path = device.Path, DmName = device.DmName, Major = (uint)device.Major, Minor = (uint)device.Minor, SizeBytes = device.SizeBytes,
    };

    private static HealthState ToContract(Severity severity) => severity switch
    {
        Severity.Ok => HealthState.Ok,
        Severity.Degraded => HealthState.Degraded,
        _ => HealthState.Failed,
    };
}
