using SharedLvm.Os.Lvm;

namespace SharedLvm.Controller.Volumes;

public enum VolumeKind
{
    Standard,
    Snapshot,
    Clone,
}

/// <summary>A volume as the catalogue knows it; rebuilt from its LV's name and tags.</summary>
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
    IReadOnlyList<string> Owners)
{
    public string LvName => VolumeId.LvName(Id);

    /// <summary>The tags the LV is created with: everything needed to rebuild this record.</summary>
    public IEnumerable<string> CreationTags()
    {
        yield return LvTags.Managed;
        yield return LvTags.NamePrefix + Name;
        if (Kind != VolumeKind.Standard)
        {
            yield return LvTags.KindPrefix + Kind.ToString().ToLowerInvariant();
            yield return LvTags.SourcePrefix + SourceVolumeId;
        }

        if (CopyPending)
        {
            yield return LvTags.CopyPending;
        }

        foreach (var tag in LvTags.LabelTags(Labels))
        {
            yield return tag;
        }
    }

    /// <summary>Null when the LV is not a SharedLvm volume (no marker tag or a foreign name).</summary>
    public static VolumeRecord? FromLv(string pool, LogicalVolume lv)
    {
        var id = VolumeId.FromLvName(lv.Name);
        if (id is null || !lv.Tags.Contains(LvTags.Managed))
        {
            return null;
        }

        string Tag(string prefix) => lv.Tags.FirstOrDefault(t => t.StartsWith(prefix, StringComparison.Ordinal))?[prefix.Length..] ?? string.Empty;
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var tag in lv.Tags)
        {
            if (LvTags.TryParseLabel(tag, out var key, out var value))
            {
                labels[key] = value;
            }
        }

        var kind = Tag(LvTags.KindPrefix) switch
        {
            "snapshot" => VolumeKind.Snapshot,
            "clone" => VolumeKind.Clone,
            _ => lv.IsSnapshot ? VolumeKind.Snapshot : VolumeKind.Standard,
        };
        var name = Tag(LvTags.NamePrefix);
        return new VolumeRecord(
            id,
            name.Length > 0 ? name : id,
            pool,
            lv.VgName,
            lv.SizeBytes,
            kind,
            Tag(LvTags.SourcePrefix),
            labels,
            lv.CreatedAt,
            lv.Tags.Contains(LvTags.CopyPending),
            lv.Tags.Where(t => t.StartsWith(LvTags.OwnerPrefix, StringComparison.Ordinal)).Select(t => t[LvTags.OwnerPrefix.Length..]).ToArray());
    }
}
