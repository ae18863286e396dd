using System.Globalization;

namespace SharedLvm.Agent.Discovery;

/// <summary>
/// What this node sees of the SAN, from sysfs and the udev database, plus multipathd's path states
/// when it answers. The answer to "which device is LU &lt;wwid&gt; on this node" is always the multipath
/// map found by its dm uuid, never an sdX name: each node names the LU differently.
/// </summary>
public sealed class SanDiscovery
{
    private readonly SysfsTree _sysfs;
    private readonly IMultipathd _multipathd;
    private readonly TimeProvider _time;

    public SanDiscovery(SysfsTree sysfs, IMultipathd multipathd, TimeProvider time)
    {
        _sysfs = sysfs;
        _multipathd = multipathd;
        _time = time;
    }

    public async Task<NodeView> ScanAsync(CancellationToken cancellationToken)
    {
        var multipathd = await _multipathd.ShowMapsAsync(cancellationToken).ConfigureAwait(false);
        var disks = Disks();
        var (maps, lvs) = DmDevices(disks, multipathd);
        return new NodeView(Hosts(), IscsiSessions(), disks, maps, lvs, multipathd is not null, _time.GetUtcNow());
    }

    public IReadOnlyList<ScsiHost> Hosts() =>
        _sysfs.List("sys/class/scsi_host")
            .Select(name => (name, number: HostNumber(name)))
            .Where(h => h.number >= 0)
            .Select(h => new ScsiHost(
                h.number,
                _sysfs.Read($"sys/class/scsi_host/{h.name}/proc_name") ?? string.Empty,
                _sysfs.Exists($"sys/class/fc_host/{h.name}")
                    ? new FcPort(
                        _sysfs.Read($"sys/class/fc_host/{h.name}/port_name") ?? string.Empty,
                        _sysfs.Read($"sys/class/fc_host/{h.name}/node_name") ?? string.Empty,
                        _sysfs.Read($"sys/class/fc_host/{h.name}/port_state") ?? "unknown",
                        _sysfs.Read($"sys/class/fc_host/{h.name}/speed") ?? string.Empty)
                    : null))
            .OrderBy(h => h.Number)
            .ToArray();

    private IReadOnlyList<IscsiSession> IscsiSessions() =>
        _sysfs.List("sys/class/iscsi_session")
            .Select(s => new IscsiSession(s, _sysfs.Read($"sys/class/iscsi_session/{s}/targetname") ?? string.Empty, _sysfs.Read($"sys/class/iscsi_session/{s}/state") ?? "unknown"))
            .ToArray();

    /// <summary>SCSI disks by H:C:T:L (the directory names of /sys/class/scsi_device).</summary>
    private IReadOnlyList<ScsiDisk> Disks()
    {
        var disks = new List<ScsiDisk>();
        foreach (var hctl in _sysfs.List("sys/class/scsi_device"))
        {
            var host = HostNumber("host" + hctl.Split(':')[0]);
            foreach (var name in _sysfs.List($"sys/class/scsi_device/{hctl}/device/block"))
            {
                var block = $"sys/block/{name}";
                disks.Add(new ScsiDisk(
                    name,
                    hctl,
                    host,
                    UdevSerial(_sysfs.Read($"{block}/dev")) ?? Wwid.FromSysfs(_sysfs.Read($"{block}/device/wwid")),
                    _sysfs.Read($"{block}/device/vendor") ?? string.Empty,
                    _sysfs.Read($"{block}/device/model") ?? string.Empty,
                    _sysfs.Read($"{block}/device/state") ?? "unknown",
                    Sectors(_sysfs.Read($"{block}/size")),
                    _sysfs.List($"{block}/holders").FirstOrDefault()));
            }
        }

        return disks;
    }

    private (IReadOnlyList<MultipathMapInfo> Maps, IReadOnlyList<ActiveLv> Lvs) DmDevices(IReadOnlyList<ScsiDisk> disks, IReadOnlyList<MultipathdMap>? multipathd)
    {
        var maps = new List<MultipathMapInfo>();
        var lvs = new List<ActiveLv>();
        foreach (var dm in _sysfs.List("sys/block").Where(n => n.StartsWith("dm-", StringComparison.Ordinal)))
        {
            var uuid = _sysfs.Read($"sys/block/{dm}/dm/uuid");
            var name = _sysfs.Read($"sys/block/{dm}/dm/name") ?? dm;
            var suspended = _sysfs.Read($"sys/block/{dm}/dm/suspended") == "1";
            var size = Sectors(_sysfs.Read($"sys/block/{dm}/size"));
            if (Wwid.FromMultipathUuid(uuid) is { } wwid)
            {
                var view = multipathd?.FirstOrDefault(m => string.Equals(m.Wwid, wwid, StringComparison.OrdinalIgnoreCase));
                var paths = _sysfs.List($"sys/block/{dm}/slaves").Select(slave =>
                {
                    var disk = disks.FirstOrDefault(d => d.Name == slave);
                    var mp = view?.Paths.FirstOrDefault(p => p.Device == slave);
                    return new MultipathPathInfo(slave, disk?.Hctl ?? string.Empty, PathState(disk, mp), mp?.DmState ?? string.Empty, mp?.CheckerState ?? string.Empty);
                }).ToArray();
                var node = File.Exists(_sysfs.PathOf("dev/mapper/" + name));
                maps.Add(new MultipathMapInfo(wwid, name, dm, size, paths, view?.IsQueueing ?? false, suspended, node));
            }
            else if (uuid is not null && uuid.StartsWith("LVM-", StringComparison.Ordinal))
            {
                var (major, minor) = DeviceNumbers(_sysfs.Read($"sys/block/{dm}/dev"));
                lvs.Add(new ActiveLv(name, dm, major, minor, size, suspended) { Devices = DeviceStack.Beneath(_sysfs, dm) });
            }
        }

        return (maps, lvs);
    }

    /// <summary>multipathd's checker and dm states win; without it, the SCSI device state is the best evidence.</summary>
    private static PathStatus PathState(ScsiDisk? disk, MultipathdPath? path)
    {
        if (path is not null)
        {
            return path.DmState == "failed" || path.CheckerState is "faulty" or "i/o timeout" || path.DeviceState == "offline"
                ? PathStatus.Failed
                : path.CheckerState == "ghost" ? PathStatus.Standby : PathStatus.Active;
        }

        return disk?.State == "running" ? PathStatus.Active : PathStatus.Failed;
    }

    /// <summary>multipath identifies paths by udev's ID_SERIAL (uid_attribute); use it when udev recorded one.</summary>
    private string? UdevSerial(string? majorMinor)
    {
        if (majorMinor is null)
        {
            return null;
        }

        var data = _sysfs.Read($"run/udev/data/b{majorMinor}");
        return data?.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.StartsWith("E:ID_SERIAL=", StringComparison.Ordinal))?["E:ID_SERIAL=".Length..];
    }

    private static int HostNumber(string name) =>
        name.StartsWith("host", StringComparison.Ordinal) && int.TryParse(name.AsSpan(4), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : -1;

    private static ulong Sectors(string? raw) =>
        ulong.TryParse(raw, NumberStyles.None, CultureInfo.InvariantCulture, out var sectors) ? sectors * 512 : 0;

    private static (int, int) DeviceNumbers(string? raw)
    {
        var parts = raw?.Split(':') ?? [];
        return parts.Length == 2
            && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var major)
            && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var minor)
            ? (major, minor)
            : (-1, -1);
    }
}
