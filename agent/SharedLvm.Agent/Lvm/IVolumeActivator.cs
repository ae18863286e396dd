namespace SharedLvm.Agent.Lvm;

/// <summary>An active LV's device on this node.</summary>
public sealed record ActiveDevice(string Path, string DmName, int Major, int Minor, ulong SizeBytes);

/// <summary>
/// The seam around LV activation. Production: <see cref="AgentLvm"/> (lvchange with the node's
/// volume_list). Tests on hosts without device-mapper replace it; the SAN lab runs the real one.
/// </summary>
public interface IVolumeActivator
{
    Task<ActiveDevice> ActivateAsync(string vgName, string lvName, CancellationToken cancellationToken);

    Task RefreshAsync(string vgName, string lvName, CancellationToken cancellationToken);

    Task DeactivateAsync(string vgName, string lvName, CancellationToken cancellationToken);

    Task<ActiveDevice?> DeviceAsync(string vgName, string lvName, CancellationToken cancellationToken);

    /// <summary>Processes holding the LV's device open ("pid 1234 (qemu-system-x86)"), empty when none.</summary>
    Task<IReadOnlyList<string>> OpenersAsync(string vgName, string lvName, CancellationToken cancellationToken);
}
