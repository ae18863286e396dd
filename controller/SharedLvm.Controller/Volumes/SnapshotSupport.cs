namespace SharedLvm.Controller.Volumes;

/// <summary>
/// Whether this controller can take and restore COW snapshots. lvm builds a snapshot's exception
/// store through device-mapper even for an inactive origin (it activates the new COW LV to zero its
/// header: "Can't create snapshot without using device-mapper kernel driver"), and a restore merges
/// through the kernel's snapshot-merge target. So the controller host needs the driver, as well as
/// the LU it already writes through. Decided once at start, refused up front (before anything is
/// journaled) and shown with every pool, so nobody finds out from a failed call.
/// </summary>
public sealed class SnapshotSupport
{
    public const string ProcMisc = "/proc/misc";

    private SnapshotSupport(string? unavailableReason) => UnavailableReason = unavailableReason;

    public static SnapshotSupport Available { get; } = new(null);

    /// <summary>Null when snapshots work here; otherwise why not, in words an operator can act on.</summary>
    public string? UnavailableReason { get; }

    public bool IsAvailable => UnavailableReason is null;

    public static SnapshotSupport Unavailable(string reason) => new(reason);

    /// <summary>
    /// Asks the kernel (/proc/misc lists device-mapper once dm_mod is loaded): lvm creates
    /// /dev/mapper/control even where the driver is missing, so the node's presence proves nothing.
    /// </summary>
    public static SnapshotSupport Detect(bool enabled, string procMisc = ProcMisc)
    {
        if (!enabled)
        {
            return Unavailable("turned off in the controller's configuration (Snapshots=false)");
        }

        string misc;
        try
        {
            misc = File.ReadAllText(procMisc);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Unavailable($"could not read {procMisc} to look for device-mapper: {e.Message}");
        }

        return misc.Split('\n').Any(line => line.Trim().EndsWith(" device-mapper", StringComparison.Ordinal))
            ? Available
            : Unavailable("the controller host has no device-mapper driver (dm_mod is not loaded); run the controller on a host that has it and sees the pool's LU");
    }
}
