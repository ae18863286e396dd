using Google.Protobuf.WellKnownTypes;
using SharedLvm.Agent.Discovery;
using SharedLvm.Agent.Health;
using SharedLvm.Agent.Rescan;
using SharedLvm.Contracts.V1;
using SharedLvm.Grpc;

namespace SharedLvm.Agent;

/// <summary>
/// sharedlvm.v1.Agent: a thin adapter over discovery, health and rescans. Activation methods come
/// with the attach issue; until then the transport answers UNIMPLEMENTED for them.
/// </summary>
public sealed class AgentApi
{
    private const uint DefaultRescanWaitSeconds = 30;
    private const uint MaxRescanWaitSeconds = 600;
    private readonly SanWatcher _watcher;
    private readonly ScsiRescanner _rescanner;
    private readonly AgentOptions _options;

    public AgentApi(SanWatcher watcher, ScsiRescanner rescanner, AgentOptions options)
    {
        _watcher = watcher;
        _rescanner = rescanner;
        _options = options;
    }

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

        inventory.ActiveLvs.AddRange(view.ActiveLvs.Select(l =>
        {
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

        try
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
    }

    /// <summary>A command for another node was misrouted (stale address, reused IP): refuse it.</summary>
    private void CheckAddressedToMe(CommandHeader? header)
    {
        if (header is { NodeName.Length: > 0 } && !string.Equals(header.NodeName, _options.NodeName, StringComparison.Ordinal))
        {
            throw new RpcException(StatusCode.FailedPrecondition, $"This is node {_options.NodeName}; the command was addressed to {header.NodeName}.");
        }
    }

    private static HealthState ToContract(Severity severity) => severity switch
    {
        Severity.Ok => HealthState.Ok,
        Severity.Degraded => HealthState.Degraded,
        _ => HealthState.Failed,
    };
}
