using System.Text.RegularExpressions;

namespace SharedLvm.Os.Lvm;

/// <summary>
/// The VG described by a <see cref="MetadataText"/>: its id, seqno, extent size, PVs, and each LV's
/// id, tags and segments, with the raw stanza text of each LV (what a splice must leave untouched).
/// </summary>
public sealed partial class VgMetadata
{
    private VgMetadata(MetadataText text, MetadataText.Section vg)
    {
        Text = text;
        Section = vg;
        Name = vg.Name;
        Id = vg.String("id") ?? throw new FormatException($"VG {vg.Name} has no id.");
        Seqno = vg.Number("seqno") is { } seqno and >= 0 ? (ulong)seqno : throw new FormatException($"VG {vg.Name} has no seqno.");
        ExtentSectors = vg.Number("extent_size") is { } size and > 0 ? size : throw new FormatException($"VG {vg.Name} has no extent_size.");
        Pvs = (vg.Child("physical_volumes")?.Children ?? [])
            .Select(pv => new Pv(pv.Name, pv.String("id") ?? string.Empty, pv.Number("pe_count") ?? 0))
            .ToArray();
        Lvs = (vg.Child("logical_volumes")?.Children ?? []).Select(lv => Lv.From(text.Text, lv)).ToArray();
    }

    private VgMetadata(VgMetadata same, MetadataText text, ulong seqno)
    {
        Text = text;
        Section = text.Root.Children.Single();
        Name = same.Name;
        Id = same.Id;
        Seqno = seqno;
        ExtentSectors = same.ExtentSectors;
        Pvs = same.Pvs;
        // Every stanza is byte for byte where it was (WithNumber keeps every span): slices of the new text.
        Lvs = same.Lvs.Select(lv => lv with { Raw = text.Text.AsMemory(lv.Section.Start, lv.Section.End - lv.Section.Start) }).ToArray();
    }

    public MetadataText Text { get; }

    public MetadataText.Section Section { get; }

    public string Name { get; }

    public string Id { get; }

    public ulong Seqno { get; }

    /// <summary>extent_size, in 512-byte sectors as lvm writes it.</summary>
    public long ExtentSectors { get; }

    public ulong ExtentBytes => (ulong)ExtentSectors * 512;

    public IReadOnlyList<Pv> Pvs { get; }

    public IReadOnlyList<Lv> Lvs { get; }

    /// <exception cref="FormatException">Not lvm metadata of exactly one VG.</exception>
    public static VgMetadata Parse(string text)
    {
        var parsed = MetadataText.Parse(text);
        var vgs = parsed.Root.Children.ToArray();
        return vgs.Length == 1 ? new VgMetadata(parsed, vgs[0]) : throw new FormatException($"Expected one VG in the metadata text, found {vgs.Length}.");
    }

    /// <summary>
    /// The VG as lvm holds it once this text is restored: `vgcfgrestore` commits the file's seqno + 1
    /// (field.md 4), every other byte as given. The writer keeps it as the base of its next batch, so a
    /// batch right after a batch neither reads nor parses the 3.5 MB text of an 8,000-LV VG again.
    /// </summary>
    public VgMetadata Restored()
    {
        var seqno = Section.Get("seqno")!; // the constructor required it
        var next = Seqno + 1;
        return next.ToString(System.Globalization.CultureInfo.InvariantCulture).Length == Seqno.ToString(System.Globalization.CultureInfo.InvariantCulture).Length
            ? new VgMetadata(this, Text.WithNumber(seqno, (long)next), next)
            : Parse(string.Concat(Text.Text.AsSpan(0, seqno.Start), "seqno = ", next.ToString(System.Globalization.CultureInfo.InvariantCulture), Text.Text.AsSpan(seqno.End)));
    }

    /// <summary>
    /// Why a splice must not touch this VG, or null. Only plain linear LVs on one PV are spliced: a
    /// thin pool, mirror, raid or snapshot carries hidden sub-LVs and cross-references the batcher does
    /// not model, and vgcfgrestore accepts an unknown segment type with rc 0 (field.md 4).
    /// </summary>
    public string? Unsupported()
    {
        if (Pvs.Count != 1)
        {
            return $"VG {Name} has {Pvs.Count} PVs; only a one-PV VG is spliced";
        }

        foreach (var lv in Lvs)
        {
            if (lv.Segments.FirstOrDefault(s => !s.IsLinear) is { } segment)
            {
                return $"LV {lv.Name} has a {segment.Type} segment; only linear LVs are spliced";
            }

            if (!lv.Status.Contains("VISIBLE"))
            {
                return $"LV {lv.Name} is hidden (a sub-LV); only plain linear LVs are spliced";
            }
        }

        return null;
    }

    /// <summary>lvm's LV name rules (lib/misc/lvm-string.c): charset, no leading '-', no reserved parts.</summary>
    public static bool IsValidLvName(string name) =>
        name.Length is > 0 and <= 127 && LvNameChars().IsMatch(name) && name[0] != '-' && name is not "." and not ".."
        && !name.StartsWith("snapshot", StringComparison.Ordinal) && !name.StartsWith("pvmove", StringComparison.Ordinal)
        && !ReservedLvParts.Any(p => name.Contains(p, StringComparison.Ordinal));

    /// <summary>lvm's tag rules: at most 1,024 of [A-Za-z0-9_+.-/=!:&amp;#].</summary>
    public static bool IsValidTag(string tag) => tag.Length is > 0 and <= 1024 && TagChars().IsMatch(tag);

    private static readonly string[] ReservedLvParts =
        ["_cdata", "_cmeta", "_corig", "_cpool", "_cvol", "_iorig", "_mimage", "_mlog", "_pmspare", "_rimage", "_rmeta", "_tdata", "_tmeta", "_vorigin", "_vdata", "_wcorig"];

    [GeneratedRegex("^[A-Za-z0-9+_.-]+$", RegexOptions.CultureInvariant)]
    private static partial Regex LvNameChars();

    [GeneratedRegex("^[A-Za-z0-9_+./=!:&#-]+$", RegexOptions.CultureInvariant)]
    private static partial Regex TagChars();

    public sealed record Pv(string Name, string Id, long PeCount);

    /// <summary>One segment: <paramref name="Count"/> extents of the LV from <paramref name="StartExtent"/>, on <paramref name="PvName"/> at <paramref name="PvStart"/>.</summary>
    public sealed record Segment(long StartExtent, long Count, string Type, long StripeCount, string PvName, long PvStart)
    {
        public bool IsLinear => Type == "striped" && StripeCount == 1 && PvName.Length > 0;

        public long PvEnd => PvStart + Count;
    }

    public sealed record Lv(string Name, string Id, IReadOnlyList<string> Status, IReadOnlyList<string> Flags, IReadOnlyList<string> Tags,
        long SegmentCount, IReadOnlyList<Segment> Segments, MetadataText.Section Section, ReadOnlyMemory<char> Raw)
    {
        public long Extents => Segments.Sum(s => s.Count);

        internal static Lv From(string text, MetadataText.Section lv)
        {
            var segments = new List<Segment>(1);
            foreach (var item in lv.Items)
            {
                if (item is MetadataText.Section s && s.Name.StartsWith("segment", StringComparison.Ordinal))
                {
                    var stripes = s.List("stripes");
                    segments.Add(new Segment(s.Number("start_extent") ?? -1, s.Number("extent_count") ?? -1, s.String("type") ?? string.Empty,
                        s.Number("stripe_count") ?? 0, stripes.Count == 2 && stripes[0] is string pv ? pv : string.Empty,
                        stripes.Count == 2 && stripes[1] is long start ? start : -1));
                }
            }

            // The stanza as a slice of the text, not a copy: 8,000 copies were 7 MB per parse.
            return new Lv(lv.Name, lv.String("id") ?? string.Empty, Strings(lv.List("status")), Strings(lv.List("flags")), Strings(lv.List("tags")),
                lv.Number("segment_count") ?? -1, segments, lv, text.AsMemory(lv.Start, lv.End - lv.Start));
        }

        private static string[] Strings(IReadOnlyList<object> values)
        {
            var strings = new List<string>(values.Count);
            foreach (var value in values)
            {
                if (value is string s)
                {
                    strings.Add(s);
                }
            }

            return [.. strings];
        }
    }
}
