namespace SharedLvm.Controller.Catalog;

public enum AttachmentPhase
{
    Attaching,
    Attached,
    Detaching,
}

/// <summary>A node's device for an attached volume, as its agent reported it.</summary>
public sealed record AttachedDevice(string Path, string DmName, uint Major, uint Minor, ulong SizeBytes);

/// <summary>
/// How far an attachment got. The owner tag on the LV says which nodes may hold the volume; this
/// says whether the node confirmed it (ATTACHED, with its device) or the controller is still waiting.
/// </summary>
public sealed record AttachmentRecord(string VolumeId, string Node, AttachmentPhase Phase, AttachedDevice? Device, DateTimeOffset Since);
