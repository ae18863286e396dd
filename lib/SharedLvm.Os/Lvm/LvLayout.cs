using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace SharedLvm.Os.Lvm;

/// <summary>One contiguous run of an LV's bytes on its PV: where data I/O below LVM has to go.</summary>
/// <param name="LvOffsetBytes">Where the run starts inside the LV.</param>
/// <param name="DeviceOffsetBytes">Where it starts on the PV's device (pe_start included).</param>
public sealed record ExtentRun(string PvPath, ulong LvOffsetBytes, ulong DeviceOffsetBytes, ulong LengthBytes, string SegmentType);

/// <summary>
/// An LV as its extents lie on the PV, from `pvs --segments`: enough to copy or zero its data through
/// the PV's device without activating it (no device-mapper table, no second node holding it).
/// </summary>
public sealed record LvLayout(string VgName, string LvName, string LvUuid, IReadOnlyList<string> Tags, string Attributes, ulong ExtentSizeBytes, IReadOnlyList<ExtentRun> Runs,
    string Origin = "")
{
    public ulong SizeBytes => Runs.Aggregate(0UL, (sum, run) => sum + run.LengthBytes);

    /// <summary>Plain linear segments only: a snapshot's COW store or a thin/RAID LV is not its data laid out in order.</summary>
    public bool IsLinear => Runs.Count > 0 && Runs.All(r => r.SegmentType == "linear");

    /// <summary>
    /// lv_attr[0] is 's' for a COW snapshot (its runs are its COW store, its data is <see cref="Origin"/>
    /// read through it); 'S' is a snapshot merging into its origin, which is no snapshot to read.
    /// </summary>
    public bool IsSnapshot => Attributes.Length > 0 && Attributes[0] == 's' && Origin.Length > 0;

    /// <summary>lv_attr[0] 'S' or 'O': a merge between this snapshot and its origin has started.</summary>
    public bool IsMerging => Attributes.Length > 0 && Attributes[0] is 'S' or 'O';

    /// <summary>lv_attr[4] is 'a' when active on this host.</summary>
    public bool IsActiveHere => Attributes.Length > 4 && Attributes[4] == 'a';
}

/// <summary>Parses `pvs --segments --reportformat json --units b --nosuffix` rows of one LV into its <see cref="LvLayout"/>.</summary>
public static class LvLayoutParser
{
    /// <summary>The report fields <see cref="Parse"/> needs, in the command's -o.</summary>
    public const string Fields = "pv_name,pe_start,pvseg_start,pvseg_size,vg_name,vg_extent_size,lv_name,lv_uuid,lv_tags,lv_attr,origin,segtype,seg_start";

    /// <summary>Null when the report has no segment of the LV (it does not exist).</summary>
    public static LvLayout? Parse(string json)
    {
        var document = JsonSerializer.Deserialize(json, LvLayoutJsonContext.Default.RawPvSegDocument)
            ?? throw new FormatException("pvs --segments printed no JSON document.");
        var rows = document.Report.SelectMany(r => r.PvSeg).ToArray();
        if (rows.Length == 0)
        {
            return null;
        }

        var first = rows[0];
        if (rows.Any(r => r.LvUuid != first.LvUuid))
        {
            throw new FormatException($"pvs --segments reported segments of more than one LV (asked for {first.VgName}/{first.LvName}).");
        }

        var extent = U64(first.VgExtentSize, "vg_extent_size");
        var runs = rows
            .Select(r => new ExtentRun(
                r.PvName,
                U64(r.SegStart, "seg_start"),
                U64(r.PeStart, "pe_start") + (U64(r.PvsegStart, "pvseg_start") * extent),
                U64(r.PvsegSize, "pvseg_size") * extent,
                r.Segtype))
            .OrderBy(r => r.LvOffsetBytes)
            .ToArray();
        return new LvLayout(first.VgName, first.LvName, first.LvUuid,
            string.IsNullOrEmpty(first.LvTags) ? [] : first.LvTags.Split(',', StringSplitOptions.RemoveEmptyEntries), first.LvAttr, extent, runs, first.Origin ?? string.Empty);
    }

    private static ulong U64(string? raw, string field) =>
        ulong.TryParse(raw, NumberStyles.None, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new FormatException($"lvm field {field} has value '{raw}', not a number (was --units b --nosuffix given?).");
}

internal sealed class RawPvSegDocument
{
    [JsonPropertyName("report")]
    public List<RawPvSegSection> Report { get; set; } = [];
}

internal sealed class RawPvSegSection
{
    [JsonPropertyName("pvseg")]
    public List<RawPvSeg> PvSeg { get; set; } = [];
}

internal sealed class RawPvSeg
{
    [JsonPropertyName("pv_name")] public string PvName { get; set; } = string.Empty;
    [JsonPropertyName("pe_start")] public string? PeStart { get; set; }
    [JsonPropertyName("pvseg_start")] public string? PvsegStart { get; set; }
    [JsonPropertyName("pvseg_size")] public string? PvsegSize { get; set; }
    [JsonPropertyName("vg_name")] public string VgName { get; set; } = string.Empty;
    [JsonPropertyName("vg_extent_size")] public string? VgExtentSize { get; set; }
    [JsonPropertyName("lv_name")] public string LvName { get; set; } = string.Empty;
    [JsonPropertyName("lv_uuid")] public string LvUuid { get; set; } = string.Empty;
    [JsonPropertyName("lv_tags")] public string? LvTags { get; set; }
    [JsonPropertyName("lv_attr")] public string LvAttr { get; set; } = string.Empty;
    [JsonPropertyName("origin")] public string? Origin { get; set; }
    [JsonPropertyName("segtype")] public string Segtype { get; set; } = string.Empty;
    [JsonPropertyName("seg_start")] public string? SegStart { get; set; }
}

[JsonSerializable(typeof(RawPvSegDocument))]
internal sealed partial class LvLayoutJsonContext : JsonSerializerContext
{
}
