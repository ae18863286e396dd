namespace SharedLvm.Controller.Catalog;

/// <summary>
/// What happens to a deleted volume's extents before LVM hands them to the next volume (invariant
/// 7: no tenant reads another's data). Cinder's LVM driver (volume_clear), oVirt (wipe after delete)
/// and Proxmox (saferemove) all clear freed space; a new LV is created with -Zn, so without this the
/// next tenant reads the last one's blocks.
/// </summary>
public enum WipeOnDelete
{
    /// <summary>BLKZEROOUT of every extent on an agent, then lvremove. The default.</summary>
    Zero,

    /// <summary>BLKDISCARD where every path reports discarded blocks read back as zeros, BLKZEROOUT otherwise.</summary>
    Discard,

    /// <summary>lvremove at once: an explicit opt-out for pools whose tenants trust each other.</summary>
    None,
}
