using SharedLvm.Contracts.Conventions;
using SharedLvm.Os.Lvm;

namespace SharedLvm.Controller.Catalog;

public enum VolumeKind
{
    Standard,
    Snapshot,
    Clone,
}

/// <summary>
/// A volume as the catalogue knows it; rebuilt from its LV's name and tags, and for a snapshot from
/// what lvm says the LV is: <see cref="IsCowStore"/> (still a COW store, not yet split from its
/// origin for wiping) and <see cref="Merging"/> (a restore recorded in the VG has not finished; set
/// on both the snapshot and its origin).
/// </summary>
public sealed record VolumeRecord(
    string Id,
    string Name,
    string Pool,
    string VgName,
    ulong SizeBytes,
    VolumeKind Kind,
    string SourceVolumeId,
    IReadOnlyDictionary<string, string> Labels,
    DateTimeOffset? CreatedAt,
    bool CopyPending,
    IReadOnlyList<string> Owners,
    bool MultiAttach = false,
    bool WipePending = false,
    bool IsCowStore = false,
    bool Merging = false)
{
    public string LvName => VolumeId.LvName(Id);

    public bool IsOwnedBy(string node) => Owners.Contains(node, StringComparer.Ordinal);

    /// <summary>Every tag the LV carries for this record: rebuilding the record from them gives it back.</summary>
    public IReadOnlySet<string> Tags() => LvTags.Of(this);

    /// <summary>Null when the LV is not a SharedLvm volume (no marker tag or a foreign name).</summary>
    public static VolumeRecord? FromLv(string pool, LogicalVolume lv)
    {
        var id = VolumeId.FromLvName(lv.Name);
        if (id is null || !lv.Tags.Contains(LvTags.Managed))
        {
            return null;
        }

        var name = LvTags.Value(lv.Tags, LvTags.NamePrefix);
        var kind = LvTags.Value(lv.Tags, LvTags.KindPrefix) switch
        {
            "snapshot" => VolumeKind.Snapshot,
            "clone" => VolumeKind.Clone,
            _ => lv.IsSnapshot ? VolumeKind.Snapshot : VolumeKind.Standard,
        };
        return new VolumeRecord(
            id,
            name.Length > 0 ? name : id,
            pool,
            lv.VgName,
            lv.SizeBytes,
            kind,
            LvTags.Value(lv.Tags, LvTags.SourcePrefix),
            LvTags.Labels(lv.Tags),
            lv.CreatedAt,
            lv.Tags.Contains(LvTags.CopyPending),
            OwnerTag.Owners(lv.Tags),
            lv.Tags.Contains(LvTags.MultiAttach),
            lv.Tags.Contains(LvTags.WipePending),
            lv.IsSnapshot,
            lv.IsMerging);
    }
}
