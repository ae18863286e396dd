using SharedLvm.Contracts.Conventions;

namespace SharedLvm.Agent.Discovery;

/// <summary>A SCSI host (HBA port), with FC or iSCSI transport details when present.</summary>
public sealed record ScsiHost(int Number, string Driver, FcPort? Fc);

public sealed record FcPort(string PortName, string NodeName, string PortState, string Speed);

public sealed record IscsiSession(string Name, string Target, string State);

/// <summary>One path: a SCSI disk. Its kernel name is informational only, never an identity.</summary>
public sealed record ScsiDisk(
    string Name,
    string Hctl,
    int Host,
    string? Wwid,
    string Vendor,
    string Model,
    string State,
    ulong SizeBytes,
    string? Holder);

public enum PathStatus
{
    Active,
    Failed,
    Standby,
}

public sealed record MultipathPathInfo(string Device, string Hctl, PathStatus Status, string DmState, string CheckerState);

/// <summary>A dm-multipath map found by its dm uuid "mpath-&lt;wwid&gt;".</summary>
public sealed record MultipathMapInfo(
    string Wwid,
    string Name,
    string DmDevice,
    ulong SizeBytes,
    IReadOnlyList<MultipathPathInfo> Paths,
    bool Queueing,
    bool Suspended,
    bool DeviceNodePresent)
{
    /// <summary>
    /// What lvm needs to see the PV on it: the map resumed and its /dev/mapper node made by udev.
    /// Found in the SAN lab: right after a rescan the map is in sysfs a moment before udev creates
    /// the node, and an lvchange run in that moment fails "Volume group not found".
    /// </summary>
    public bool Usable => !Suspended && DeviceNodePresent;

    public int ActivePaths => Paths.Count(p => p.Status == PathStatus.Active);

    public int FailedPaths => Paths.Count(p => p.Status == PathStatus.Failed);

    /// <summary>The stable device path: /dev/mapper/&lt;name&gt; (the WWID itself with user_friendly_names no).</summary>
    public string DevicePath => MultipathDevice.PathOf(Name);
}

/// <summary>An active dm-linear LV on this node (dm uuid "LVM-...").</summary>
public sealed record ActiveLv(string DmName, string DmDevice, int Major, int Minor, ulong SizeBytes, bool Suspended)
{
    /// <summary>The block devices its table sits on, at the bottom of <see cref="DeviceStack"/>: a map ("dm-0") normally, an sdX when lvm used a raw path.</summary>
    public IReadOnlyList<string> Devices { get; init; } = [];
}

/// <summary>Everything the node sees of the SAN at one moment.</summary>
public sealed record NodeView(
    IReadOnlyList<ScsiHost> Hosts,
    IReadOnlyList<IscsiSession> IscsiSessions,
    IReadOnlyList<ScsiDisk> Disks,
    IReadOnlyList<MultipathMapInfo> Maps,
    IReadOnlyList<ActiveLv> ActiveLvs,
    bool MultipathdAnswered,
    DateTimeOffset CollectedAt)
{
    public MultipathMapInfo? MapFor(string wwid) =>
        Maps.FirstOrDefault(m => string.Equals(m.Wwid, wwid, StringComparison.OrdinalIgnoreCase));

    public bool IsUsable(string wwid) => MapFor(wwid) is { Usable: true };
}
