using SharedLvm.Os.Lvm;

namespace SharedLvm.Tests.Os.Lvm;

/// <summary>
/// Every gap of vgcfgrestore (field.md 4: it restores with rc 0 a duplicate LV name, an unknown segment
/// type, another VG id, dropped LVs, a stale seqno) is refused before the text reaches lvm, and so is
/// anything the splice itself could get wrong (overlaps, a new LV without creation time and host).
/// </summary>
public class MetadataInvariantsTests
{
    private static readonly string Captured = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "lvm", "vgcfgbackup-linear.txt"));
    private static readonly VgMetadata Base = VgMetadata.Parse(Captured);
    private static readonly HashSet<string> None = [];

    [Fact]
    public void Lvms_own_text_passes() => MetadataInvariants.Check(Base, Captured, Base.Seqno, None, None);

    [Fact]
    public void A_text_read_at_another_seqno_is_refused_as_another_writers() =>
        Refused("another writer", Captured, expectedSeqno: Base.Seqno - 1);

    [Fact]
    public void A_duplicate_lv_name_is_refused()
    {
        var a = Base.Lvs[0].Raw.ToString();
        Refused("appears twice", Captured.Replace(a, a + "\n\n\t\t" + a.Replace(Base.Lvs[0].Id, "AAAAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAAAA", StringComparison.Ordinal), StringComparison.Ordinal));
    }

    [Fact]
    public void A_dropped_lv_is_refused() => Refused("dropped", Captured.Replace(Base.Lvs[1].Raw.ToString(), string.Empty, StringComparison.Ordinal));

    [Fact]
    public void Another_vg_id_is_refused() => Refused("is not VG", Captured.Replace(Base.Id, "BBBBBB-BBBB-BBBB-BBBB-BBBB-BBBB-BBBBBB", StringComparison.Ordinal));

    [Fact]
    public void An_unknown_segment_type_is_refused() => Refused("thin", Captured.Replace("type = \"striped\"", "type = \"thin\"", StringComparison.Ordinal), changed: ["slvm-a", "slvm-c"]);

    [Fact]
    public void Overlapping_extents_are_refused() => Refused("overlaps", Captured.Replace("\"pv0\", 3", "\"pv0\", 1", StringComparison.Ordinal), changed: ["slvm-c"]);

    [Fact]
    public void Extents_past_the_pv_are_refused() => Refused("outside PV", Captured.Replace("\"pv0\", 3", "\"pv0\", 47", StringComparison.Ordinal), changed: ["slvm-c"]);

    [Fact]
    public void A_stanza_not_asked_to_change_must_stay_byte_identical() =>
        Refused("not asked to change", Captured.Replace("\"slvm_name=a\"", "\"slvm_name=z\"", StringComparison.Ordinal));

    [Fact]
    public void Only_the_lvs_asked_for_may_appear()
    {
        Refused("lacks creation time", Splice(DateTimeOffset.UnixEpoch), created: ["slvm-d"]);
        var splice = Splice(DateTimeOffset.FromUnixTimeSeconds(1796210000));
        Refused("not the ones asked for", splice);
        MetadataInvariants.Check(Base, splice, Base.Seqno, new HashSet<string> { "slvm-d" }, None);

        static string Splice(DateTimeOffset now)
        {
            var splice = new MetadataSplice(Base, "ctl", now);
            Assert.Null(splice.TryCreate("slvm-d", 4 * 1024 * 1024, []));
            return splice.Render();
        }
    }

    [Fact]
    public void A_malformed_lv_id_is_refused() =>
        Refused("malformed", Captured.Replace(Base.Lvs[1].Id, "short", StringComparison.Ordinal), changed: ["slvm-c"]);

    private static void Refused(string why, string text, ulong? expectedSeqno = null, HashSet<string>? changed = null, HashSet<string>? created = null)
    {
        var e = Assert.Throws<MetadataInvariantException>(() => MetadataInvariants.Check(Base, text, expectedSeqno ?? Base.Seqno, created ?? None, changed ?? None));
        Assert.Contains(why, e.Message, StringComparison.Ordinal);
    }
}
