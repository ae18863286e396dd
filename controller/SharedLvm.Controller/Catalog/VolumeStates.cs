namespace SharedLvm.Controller.Catalog;

/// <summary>What a volume is doing, from the operations in flight on it and its attachments.</summary>
public enum VolumeLifecycle
{
    Creating,
    Available,
    Attaching,
    Attached,
    Detaching,
    Copying,
    Deleting,
}

/// <summary>The one function that says what state a volume is in; lists, gets, events and metrics all use it.</summary>
public static class VolumeStates
{
    /// <param name="inFlight">The operation holding the volume's claim, or null (also for an event about a finished one).</param>
    public static VolumeLifecycle Of(VolumeRecord record, string? inFlight, IReadOnlyList<AttachmentRecord> attachments) => inFlight switch
    {
        "delete" => VolumeLifecycle.Deleting,
        _ when record.WipePending => VolumeLifecycle.Deleting,
        "create" or "clone" or "snapshot" => VolumeLifecycle.Creating,
        // Extending or relabelling leaves the volume usable: it keeps the state its attachments give it.
        _ when record.CopyPending => VolumeLifecycle.Copying,
        _ when attachments.Any(a => a.Phase == AttachmentPhase.Detaching) => VolumeLifecycle.Detaching,
        _ when attachments.Any(a => a.Phase == AttachmentPhase.Attaching) => VolumeLifecycle.Attaching,
        _ when attachments.Count > 0 => VolumeLifecycle.Attached,
        _ => VolumeLifecycle.Available,
    };
}
