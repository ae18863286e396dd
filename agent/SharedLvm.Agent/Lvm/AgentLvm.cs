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
public sealed class AgentLvm : IVolumeActivator
{
    /// <summary>Every multipath map has this udev alias; nothing else does.</summary>
    public const string MultipathDevicePattern = "^/dev/disk/by-id/dm-uuid-mpath-";

    private readonly DmDevices _devices;

    public AgentLvm(IProcessRunner runner, AgentOptions options)
    {
        _devices = new DmDevices(new Discovery.SysfsTree(options.SysfsRoot));
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

    /// <summary>
    /// Activates with volume_list = ["@sharedlvm_owner_&lt;node&gt;"]: LVM itself refuses an LV the
    /// controller did not tag for this node. Then a refresh (Proxmox: an LV resized elsewhere and
    /// activated with its old table corrupted data), then the device must appear.
    /// </summary>
    public async Task<ActiveDevice> ActivateAsync(string vgName, string lvName, CancellationToken cancellationToken)
    {
        try
        {
            await _cli.LvChangeAsync(["-ay", vgName + "/" + lvName], cancellationToken).ConfigureAwait(false);
        }
        catch (LvmException e) when (e.StandardError.Contains("activation filter", StringComparison.OrdinalIgnoreCase)
                                      || e.StandardError.Contains("volume_list", StringComparison.OrdinalIgnoreCase))
        {
            throw new AgentException(AgentErrorKind.FailedPrecondition, $"LVM refused to activate {vgName}/{lvName}: it is not tagged for this node ({LvmException.Summarize(e.StandardError)}).");
        }

        await _cli.LvChangeAsync(["--refresh", vgName + "/" + lvName], cancellationToken).ConfigureAwait(false);
        return await WaitForDeviceAsync(vgName, lvName, cancellationToken).ConfigureAwait(false)
            ?? throw new AgentException(AgentErrorKind.Unavailable, $"{vgName}/{lvName} was activated but its device did not appear.");
    }

    public async Task RefreshAsync(string vgName, string lvName, CancellationToken cancellationToken) =>
        await _cli.LvChangeAsync(["--refresh", vgName + "/" + lvName], cancellationToken).ConfigureAwait(false);

    public async Task DeactivateAsync(string vgName, string lvName, CancellationToken cancellationToken) =>
        await _cli.LvChangeAsync(["-an", vgName + "/" + lvName], cancellationToken).ConfigureAwait(false);

    /// <summary>The active device of an LV, from sysfs, or null when it is not active here.</summary>
    public Task<ActiveDevice?> DeviceAsync(string vgName, string lvName, CancellationToken cancellationToken) =>
        Task.FromResult(_devices.Find(vgName, lvName));

    public Task<IReadOnlyList<string>> OpenersAsync(string vgName, string lvName, CancellationToken cancellationToken) =>
        Task.FromResult(_devices.Openers(vgName, lvName));

    private async Task<ActiveDevice?> WaitForDeviceAsync(string vgName, string lvName, CancellationToken cancellationToken)
    {
        for (var i = 0; i < 100; i++)
        {
            if (_devices.Find(vgName, lvName) is { } device && File.Exists(device.Path))
            {
                return device;
            }

            await Task.Delay(100, cancellationToken).ConfigureAwait(false);
        }

        return null;
    }

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
