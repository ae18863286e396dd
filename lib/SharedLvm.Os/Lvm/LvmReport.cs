using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace SharedLvm.Os.Lvm;

/// <summary>A volume group as SharedLvm needs it, parsed from `lvm fullreport`.</summary>
public sealed record VolumeGroup(
    string Name,
    string Uuid,
    ulong SizeBytes,
    ulong FreeBytes,
    ulong ExtentSizeBytes,
    ulong FreeExtents,
    ulong Seqno,
    int LvCount,
    ulong MetadataAreaSizeBytes,
    ulong MetadataAreaFreeBytes,
    IReadOnlyList<string> Tags,
    bool AutoActivation = false);

public sealed record PhysicalVolume(string Name, string Uuid, string VgName, ulong SizeBytes, ulong DeviceSizeBytes);

public sealed record LogicalVolume(
    string VgName,
    string Name,
    string Uuid,
    ulong SizeBytes,
    IReadOnlyList<string> Tags,
    string Attributes,
    string Origin,
    DateTimeOffset? CreatedAt,
    int? Major,
    int? Minor,
    bool AutoActivation = false)
{
    /// <summary>lv_attr[4] is 'a' when active on this host ('X' when activation is disabled: unknown).</summary>
    public bool IsActive => Attributes.Length > 4 && Attributes[4] == 'a';

    public bool IsSnapshot => !string.IsNullOrEmpty(Origin);

    /// <summary>lv_attr[0]: 'S' a snapshot merging into its origin, 'O' that origin (metadata flags: known without activation).</summary>
    public bool IsMerging => Attributes.Length > 0 && Attributes[0] is 'S' or 'O';
}

public sealed record FullReport(VolumeGroup VolumeGroup, IReadOnlyList<PhysicalVolume> PhysicalVolumes, IReadOnlyList<LogicalVolume> LogicalVolumes);

/// <summary>
/// Parses lvm's JSON reports (`--reportformat json --units b --nosuffix`): first into raw rows named
/// after LVM's fields, exactly as lvm prints them (all strings), then into domain types with the
/// invariant culture.
/// </summary>
public static class LvmReportParser
{
    public static IReadOnlyList<FullReport> ParseFullReport(string json)
    {
        var document = JsonSerializer.Deserialize(json, LvmJsonContext.Default.RawFullReportDocument)
            ?? throw new FormatException("lvm fullreport printed no JSON document.");
        return document.Report.Select(r =>
        {
            var vg = r.Vg.SingleOrDefault() ?? throw new FormatException("fullreport section without a vg row.");
            return new FullReport(
                ToVolumeGroup(vg),
                r.Pv.Select(ToPhysicalVolume).ToArray(),
                r.Lv.Select(lv => ToLogicalVolume(vg.VgName, lv)).ToArray());
        }).ToArray();
    }

    /// <summary>Parses `lvs --reportformat json` with vg_name among the fields.</summary>
    public static IReadOnlyList<LogicalVolume> ParseLvs(string json)
    {
        var document = JsonSerializer.Deserialize(json, LvmJsonContext.Default.RawFullReportDocument)
            ?? throw new FormatException("lvs printed no JSON document.");
        return document.Report.SelectMany(r => r.Lv).Select(lv => ToLogicalVolume(lv.VgName ?? string.Empty, lv)).ToArray();
    }

    /// <summary>Parses `vgs --reportformat json`.</summary>
    public static IReadOnlyList<VolumeGroup> ParseVgs(string json)
    {
        var document = JsonSerializer.Deserialize(json, LvmJsonContext.Default.RawFullReportDocument)
            ?? throw new FormatException("vgs printed no JSON document.");
        return document.Report.SelectMany(r => r.Vg).Select(ToVolumeGroup).ToArray();
    }

    private static VolumeGroup ToVolumeGroup(RawVg raw) => new(
        raw.VgName,
        raw.VgUuid,
        U64(raw.VgSize, "vg_size"),
        U64(raw.VgFree, "vg_free"),
        U64(raw.VgExtentSize, "vg_extent_size"),
        U64(raw.VgFreeCount, "vg_free_count"),
        U64(raw.VgSeqno, "vg_seqno"),
        (int)U64(raw.LvCount, "lv_count"),
        U64(raw.VgMdaSize, "vg_mda_size"),
        U64(raw.VgMdaFree, "vg_mda_free"),
        Tags(raw.VgTags),
        raw.VgAutoactivation == "enabled");

    private static PhysicalVolume ToPhysicalVolume(RawPv raw) => new(
        raw.PvName, raw.PvUuid, raw.VgName ?? string.Empty, U64(raw.PvSize, "pv_size"), U64(raw.DevSize, "dev_size"));

    private static LogicalVolume ToLogicalVolume(string vgName, RawLv raw) => new(
        vgName,
        raw.LvName,
        raw.LvUuid,
        U64(raw.LvSize, "lv_size"),
        Tags(raw.LvTags),
        raw.LvAttr,
        raw.Origin ?? string.Empty,
        DateTimeOffset.TryParseExact(raw.LvTime, "yyyy-MM-dd HH:mm:ss zzz", CultureInfo.InvariantCulture, DateTimeStyles.None, out var time) ? time : null,
        DeviceNumber(raw.LvKernelMajor),
        DeviceNumber(raw.LvKernelMinor),
        raw.LvAutoactivation == "enabled");

    /// <summary>Inactive LVs (and all LVs with activation disabled) report major/minor as -1.</summary>
    private static int? DeviceNumber(string? raw) =>
        int.TryParse(raw, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value) && value >= 0 ? value : null;

    private static ulong U64(string? raw, string field) =>
        ulong.TryParse(raw, NumberStyles.None, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new FormatException($"lvm field {field} has value '{raw}', not a byte count (was --units b --nosuffix given?).");

    private static string[] Tags(string? raw) =>
        string.IsNullOrEmpty(raw) ? [] : raw.Split(',', StringSplitOptions.RemoveEmptyEntries);
}

internal sealed class RawFullReportDocument
{
    [JsonPropertyName("report")]
    public List<RawReportSection> Report { get; set; } = [];
}

internal sealed class RawReportSection
{
    [JsonPropertyName("vg")]
    public List<RawVg> Vg { get; set; } = [];

    [JsonPropertyName("pv")]
    public List<RawPv> Pv { get; set; } = [];

    [JsonPropertyName("lv")]
    public List<RawLv> Lv { get; set; } = [];
}

internal sealed class RawVg
{
    [JsonPropertyName("vg_name")] public string VgName { get; set; } = string.Empty;
    [JsonPropertyName("vg_uuid")] public string VgUuid { get; set; } = string.Empty;
    [JsonPropertyName("vg_size")] public string? VgSize { get; set; }
    [JsonPropertyName("vg_free")] public string? VgFree { get; set; }
    [JsonPropertyName("vg_extent_size")] public string? VgExtentSize { get; set; }
    [JsonPropertyName("vg_free_count")] public string? VgFreeCount { get; set; }
    [JsonPropertyName("vg_seqno")] public string? VgSeqno { get; set; }
    [JsonPropertyName("lv_count")] public string? LvCount { get; set; }
    [JsonPropertyName("vg_mda_size")] public string? VgMdaSize { get; set; }
    [JsonPropertyName("vg_mda_free")] public string? VgMdaFree { get; set; }
    [JsonPropertyName("vg_tags")] public string? VgTags { get; set; }
    [JsonPropertyName("vg_autoactivation")] public string? VgAutoactivation { get; set; }
}

internal sealed class RawPv
{
    [JsonPropertyName("pv_name")] public string PvName { get; set; } = string.Empty;
    [JsonPropertyName("pv_uuid")] public string PvUuid { get; set; } = string.Empty;
    [JsonPropertyName("vg_name")] public string? VgName { get; set; }
    [JsonPropertyName("pv_size")] public string? PvSize { get; set; }
    [JsonPropertyName("dev_size")] public string? DevSize { get; set; }
}

internal sealed class RawLv
{
    [JsonPropertyName("vg_name")] public string? VgName { get; set; }
    [JsonPropertyName("lv_name")] public string LvName { get; set; } = string.Empty;
    [JsonPropertyName("lv_uuid")] public string LvUuid { get; set; } = string.Empty;
    [JsonPropertyName("lv_size")] public string? LvSize { get; set; }
    [JsonPropertyName("lv_tags")] public string? LvTags { get; set; }
    [JsonPropertyName("lv_attr")] public string LvAttr { get; set; } = string.Empty;
    [JsonPropertyName("origin")] public string? Origin { get; set; }
    [JsonPropertyName("lv_time")] public string? LvTime { get; set; }
    [JsonPropertyName("lv_kernel_major")] public string? LvKernelMajor { get; set; }
    [JsonPropertyName("lv_kernel_minor")] public string? LvKernelMinor { get; set; }
    [JsonPropertyName("lv_autoactivation")] public string? LvAutoactivation { get; set; }
}

[JsonSerializable(typeof(RawFullReportDocument))]
internal sealed partial class LvmJsonContext : JsonSerializerContext
{
}
