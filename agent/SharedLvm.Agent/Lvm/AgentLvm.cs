using SharedLvm.Contracts.Conventions;
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
/// The agent's lvm: reads and the activation verbs, and no type that can write VG metadata
/// (invariant 1: the agent project does not reference SharedLvm.Os.LvmWrites). The config also
/// passes global/metadata_read_only=1, but only as a second layer: measured here, lvm 2.03.16 does
/// NOT refuse lvcreate, lvremove, lvchange --addtag or vgchange under it. It scans only multipath maps
/// (never the raw sdX paths of a LU: duplicate PVs) and activates only LVs tagged for this node
/// (volume_list).
/// </summary>
public sealed class AgentLvm : IVolumeActivator
{
    /// <summary>Every multipath map has this udev alias; nothing else does.</summary>
    public const string MultipathDevicePattern = "^/dev/disk/by-id/dm-uuid-mpath-";

    private readonly DmDevices _devices;
    private readonly LvmReader _reader;
    private readonly LvmActivation _activation;
    private readonly IProcessRunner _runner;
    private readonly AgentOptions _options;

    public AgentLvm(IProcessRunner runner, AgentOptions options)
    {
        _runner = runner;
        _options = options;
        _devices = new DmDevices(new Discovery.SysfsTree(options.SysfsRoot));
        Config = AgentLvmConfig(options);
        _reader = new LvmReader(runner, Config, options.LvmTimeout, options.LvmBinary);
        _activation = new LvmActivation(runner, Config, options.LvmTimeout, options.LvmBinary);
    }

    public LvmConfig Config { get; }

    public static LvmConfig AgentLvmConfig(AgentOptions options) => new()
    {
        ActivationEnabled = true,
        MetadataReadOnly = true,
        DevicePatterns = [MultipathDevicePattern, .. options.ExtraLvmDevicePatterns],
        VolumeList = [OwnerTag.VolumeListEntry(options.NodeName)],
    };

    /// <summary>
    /// Activates with volume_list = ["@sharedlvm_owner_&lt;node&gt;"]: LVM itself refuses an LV the
    /// controller did not tag for this node. Then a refresh (Proxmox: an LV resized elsewhere and
    /// activated with its old table corrupted data), then the device must appear.
    /// </summary>
    public async Task<ActiveDevice> ActivateAsync(string vgName, string lvName, CancellationToken cancellationToken)
    {
        var wasActive = _devices.Find(vgName, lvName) is not null;
        await _activation.ActivateAsync(vgName, lvName, cancellationToken).ConfigureAwait(false);
        if (_devices.Find(vgName, lvName) is null)
        {
            // Measured in the SAN lab (lvm 2.03.16): an LV that volume_list filters out is skipped
            // silently, exit code 0, nothing on stderr without -v. The dm device is created inside
            // lvchange, so its absence right after a "successful" -ay means LVM refused.
            throw await RefusalAsync(vgName, lvName, cancellationToken).ConfigureAwait(false);
        }

        if (wasActive)
        {
            // -ay leaves an active LV's table as it was: after an extend elsewhere only a refresh
            // loads the new size. A fresh activation loaded the current metadata already; a refresh
            // then re-read the VG for nothing (issue 18: part of the lab's attach overhead).
            await _activation.RefreshAsync(vgName, lvName, cancellationToken).ConfigureAwait(false);
        }

        return await WaitForDeviceAsync(vgName, lvName, cancellationToken).ConfigureAwait(false)
            ?? throw new AgentException(AgentErrorKind.Unavailable, $"{vgName}/{lvName} was activated but its device node did not appear.");
    }

    /// <summary>Why LVM did not activate an LV: the owner tag it lacks, read back from the VG.</summary>
    private async Task<AgentException> RefusalAsync(string vgName, string lvName, CancellationToken cancellationToken)
    {
        var lv = (await _reader.FullReportAsync(vgName, cancellationToken).ConfigureAwait(false)).LogicalVolumes.FirstOrDefault(l => l.Name == lvName);
        if (lv is null)
        {
            return new AgentException(AgentErrorKind.NotFound, $"{vgName}/{lvName} does not exist in the VG as this node sees it.");
        }

        var owners = OwnerTag.Owners(lv.Tags);
        return Config.VolumeList!.Any(v => lv.Tags.Contains(v.TrimStart('@'), StringComparer.Ordinal))
            ? new AgentException(AgentErrorKind.Unavailable, $"lvm reported {vgName}/{lvName} active, but no device-mapper device exists.")
            : new AgentException(AgentErrorKind.FailedPrecondition,
                $"LVM refused to activate {vgName}/{lvName}: it is not tagged for this node (activation/volume_list); owner tags: {(owners.Count == 0 ? "none" : string.Join(", ", owners))}.");
    }

    public Task RefreshAsync(string vgName, string lvName, CancellationToken cancellationToken) =>
        _activation.RefreshAsync(vgName, lvName, cancellationToken);

    /// <summary>
    /// lvchange -an. An LV active on a raw path (<see cref="Health.RawPaths"/>) is deactivated with a
    /// config that scans exactly the devices it sits on: with its LU's map gone (as in the lab's S7b,
    /// and multipathd can't put a held path in a map) the agent's own config scans maps only and so
    /// sees no PV of the LV's VG.
    /// </summary>
    public Task DeactivateAsync(string vgName, string lvName, CancellationToken cancellationToken)
    {
        var raw = _devices.NonDmDevicesBeneath(vgName, lvName);
        return raw.Count == 0
            ? _activation.DeactivateAsync(vgName, lvName, cancellationToken)
            : new LvmActivation(_runner, RawPathConfig(_options, raw), _options.LvmTimeout, _options.LvmBinary).DeactivateAsync(vgName, lvName, cancellationToken);
    }

    /// <summary>
    /// The agent's config, scanning exactly <paramref name="devices"/> (raw paths an LV is active on)
    /// and with multipath component detection off, or lvm rejects them as paths of a multipath LU.
    /// For deactivating such an LV only; every activation goes through the maps.
    /// </summary>
    public static LvmConfig RawPathConfig(AgentOptions options, IReadOnlyList<string> devices) => AgentLvmConfig(options) with
    {
        Devices = devices,
        DevicePatterns = [],
        MultipathComponentDetection = false,
    };

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

    /// <summary>Where an LV's extents lie on its PV, as this node's lvm sees the VG; null when it does not exist.</summary>
    public Task<LvLayout?> LayoutAsync(string vgName, string lvName, CancellationToken cancellationToken) =>
        _reader.LayoutAsync(vgName, lvName, cancellationToken);

    public async Task<LvmView> InspectAsync(CancellationToken cancellationToken)
    {
        var version = await _reader.VersionAsync(cancellationToken).ConfigureAwait(false);
        var reports = await _reader.FullReportsAsync(cancellationToken).ConfigureAwait(false);
        var host = await _reader.HostConfigAsync(
            ["devices/global_filter", "devices/filter", "devices/use_devicesfile", "devices/multipath_component_detection", "activation/auto_activation_volume_list"],
            cancellationToken).ConfigureAwait(false);
        return new LvmView(version, reports, host);
    }
}
