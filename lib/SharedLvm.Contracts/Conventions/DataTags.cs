namespace SharedLvm.Contracts.Conventions;

/// <summary>
/// LV tags that authorize an agent's data I/O below LVM. The controller sets them; an agent copies
/// onto an LV only while it carries <see cref="CopyPending"/> and zeroes one only while it carries
/// <see cref="WipePending"/>, read from the VG itself: a wrong or stale command can't destroy a live
/// volume's data.
/// </summary>
public static class DataTags
{
    /// <summary>A clone whose data copy has not finished: it may be overwritten, and not attached.</summary>
    public const string CopyPending = "slvm_copy_pending";

    /// <summary>A deleted volume whose extents are being zeroed before the LV is removed (invariant 7).</summary>
    public const string WipePending = "slvm_wipe_pending";
}
