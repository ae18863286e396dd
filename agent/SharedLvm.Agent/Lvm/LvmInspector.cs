using SharedLvm.Os.Lvm;
using SharedLvm.Os.Processes;

namespace SharedLvm.Agent.Lvm;

/// <summary>What lvm on this node sees of the shared VGs, and how the host's lvm is configured.</summary>
public sealed record LvmView(
    string Version,
    IReadOnlyList<FullReport> VolumeGroups,
    IReadOnlyDictionary<string, string> HostConfig)
{
    public LogicalVolume? Find(string vgName, string lvName) =>
        VolumeGroups.Where(r => r.VolumeGroup.Name == vgName).SelectMany(r => r.LogicalVolumes).FirstOrDefault(l => l.Name == lvName);
}

/// <summary>
/// The agent's lvm, read-only by construction (invariant 1). The lvm command line is private and
/// this class exposes reads (and, with the attach work, activation) only: the agent has no code path
/// that can write VG metadata. global/metadata_read_only=1 is passed too, but only as a second
/// layer: measured here, lvm 2.03.16 does NOT refuse lvcreate, lvremove, lvchange --addtag or
/// vgchange under it (from --config or lvm.conf alike). It scans only multipath maps (never the raw
/// sdX paths of a LU: duplicate PVs) and activates only LVs tagged for this node (volume_list).
/// </summary>
public sealed class LvmInspector
{
    /// <summary>Every multipath map has this udev alias; nothing else does.</summary>
    public const string MultipathDevicePattern = "^/dev/disk/by-id/dm-uuid-mpath-";

    public LvmInspector(IProcessRunner runner, AgentOptions options)
    {
        Config = AgentLvmConfig(options);
        _cli = new LvmCli(runner, Config, options.LvmTimeout, options.LvmBinary);
    }

    private readonly LvmCli _cli;

    public LvmConfig Config { get; }

    public static LvmConfig AgentLvmConfig(AgentOptions options) => new()
    {
        ActivationEnabled = true,
        MetadataReadOnly = true,
        DevicePatterns = [MultipathDevicePattern, .. options.ExtraLvmDevicePatterns],
        VolumeList = ["@sharedlvm_owner_" + options.NodeName],
    };

    public async Task<LvmView> InspectAsync(CancellationToken cancellationToken)
    {
        var version = await _cli.VersionAsync(cancellationToken).ConfigureAwait(false);
        var reports = await _cli.FullReportsAsync(cancellationToken).ConfigureAwait(false);
        var host = await _cli.HostConfigAsync(
            ["devices/global_filter", "devices/filter", "devices/use_devicesfile", "devices/multipath_component_detection", "activation/auto_activation_volume_list"],
            cancellationToken).ConfigureAwait(false);
        return new LvmView(version, reports, host);
    }
}
