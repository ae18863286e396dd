using System.Text;
using System.Text.RegularExpressions;

namespace SharedLvm.Os.Lvm;

/// <summary>
/// The --config text given to every lvm invocation. Nothing depends on the host's lvm.conf being
/// right: every safety setting SharedLvm relies on is passed explicitly on each command.
/// </summary>
public sealed record LvmConfig
{
    /// <summary>
    /// The controller runs with activation=0: it only writes metadata and must never create dm
    /// devices on its own host.
    /// </summary>
    public bool ActivationEnabled { get; init; }

    /// <summary>
    /// Agents run with metadata_read_only=1: only the controller writes VG metadata (oVirt
    /// BZ1553133: a non-SPM host's write corrupted a shared VG).
    /// </summary>
    public bool MetadataReadOnly { get; init; }

    /// <summary>
    /// Exact device paths LVM may scan; everything else is rejected. Never scan other disks of the
    /// host, nor the raw sdX paths of a multipath LU (duplicate PVs).
    /// </summary>
    public IReadOnlyList<string> Devices { get; init; } = [];

    /// <summary>Regex patterns of devices LVM may scan, in addition to <see cref="Devices"/> (e.g. all multipath maps).</summary>
    public IReadOnlyList<string> DevicePatterns { get; init; } = [];

    /// <summary>
    /// devices/multipath_component_detection, when set; null leaves lvm's default (on). Off only for
    /// a command that must reach a PV through a raw path on purpose: lvm 2.03 also rejects an sdX
    /// listed in /etc/multipath/wwids when no map holds it, and then cannot find the VG at all.
    /// </summary>
    public bool? MultipathComponentDetection { get; init; }

    /// <summary>activation/volume_list: only LVs matching these (e.g. "@sharedlvm_owner_node-a") can be activated.</summary>
    public IReadOnlyList<string>? VolumeList { get; init; }

    /// <summary>Where lvm writes the VG backup (current metadata text, one file per VG, holds the seqno).</summary>
    public string? BackupDirectory { get; init; }

    /// <summary>Metadata archives; bounded by <see cref="ArchiveRetainCount"/> (retain_days=0).</summary>
    public string? ArchiveDirectory { get; init; }

    /// <summary>
    /// Archives kept per VG. Every write archives the whole VG text (~0.94 MB per op at 2k LVs), so
    /// archives are bounded by count, not by days, or /etc/lvm/archive grows without limit.
    /// </summary>
    public int ArchiveRetainCount { get; init; } = 20;

    /// <summary>
    /// False for every command that only reads or activates. With backup on, lvm re-reads and
    /// re-parses the VG's backup file on every vg_read to check it is current: measured here,
    /// `vgs` 275 -> 818 ms and `fullreport` 755 -> 1,317 ms at 8k LVs (field.md 4). Only the
    /// metadata writer needs backup on: <see cref="LvmReader"/> and <see cref="LvmActivation"/>
    /// turn it off, whatever config they are given.
    /// </summary>
    public bool Backup { get; init; } = true;

    /// <summary>This config for a command that changes no metadata (see <see cref="Backup"/>).</summary>
    public LvmConfig ForReads() => this with { Backup = false };

    private static readonly Regex SafePath = new("^/[A-Za-z0-9_./:+@=-]+$", RegexOptions.CultureInvariant);

    public string Render()
    {
        var text = new StringBuilder();
        text.Append("global{activation=").Append(ActivationEnabled ? 1 : 0);
        if (MetadataReadOnly)
        {
            text.Append(" metadata_read_only=1");
        }

        // hints="none": lvm's hints file (/run/lvm/hints) lists the devices that held PVs at this
        // host's last scan, and only a pvcreate on this host invalidates it. In the SAN lab a pool
        // created by the controller on a second LU stayed invisible to the nodes ("Volume group
        // prlab not found") until hints were off: on shared storage other hosts create PVs.
        text.Append("} devices{use_devicesfile=0 obtain_device_list_from_udev=0 hints=\"none\" ");
        if (MultipathComponentDetection is { } detection)
        {
            text.Append("multipath_component_detection=").Append(detection ? 1 : 0).Append(' ');
        }

        text.Append("global_filter=[");
        foreach (var device in Devices)
        {
            if (!SafePath.IsMatch(device))
            {
                throw new ArgumentException($"Device path '{device}' has characters not allowed in an LVM filter.", nameof(Devices));
            }

            text.Append("\"a|^").Append(Regex.Escape(device)).Append("$|\",");
        }

        foreach (var pattern in DevicePatterns)
        {
            if (pattern.Contains('"', StringComparison.Ordinal) || pattern.Contains('|', StringComparison.Ordinal))
            {
                throw new ArgumentException($"Device pattern '{pattern}' may not contain '\"' or '|'.", nameof(DevicePatterns));
            }

            text.Append("\"a|").Append(pattern).Append("|\",");
        }

        text.Append("\"r|.*|\"]}");
        if (VolumeList is not null)
        {
            text.Append(" activation{volume_list=[")
                .AppendJoin(',', VolumeList.Select(v => "\"" + v.Replace("\"", string.Empty, StringComparison.Ordinal) + "\""))
                .Append("]}");
        }

        if (!Backup)
        {
            // backup_dir stays: `vgcfgbackup VG` (a read) forces a backup into it even with backup=0.
            text.Append(" backup{backup=0 archive=0");
            if (BackupDirectory is not null)
            {
                text.Append(" backup_dir=\"").Append(BackupDirectory).Append('"');
            }

            text.Append('}');
        }
        else if (BackupDirectory is not null || ArchiveDirectory is not null)
        {
            text.Append(" backup{");
            if (BackupDirectory is not null)
            {
                text.Append("backup=1 backup_dir=\"").Append(BackupDirectory).Append("\" ");
            }

            if (ArchiveDirectory is not null)
            {
                text.Append("archive=1 archive_dir=\"").Append(ArchiveDirectory).Append("\" retain_days=0 retain_min=")
                    .Append(ArchiveRetainCount.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }

            text.Append('}');
        }

        return text.ToString();
    }
}
