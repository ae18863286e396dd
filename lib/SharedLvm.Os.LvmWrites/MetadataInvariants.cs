using System.Globalization;
using System.Runtime.CompilerServices;

namespace SharedLvm.Os.Lvm;

/// <summary>A spliced metadata text that must not be restored: vgcfgrestore would have accepted it.</summary>
public sealed class MetadataInvariantException : Exception
{
    public MetadataInvariantException()
    {
    }

    public MetadataInvariantException(string message)
        : base(message)
    {
    }

    public MetadataInvariantException(string message, Exception inner)
        : base(message, inner)
    {
    }
}

/// <summary>
/// Everything lvm's own commands check and `vgcfgrestore` does not (field.md 4: it accepts with rc 0 a
/// duplicate LV name, whose second stanza silently replaces the first LV; an unknown segment type; a
/// different VG id; dropped LVs; a stale text, moving the seqno backwards), checked on the exact
/// text about to be restored, re-parsed, against the text lvm gave us. The one place the batch
/// write's invariant is enforced: <see cref="Check"/> runs before every vgcfgrestore.
/// </summary>
public static class MetadataInvariants
{
    /// <param name="before">lvm's text as read (vgcfgbackup), at <paramref name="expectedSeqno"/>.</param>
    /// <param name="after">The text to restore.</param>
    /// <param name="created">LV names the batch creates; nothing else may appear.</param>
    /// <param name="changed">Existing LV names the batch rewrites; every other stanza must be byte-identical.</param>
    /// <returns>The text to restore, parsed: what lvm will hold (at the next seqno: <see cref="VgMetadata.Restored"/>).</returns>
    /// <exception cref="MetadataInvariantException">The first violation found.</exception>
    public static VgMetadata Check(VgMetadata before, string after, ulong expectedSeqno, IReadOnlySet<string> created, IReadOnlySet<string> changed)
    {
        VgMetadata next;
        try
        {
            next = VgMetadata.Parse(after);
        }
        catch (FormatException e)
        {
            throw new MetadataInvariantException("the spliced text does not parse: " + e.Message, e);
        }

        Require(before.Seqno == expectedSeqno, $"the text was read at seqno {before.Seqno}, the VG was last known at {expectedSeqno}: another writer, re-read");
        Require(next.Seqno == before.Seqno, $"seqno {next.Seqno} in the spliced text, {before.Seqno} in lvm's");
        Require(next.Name == before.Name && next.Id == before.Id, $"VG {next.Name} id {next.Id} is not VG {before.Name} id {before.Id}");
        Require(next.ExtentSectors == before.ExtentSectors, "extent size changed");
        Require(next.Pvs.SequenceEqual(before.Pvs), "the PV list changed");
        var unsupported = next.Unsupported();
        Require(unsupported is null, unsupported ?? string.Empty);

        var names = new HashSet<string>(StringComparer.Ordinal);
        var ids = new HashSet<string>(before.Pvs.Select(p => p.Id), StringComparer.Ordinal) { next.Id };
        foreach (var lv in next.Lvs)
        {
            Require(names.Add(lv.Name), $"LV name {lv.Name} appears twice (vgcfgrestore would keep only the second)");
            Require(lv.Id.Length == 38 && ids.Add(lv.Id), $"LV {lv.Name} id '{lv.Id}' is malformed or not unique");
            if (created.Contains(lv.Name) || changed.Contains(lv.Name))
            {
                // Any other stanza must be lvm's own, byte for byte (checked below), and lvm wrote it.
                Require(VgMetadata.IsValidLvName(lv.Name), $"LV name {lv.Name} is not valid for lvm");
                Require(lv.Tags.All(VgMetadata.IsValidTag), $"LV {lv.Name} has a tag not valid for lvm");
            }

            Require(lv.SegmentCount == lv.Segments.Count && lv.Segments.Count > 0, $"LV {lv.Name} segment_count does not match its segments");
            var extent = 0L;
            foreach (var s in lv.Segments)
            {
                Require(s.IsLinear && s.StartExtent == extent && s.Count > 0, $"LV {lv.Name} segments are not one linear run from extent 0");
                extent += s.Count;
            }
        }

        var byName = next.Lvs.ToDictionary(l => l.Name, StringComparer.Ordinal); // names are unique (checked above)
        foreach (var lv in before.Lvs)
        {
            var now = byName.GetValueOrDefault(lv.Name);
            Require(now is not null && now.Id == lv.Id, $"LV {lv.Name} ({lv.Id}) would be dropped or replaced");
            Require(changed.Contains(lv.Name) || now!.Raw.Span.SequenceEqual(lv.Raw.Span), $"LV {lv.Name} was not asked to change but its stanza differs");
        }

        var added = next.Lvs.Select(l => l.Name).Except(before.Lvs.Select(l => l.Name), StringComparer.Ordinal).ToHashSet(StringComparer.Ordinal);
        Require(added.SetEquals(created), $"created LVs {string.Join(',', added)} are not the ones asked for ({string.Join(',', created)})");
        foreach (var lv in next.Lvs.Where(l => added.Contains(l.Name)))
        {
            Require(lv.Section.Number("creation_time") > 0 && !string.IsNullOrEmpty(lv.Section.String("creation_host")), $"new LV {lv.Name} lacks creation time or host");
        }

        // Extents: every segment inside its PV, no two overlapping.
        var pv = next.Pvs.Single();
        var segments = next.Lvs.SelectMany(l => l.Segments.Select(s => (l.Name, s))).OrderBy(x => x.s.PvStart).ToArray();
        for (var i = 0; i < segments.Length; i++)
        {
            var (name, s) = segments[i];
            Require(s.PvName == pv.Name && s.PvStart >= 0 && s.PvEnd <= pv.PeCount, $"LV {name} has extents outside PV {pv.Name} (0..{pv.PeCount})");
            Require(i == 0 || segments[i - 1].s.PvEnd <= s.PvStart, $"LV {name} overlaps LV {(i > 0 ? segments[i - 1].Name : string.Empty)} at PE {s.PvStart}");
        }

        return next;
    }

    private static void Require(bool condition, string violation)
    {
        if (!condition)
        {
            throw new MetadataInvariantException(violation);
        }
    }

    /// <summary>
    /// As above, with the message formatted only when the check fails: run over every LV of an
    /// 8,000-LV VG, eager messages were ~50,000 strings formatted per batch for nothing.
    /// </summary>
    private static void Require(bool condition, [InterpolatedStringHandlerArgument(nameof(condition))] ref ViolationHandler violation)
    {
        if (!condition)
        {
            throw new MetadataInvariantException(violation.ToStringAndClear());
        }
    }

    [InterpolatedStringHandler]
    private ref struct ViolationHandler
    {
        private DefaultInterpolatedStringHandler _message;

        public ViolationHandler(int literalLength, int formattedCount, bool condition, out bool shouldAppend)
        {
            shouldAppend = !condition;
            _message = shouldAppend ? new DefaultInterpolatedStringHandler(literalLength, formattedCount, CultureInfo.InvariantCulture) : default;
        }

        public void AppendLiteral(string value) => _message.AppendLiteral(value);

        public void AppendFormatted<T>(T value) => _message.AppendFormatted(value);

        public string ToStringAndClear() => _message.ToStringAndClear();
    }
}
